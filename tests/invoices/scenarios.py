"""Stripe-side scenarios for delivery tests: a customer billed through a real cycle."""

from datetime import UTC, datetime

import stripe

from tests.factories import BillingAccountFactory
from tests.fixtures.stripe import sign_event


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def billed_customer(*, owner="parallel", email="ap@northwind.example", acct_id=1042):
    clock = stripe.test_helpers.TestClock.create(frozen_time=ts(2026, 1, 15))
    customer = stripe.Customer.create(
        email=email,
        name="Northwind Traders",
        test_clock=clock.id,
        metadata={"acct_id": str(acct_id)},
    )
    account = BillingAccountFactory(
        acct_id=acct_id, stripe_customer_id=customer.id, billing_owner=owner, billing_email=email
    )
    product = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    price = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=50_000,
        recurring={"interval": "month"},
        metadata={"kind": "flat", "acct_id": str(acct_id)},
    )
    stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": price.id}],
        billing_cycle_anchor=ts(2026, 2, 1),
        proration_behavior="none",
        collection_method="send_invoice",
        days_until_due=30,
        metadata={"acct_id": str(acct_id)},
    )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 1, 2))
    return account, customer


def finalized_event(server, customer_id):
    for event in server.store.events:
        obj = event["data"]["object"]
        if (
            event["type"] == "invoice.finalized"
            and obj["customer"] == customer_id
            and obj["billing_reason"] == "subscription_cycle"
        ):
            return event
    raise AssertionError("no cycle invoice.finalized event")


def deliver(client, url, event, capture):
    payload, headers = sign_event(event)
    with capture(execute=True):
        response = client.post(url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    return response
