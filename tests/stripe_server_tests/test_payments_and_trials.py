"""Stripe's test payment methods attached and charged, sending invoices, and subscription
trials: trial_will_end three days before the end, pausing without a payment method, resuming."""

from datetime import UTC, datetime

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


JAN_1 = ts(2026, 1, 1)
DAY = 86_400


def event_types(server, object_id=None):
    return [
        e["type"]
        for e in server.store.events
        if object_id is None or e["data"]["object"].get("id") == object_id
    ]


def with_card(token, **params):
    cust = stripe.Customer.create(email="ap@northwind.example", **params)
    method = stripe.PaymentMethod.attach(token, customer=cust.id)
    stripe.Customer.modify(cust.id, invoice_settings={"default_payment_method": method.id})
    return cust, method


def open_invoice(cust, amount=4_000, **params):
    invoice = stripe.Invoice.create(customer=cust.id, **params)
    stripe.InvoiceItem.create(customer=cust.id, amount=amount, currency="usd", invoice=invoice.id)
    return stripe.Invoice.finalize_invoice(invoice.id)


def test_attaching_a_test_token_creates_a_card_on_the_customer(server):
    cust, method = with_card("pm_card_visa")

    assert method.id.startswith("pm_") and method.id != "pm_card_visa"
    assert (method.card.brand, method.card.last4, method.customer) == ("visa", "4242", cust.id)
    assert [m.id for m in stripe.Customer.list_payment_methods(cust.id).data] == [method.id]
    assert "payment_method.attached" in event_types(server, method.id)


def test_pm_card_visa_pays(server):
    cust, method = with_card("pm_card_visa")
    paid = stripe.Invoice.pay(open_invoice(cust).id)
    assert paid.status == "paid"
    assert (
        server.store.private_of(
            stripe.Invoice.retrieve(paid.id, expand=["payments"]).payments.data[0].id
        )["payment_method"]
        == method.id
    )


def test_pm_card_charge_customer_fail_attaches_but_declines(server):
    cust, method = with_card("pm_card_chargeCustomerFail")
    assert method.card.last4 == "0341"
    invoice = open_invoice(cust)

    with pytest.raises(stripe.CardError) as caught:
        stripe.Invoice.pay(invoice.id)

    assert caught.value.code == "card_declined"
    after = stripe.Invoice.retrieve(invoice.id)
    assert after.status == "open"
    assert after.attempt_count == 1
    assert "invoice.payment_failed" in event_types(server, invoice.id)


def test_a_declining_card_leaves_an_auto_advancing_invoice_open(server):
    cust, _ = with_card("pm_card_chargeCustomerFail")
    invoice = open_invoice(cust, auto_advance=True)
    assert invoice.status == "open"
    assert invoice.next_payment_attempt is not None
    assert "invoice.payment_failed" in event_types(server, invoice.id)


def test_pm_card_visa_charge_declined_is_refused_at_attach(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    with pytest.raises(stripe.CardError):
        stripe.PaymentMethod.attach("pm_card_visa_chargeDeclined", customer=cust.id)


def test_detach(server):
    cust, method = with_card("pm_card_visa")
    assert stripe.PaymentMethod.detach(method.id).customer is None
    assert stripe.Customer.list_payment_methods(cust.id).data == []


def test_send_invoice_emits_invoice_sent_and_finalizes_a_draft(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    invoice = stripe.Invoice.create(
        customer=cust.id, collection_method="send_invoice", days_until_due=30
    )
    stripe.InvoiceItem.create(customer=cust.id, amount=900, currency="usd", invoice=invoice.id)

    sent = stripe.Invoice.send_invoice(invoice.id)

    assert sent.status == "open"
    assert event_types(server, invoice.id)[-2:] == ["invoice.finalized", "invoice.sent"]
    stripe.Invoice.void_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Invoice.send_invoice(invoice.id)


def trial_subscription(cust, **params):
    product = stripe.Product.create(name="Platform")
    price = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=5_000, recurring={"interval": "month"}
    )
    return stripe.Subscription.create(customer=cust.id, items=[{"price": price.id}], **params)


def clock_customer(**params):
    clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_1)
    cust = stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id, **params)
    return clock, cust


def test_a_trial_starts_trialing_with_a_zero_invoice(server):
    _, cust = clock_customer()
    subscription = trial_subscription(cust, trial_period_days=14)

    assert subscription.status == "trialing"
    assert (subscription.trial_start, subscription.trial_end) == (JAN_1, JAN_1 + 14 * DAY)
    first = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert (first.total, first.status) == (0, "paid")
    assert first.lines.data[0].description.startswith("Trial period for")


def test_trial_will_end_is_sent_three_days_before_the_end_on_clock_advance(server):
    clock, cust = clock_customer()
    subscription = trial_subscription(cust, trial_period_days=14)

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 10 * DAY)
    assert "customer.subscription.trial_will_end" not in event_types(server, subscription.id)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 11 * DAY)

    notices = [
        e for e in server.store.events if e["type"] == "customer.subscription.trial_will_end"
    ]
    assert len(notices) == 1
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 12 * DAY)
    assert event_types(server).count("customer.subscription.trial_will_end") == 1


def test_a_trial_with_a_card_becomes_active_and_is_billed(server):
    clock, cust = clock_customer()
    method = stripe.PaymentMethod.attach("pm_card_visa", customer=cust.id)
    stripe.Customer.modify(cust.id, invoice_settings={"default_payment_method": method.id})
    subscription = trial_subscription(
        cust,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 8 * DAY)

    after = stripe.Subscription.retrieve(subscription.id)
    assert after.status == "active"
    cycle = stripe.Invoice.retrieve(after.latest_invoice)
    assert cycle.billing_reason == "subscription_cycle"


def test_a_trial_without_a_payment_method_pauses_then_resumes(server):
    clock, cust = clock_customer()
    subscription = trial_subscription(
        cust,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 8 * DAY)

    paused = stripe.Subscription.retrieve(subscription.id)
    assert paused.status == "paused"
    assert "customer.subscription.paused" in event_types(server, subscription.id)
    assert paused.latest_invoice == subscription.latest_invoice  # nothing billed
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 60 * DAY)
    assert stripe.Subscription.retrieve(subscription.id).status == "paused"

    method = stripe.PaymentMethod.attach("pm_card_visa", customer=cust.id)
    stripe.Customer.modify(cust.id, invoice_settings={"default_payment_method": method.id})
    resumed = stripe.Subscription.resume(subscription.id)

    assert resumed.status == "active"
    assert "customer.subscription.resumed" in event_types(server, subscription.id)
    invoice = stripe.Invoice.retrieve(resumed.latest_invoice)
    assert (invoice.total, invoice.status) == (5_000, "paid")


def test_only_a_paused_subscription_can_be_resumed(server):
    _, cust = clock_customer()
    subscription = trial_subscription(cust)
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Subscription.resume(subscription.id)


def test_a_trial_without_a_payment_method_can_cancel(server):
    clock, cust = clock_customer()
    subscription = trial_subscription(
        cust,
        trial_period_days=3,
        trial_settings={"end_behavior": {"missing_payment_method": "cancel"}},
    )
    # A trial no longer than the notice gets its trial_will_end at once.
    assert "customer.subscription.trial_will_end" in event_types(server, subscription.id)

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 4 * DAY)

    assert stripe.Subscription.retrieve(subscription.id).status == "canceled"
    assert "customer.subscription.deleted" in event_types(server, subscription.id)
