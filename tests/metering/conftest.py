"""Catalog tests: legacy plans in the legacy test database, customers on the Stripe server."""

from decimal import Decimal
from urllib.parse import urlencode

import pytest
import stripe as stripe_lib
from django.conf import settings

from cohorts.models import Cohort
from metering.models import BillingAccount
from tests import factories

both_databases = pytest.mark.django_db(databases=["default", "legacy"])


def seed_customer(server, customer_id: str, *, clock: str | None = None, **fields) -> dict:
    """A customer that already exists in the real Stripe account (`/_harness/customers`)."""
    params = {"id": customer_id, **fields}
    if clock:
        params["test_clock"] = clock
    body = urlencode(params)
    status, result, _ = server.handle(
        "POST",
        "/_harness/customers",
        "",
        body,
        {"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
    )
    assert status == 200, result
    return result


def make_plan_account(
    *,
    acct_id: int,
    cohort: Cohort,
    sub_rates: tuple[str, ...] = ("249.00",),
    tiers: dict[str, list[tuple[int | None, str]]] | None = None,
    customer_id: str | None = None,
) -> BillingAccount:
    """A legacy account with flat fees and tiers, and its billing account in `cohort`."""
    legacy = factories.LegacyAccountFactory(acct_id=acct_id)
    for rate in sub_rates:
        factories.LegacyPlanSubFactory(account=legacy, sub_rate=Decimal(rate))
    for usage_type, ladder in (tiers or {}).items():
        for ceiling, rate in ladder:
            factories.LegacyPlanUsageFactory(
                account=legacy, usage_type=usage_type, usage_max=ceiling, usage_rate=Decimal(rate)
            )
    return factories.BillingAccountFactory(
        acct_id=acct_id,
        cohort=cohort,
        stripe_customer_id=customer_id or legacy.payment_customer_id,
    )


def stripe_count(server, kind: str) -> int:
    return len(server.store.all(kind))


def invoice_item_amount(customer_id: str, price_id: str, quantity: int) -> int:
    """What the server bills for `quantity` of a price (its own tier maths)."""
    item = stripe_lib.InvoiceItem.create(
        customer=customer_id, pricing={"price": price_id}, quantity=quantity
    )
    return item["amount"]
