"""A whole billing cycle through unmodified stripe-python, delivered to the app's endpoint."""

from datetime import UTC, datetime
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from djstripe.models import Event, Invoice

from billing_project.stripe_webhook import webhook_endpoint_url


@pytest.fixture
def server(stripe_server):
    """The Stripe-compatible server with fresh state (the module name `stripe` stays free)."""
    stripe_server.reset()
    return stripe_server


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


JAN_15 = ts(2026, 1, 15)
FEB_1 = ts(2026, 2, 1)
MAR_1 = ts(2026, 3, 1)

# Stripe's documented volume example: 1-5 at $7, 6-10 at $6.50, 11+ at $6.
VOLUME_TIERS = [
    {"up_to": 5, "unit_amount": 700},
    {"up_to": 10, "unit_amount": 650},
    {"up_to": "inf", "unit_amount": 600},
]


def catalog():
    account_charges = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    usage = stripe.Product.create(name="Usage (Ad Serving)", metadata={"kind": "ST"})
    meter = stripe.billing.Meter.create(
        display_name="ST impressions",
        event_name="st_impressions",
        default_aggregation={"formula": "sum"},
        customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
        value_settings={"event_payload_key": "value"},
    )
    flat = stripe.Price.create(
        product=account_charges.id,
        currency="usd",
        unit_amount=50_000,
        recurring={"interval": "month"},
        metadata={"kind": "flat"},
    )
    metered = stripe.Price.create(
        product=usage.id,
        currency="usd",
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=VOLUME_TIERS,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
        metadata={"kind": "ST"},
    )
    return meter, flat, metered


def subscribe(customer, flat, metered, **extra):
    return stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": flat.id}, {"price": metered.id}],
        billing_cycle_anchor=FEB_1,
        proration_behavior="none",
        **extra,
    )


def meter_event(customer, value: int, at: int, identifier: str):
    return stripe.billing.MeterEvent.create(
        event_name="st_impressions",
        payload={"stripe_customer_id": customer.id, "value": str(value)},
        timestamp=at,
        identifier=identifier,
    )


def cycle_invoice(customer, period_end: int):
    invoices = stripe.Invoice.list(customer=customer.id, limit=100)
    return next(
        i
        for i in invoices.auto_paging_iter()
        if i.billing_reason == "subscription_cycle" and i.period_end == period_end
    )


def test_month_end_cycle_bills_flat_in_advance_and_usage_in_arrears(server):
    clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_15)
    customer = stripe.Customer.create(
        email="ap@northwind.example", test_clock=clock.id, metadata={"acct_id": "1042"}
    )
    _, flat, metered = catalog()
    subscription = subscribe(customer, flat, metered)
    assert subscription["items"].data[0].current_period_end == FEB_1

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 10))
    meter_event(customer, 4, ts(2026, 2, 3), "1042:2026-02-03:ST")
    meter_event(customer, 2, ts(2026, 2, 9), "1042:2026-02-09:ST")
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=MAR_1 + 2 * 3600)

    invoice = cycle_invoice(customer, MAR_1)
    assert invoice.status == "paid"
    assert invoice.number and invoice.hosted_invoice_url
    lines = {line.pricing.price_details.price: line for line in invoice.lines.data}
    flat_line, usage_line = lines[flat.id], lines[metered.id]
    assert (flat_line.period.start, flat_line.period.end) == (MAR_1, ts(2026, 4, 1))
    assert flat_line.amount == 50_000
    assert (usage_line.period.start, usage_line.period.end) == (FEB_1, MAR_1)
    assert usage_line.quantity == 6
    assert usage_line.amount == 3_900  # 6 units, volume tier 2 for all: 6 x $6.50
    assert invoice.total == 53_900
    assert invoice.parent.subscription_details.subscription == subscription.id


def test_late_usage_counts_inside_the_grace_period_and_not_after(server):
    clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_15)
    customer = stripe.Customer.create(email="ap@contoso.example", test_clock=clock.id)
    _, flat, metered = catalog()
    subscribe(customer, flat, metered)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 20))
    meter_event(customer, 3, ts(2026, 2, 20), "a")
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=MAR_1 + 1800)
    draft = cycle_invoice(customer, MAR_1)
    assert draft.status == "draft"
    meter_event(customer, 8, ts(2026, 2, 28, 23), "late-inside-grace")
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=MAR_1 + 7200)
    meter_event(customer, 100, ts(2026, 2, 28, 23, 30), "after-finalization")
    invoice = cycle_invoice(customer, MAR_1)
    usage = next(
        line for line in invoice.lines.data if line.pricing.price_details.price == metered.id
    )
    assert usage.quantity == 11
    assert usage.amount == 6_600  # 11 units at the 11+ tier, $6 each
    assert invoice.status == "paid"


def test_declining_customer_gets_payment_failed(server):
    clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_15)
    customer = stripe.Customer.create(
        email="ap@declines.example",
        test_clock=clock.id,
        invoice_settings={"default_payment_method": "pm_card_chargeCustomerFail"},
    )
    _, flat, metered = catalog()
    subscribe(customer, flat, metered)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=FEB_1 + 7200)
    invoice = cycle_invoice(customer, FEB_1)
    assert invoice.status == "open"
    assert invoice.attempt_count == 1
    types = [e["type"] for e in server.store.events if e["data"]["object"].get("id") == invoice.id]
    assert types[:2] == ["invoice.created", "invoice.finalized"]
    assert "invoice.payment_failed" in types
    assert "invoice.paid" not in types


@pytest.mark.django_db(transaction=True)
def test_invoice_finalized_is_signed_delivered_and_synced_by_the_app(server, live_server):
    call_command(
        "setup_webhook_endpoint", base_url=live_server.url, register=True, stdout=StringIO()
    )
    endpoint = server.store.all("webhook_endpoint")[0]
    assert endpoint["url"] == webhook_endpoint_url(live_server.url)
    clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_15)
    customer = stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id)
    _, flat, metered = catalog()
    subscribe(customer, flat, metered)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 10))
    meter_event(customer, 6, ts(2026, 2, 3), "1042:2026-02-03:ST")
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=MAR_1 + 7200)
    assert server.webhooks.wait_idle(timeout=60)

    invoice = cycle_invoice(customer, MAR_1)
    finalized = [
        a
        for a in server.webhooks.attempts
        if a.event_type == "invoice.finalized"
        and server.store.get("event", a.event_id)["data"]["object"]["id"] == invoice.id
    ]
    assert [a.status for a in finalized] == [200], [a.error for a in finalized]
    assert all(a.status == 200 for a in server.webhooks.attempts), [
        (a.event_type, a.status, a.error) for a in server.webhooks.attempts if a.status != 200
    ]
    assert Event.objects.filter(type="invoice.finalized", id=finalized[0].event_id).exists()
    synced = Invoice.objects.get(id=invoice.id)
    assert synced.stripe_data["total"] == 53_900
    assert synced.number == invoice.number
