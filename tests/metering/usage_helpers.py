"""Helpers of the usage tests: request items, and meters and customers on the
Stripe-compatible server."""

from datetime import date, timedelta

import stripe as stripe_api
from django.utils import timezone

from metering.usage_types import METER_EVENT_NAMES


def recent_day(days_ago: int = 1) -> date:
    return timezone.now().date() - timedelta(days=days_ago)


def item(acct_id: int, quantity: int = 1000, *, usage_type: str = "ST", days_ago: int = 1, **extra):
    return {
        "acct_id": acct_id,
        "period": recent_day(days_ago).isoformat(),
        "type": usage_type,
        "quantity": quantity,
        **extra,
    }


def post(client, body, **extra):
    return client.post("/usage", body, format="json", **extra)


def stripe_meters() -> dict[str, str]:
    """One sum meter per usage type on the Stripe-compatible server: type -> meter id."""
    meters = {}
    for usage_type, event_name in METER_EVENT_NAMES.items():
        meter = stripe_api.billing.Meter.create(
            display_name=f"{usage_type} impressions",
            event_name=event_name,
            default_aggregation={"formula": "sum"},
        )
        meters[usage_type] = meter.id
    return meters


def stripe_customer_for(account) -> str:
    """A customer on the Stripe-compatible server, linked to the account."""
    customer = stripe_api.Customer.create(
        name=account.name, metadata={"acct_id": str(account.acct_id)}
    )
    account.stripe_customer_id = customer.id
    account.save(update_fields=["stripe_customer_id"])
    return customer.id
