"""Resource handlers; importing this package registers their routes."""

from typing import Any

from . import (  # noqa: F401
    account,
    catalog,
    clock_helpers,
    coupons,
    credit_notes,
    customers,
    event_destinations,
    events,
    invoiceitems,
    invoices,
    meters,
    payment_methods,
    portal,
    subscriptions,
    webhook_endpoints,
)

EXPANDERS: dict[tuple[str | None, str], Any] = {
    **customers.EXPANDERS,
    **invoices.EXPANDERS,
    **catalog.EXPANDERS,
    **meters.EXPANDERS,
}
