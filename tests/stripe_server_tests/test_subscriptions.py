"""Subscriptions on the Stripe-compatible server, through unmodified stripe-python: creation
(billing_cycle_anchor, proration_behavior), errors, listing, updates, pause_collection,
cancellation and calendar periods; billing portal sessions."""

import urllib.request
from datetime import UTC, datetime

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    """The Stripe-compatible server with fresh state (the module name `stripe` stays free)."""
    stripe_server.reset()
    return stripe_server


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


HOUR = 3600
JAN_15 = ts(2026, 1, 15)
JAN_20 = ts(2026, 1, 20)
FEB_1 = ts(2026, 2, 1)
FEB_15 = ts(2026, 2, 15)
MAR_1 = ts(2026, 3, 1)


def catalog():
    """A $500/month flat price, a $7/unit metered price on a meter, and a one-time price."""
    flat_product = stripe.Product.create(name="Account Charges")
    usage_product = stripe.Product.create(name="Usage (Ad Serving)")
    meter = stripe.billing.Meter.create(
        display_name="ST impressions",
        event_name="st_impressions",
        default_aggregation={"formula": "sum"},
        customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
        value_settings={"event_payload_key": "value"},
    )
    flat = stripe.Price.create(
        product=flat_product.id,
        currency="usd",
        unit_amount=50_000,
        recurring={"interval": "month"},
    )
    metered = stripe.Price.create(
        product=usage_product.id,
        currency="usd",
        unit_amount=700,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    one_time = stripe.Price.create(product=flat_product.id, currency="usd", unit_amount=2_500)
    return flat, metered, one_time


def clock_customer(frozen_time: int, **params):
    clock = stripe.test_helpers.TestClock.create(frozen_time=frozen_time)
    customer = stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id, **params)
    return clock, customer


def advance(clock, frozen_time: int) -> None:
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=frozen_time)


def anchored(customer, *prices, **extra):
    """Subscribed on the 1st of next month with nothing billed for the stub period."""
    return stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": price.id} for price in prices],
        billing_cycle_anchor=extra.pop("billing_cycle_anchor", FEB_1),
        proration_behavior=extra.pop("proration_behavior", "none"),
        **extra,
    )


def meter_event(customer, value: int, at: int, identifier: str):
    return stripe.billing.MeterEvent.create(
        event_name="st_impressions",
        payload={"stripe_customer_id": customer.id, "value": str(value)},
        timestamp=at,
        identifier=identifier,
    )


def invoices_of(customer) -> list:
    return list(stripe.Invoice.list(customer=customer.id, limit=100).auto_paging_iter())


def cycle_invoice(customer, period_end: int):
    return next(
        i
        for i in invoices_of(customer)
        if i.billing_reason == "subscription_cycle" and i.period_end == period_end
    )


def events(server, event_type: str, object_id: str) -> list[dict]:
    return [
        e
        for e in server.store.events
        if e["type"] == event_type and e["data"]["object"].get("id") == object_id
    ]


def invalid(call, *args, **params) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call(*args, **params)
    return caught.value


def periods(subscription) -> set[tuple[int, int]]:
    return {(i.current_period_start, i.current_period_end) for i in subscription["items"].data}


# Creation


def test_anchor_on_the_first_without_proration_bills_nothing_before_the_anchor(server):
    _, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()

    subscription = anchored(customer, flat, metered)

    assert subscription.status == "active"
    assert subscription.billing_cycle_anchor == FEB_1
    assert subscription.start_date == JAN_15
    assert periods(subscription) == {(JAN_15, FEB_1)}
    assert "current_period_end" not in subscription  # periods live on items since basil
    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert invoice.billing_reason == "subscription_create"
    assert invoice.total == 0
    assert invoice.status == "paid"
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert [line.amount for line in invoice.lines.data] == [0]
    assert invoice.lines.data[0].pricing.price_details.price == flat.id


def test_anchor_with_create_prorations_charges_the_stub_period_rounded_half_up(server):
    _, customer = clock_customer(FEB_15)
    product = stripe.Product.create(name="Seat")
    price = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=101, recurring={"interval": "month"}
    )

    subscription = anchored(
        customer, price, billing_cycle_anchor=MAR_1, proration_behavior="create_prorations"
    )

    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    [line] = invoice.lines.data
    # Feb 15 -> Mar 1 is half of February: 101 x 1/2 = 50.5, rounded half up.
    assert line.amount == 51
    assert (line.period.start, line.period.end) == (FEB_15, MAR_1)
    assert line.parent.subscription_item_details.proration is True
    assert invoice.total == 51
    assert invoice.status == "paid"


def test_anchor_with_create_prorations_prorates_by_elapsed_time_of_the_month(server):
    _, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()

    subscription = anchored(customer, flat, proration_behavior="create_prorations")

    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert invoice.total == 27_419  # $500 x 17/31 days = 27,419.35 cents
    assert periods(subscription) == {(JAN_15, FEB_1)}


def test_without_an_anchor_the_first_full_period_is_charged_at_creation(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()

    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])

    assert subscription.billing_cycle_anchor == JAN_15
    assert periods(subscription) == {(JAN_15, ts(2026, 2, 15))}
    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert invoice.total == 50_000
    assert invoice.status == "paid"
    [line] = invoice.lines.data
    assert (line.period.start, line.period.end) == (JAN_15, ts(2026, 2, 15))
    assert line.parent.subscription_item_details.proration is False

    advance(clock, ts(2026, 2, 15) + 2 * HOUR)
    cycle = cycle_invoice(customer, ts(2026, 2, 15))
    assert cycle.total == 50_000
    assert cycle.status == "paid"


def test_send_invoice_subscription_opens_its_first_invoice_with_a_due_date(server):
    _, customer = clock_customer(
        JAN_15, invoice_settings={"default_payment_method": "pm_card_chargeCustomerFail"}
    )
    flat, _, _ = catalog()

    subscription = stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": flat.id}],
        collection_method="send_invoice",
        days_until_due=30,
    )

    assert subscription.status == "active"  # nothing is charged, so nothing can decline
    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert (invoice.status, invoice.collection_method) == ("open", "send_invoice")
    assert invoice.due_date == JAN_15 + 30 * 86_400
    assert invoice.attempt_count == 0


def test_send_invoice_subscription_requires_days_until_due(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    error = invalid(
        stripe.Subscription.create,
        customer=customer.id,
        items=[{"price": flat.id}],
        collection_method="send_invoice",
    )
    assert error.param == "days_until_due"


def test_create_without_customer_names_the_customer_param(server):
    flat, _, _ = catalog()
    error = invalid(stripe.Subscription.create, items=[{"price": flat.id}])
    assert error.param == "customer"
    assert error.http_status == 400


def test_create_without_items_names_the_items_param(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    error = invalid(stripe.Subscription.create, customer=customer.id)
    assert error.param == "items"


def test_create_with_a_one_time_price_is_refused(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, one_time = catalog()
    error = invalid(
        stripe.Subscription.create,
        customer=customer.id,
        items=[{"price": flat.id}, {"price": one_time.id}],
    )
    assert error.param == "items[1][price]"
    assert "one_time" in str(error)
    assert stripe.Subscription.list(customer=customer.id).data == []


def test_create_with_a_quantity_on_a_metered_item_is_refused(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    _, metered, _ = catalog()
    error = invalid(
        stripe.Subscription.create,
        customer=customer.id,
        items=[{"price": metered.id, "quantity": 3}],
    )
    assert error.param == "items[0][quantity]"


def test_create_with_an_anchor_in_the_past_is_refused(server):
    _, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    error = invalid(anchored, customer, flat, billing_cycle_anchor=ts(2026, 1, 1))
    assert error.param == "billing_cycle_anchor"
    assert stripe.Invoice.list(customer=customer.id).data == []


# Retrieve and list


def test_retrieve_returns_items_with_prices_and_periods(server):
    _, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()
    created = anchored(customer, flat, metered)

    subscription = stripe.Subscription.retrieve(created.id)

    assert subscription.customer == customer.id
    assert [item.price.id for item in subscription["items"].data] == [flat.id, metered.id]
    assert [item.quantity for item in subscription["items"].data] == [1, None]
    assert periods(subscription) == {(JAN_15, FEB_1)}


def test_list_filters_by_customer_price_and_status(server):
    flat, metered, _ = catalog()
    northwind = stripe.Customer.create(email="ap@northwind.example")
    contoso = stripe.Customer.create(email="ap@contoso.example")
    both = stripe.Subscription.create(
        customer=northwind.id, items=[{"price": flat.id}, {"price": metered.id}]
    )
    usage_only = stripe.Subscription.create(customer=contoso.id, items=[{"price": metered.id}])
    canceled = stripe.Subscription.create(customer=contoso.id, items=[{"price": flat.id}])
    stripe.Subscription.cancel(canceled.id)

    def ids(**params) -> set[str]:
        return {s.id for s in stripe.Subscription.list(**params).auto_paging_iter()}

    assert ids() == {both.id, usage_only.id}  # by default, everything not canceled
    assert ids(customer=contoso.id) == {usage_only.id}
    assert ids(price=flat.id) == {both.id}
    assert ids(status="canceled") == {canceled.id}
    assert ids(status="all") == {both.id, usage_only.id, canceled.id}
    assert ids(status="all", customer=contoso.id, price=flat.id) == {canceled.id}


# Updates


def test_metadata_update_emits_updated_with_previous_attributes(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(
        customer=customer.id, items=[{"price": flat.id}], metadata={"acct_id": "1042"}
    )

    updated = stripe.Subscription.modify(subscription.id, metadata={"acct_id": "2001"})

    assert updated.metadata.to_dict() == {"acct_id": "2001"}
    [event] = events(server, "customer.subscription.updated", subscription.id)
    assert event["data"]["object"]["metadata"] == {"acct_id": "2001"}
    assert event["data"]["previous_attributes"]["metadata"]["acct_id"] == "1042"
    assert set(event["data"]["previous_attributes"]) == {"metadata"}


def test_items_are_added_requantified_and_deleted(server):
    _, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()
    product = stripe.Product.create(name="Seat")
    seat = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=1_000, recurring={"interval": "month"}
    )
    subscription = anchored(customer, flat)
    [flat_item] = subscription["items"].data

    added = stripe.Subscription.modify(
        subscription.id,
        items=[{"id": flat_item.id, "quantity": 3}, {"price": seat.id, "quantity": 2}],
        proration_behavior="none",
    )
    assert [(i.price.id, i.quantity) for i in added["items"].data] == [(flat.id, 3), (seat.id, 2)]
    assert periods(added) == {(JAN_15, FEB_1)}  # a new item joins the current period

    swapped = stripe.Subscription.modify(
        subscription.id,
        items=[{"id": flat_item.id, "deleted": True}, {"price": metered.id}],
        proration_behavior="none",
    )
    assert [i.price.id for i in swapped["items"].data] == [seat.id, metered.id]
    assert swapped["items"].total_count == 2
    listed = stripe.SubscriptionItem.list(subscription=subscription.id)
    assert {i.price.id for i in listed.data} == {seat.id, metered.id}


def test_deleting_every_item_is_refused(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])
    [item] = subscription["items"].data
    error = invalid(
        stripe.Subscription.modify, subscription.id, items=[{"id": item.id, "deleted": True}]
    )
    assert error.param == "items"
    assert len(stripe.Subscription.retrieve(subscription.id)["items"].data) == 1


def test_pause_keep_as_draft_leaves_the_cycle_invoice_draft_past_the_grace_period(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)

    paused = stripe.Subscription.modify(
        subscription.id, pause_collection={"behavior": "keep_as_draft"}
    )
    assert paused.pause_collection.behavior == "keep_as_draft"
    assert paused.status == "active"  # pausing collection does not pause the subscription
    advance(clock, FEB_1 + 5 * HOUR)

    invoice = cycle_invoice(customer, FEB_1)
    assert invoice.status == "draft"
    assert invoice.auto_advance is False
    assert invoice.automatically_finalizes_at is None
    assert invoice.number is None
    assert invoice.total == 50_000
    advance(clock, ts(2026, 2, 3))
    assert stripe.Invoice.retrieve(invoice.id).status == "draft"
    assert events(server, "customer.subscription.paused", subscription.id) == []


def test_pause_mark_uncollectible_finalizes_without_collecting(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    stripe.Subscription.modify(subscription.id, pause_collection={"behavior": "mark_uncollectible"})

    advance(clock, FEB_1 + 2 * HOUR)

    invoice = cycle_invoice(customer, FEB_1)
    assert invoice.status == "uncollectible"
    assert invoice.number is not None
    assert invoice.attempt_count == 0
    assert invoice.amount_paid == 0
    assert events(server, "invoice.marked_uncollectible", invoice.id)
    assert events(server, "invoice.paid", invoice.id) == []


def test_pause_void_voids_the_cycle_invoice(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    stripe.Subscription.modify(subscription.id, pause_collection={"behavior": "void"})

    advance(clock, FEB_1 + 2 * HOUR)

    invoice = cycle_invoice(customer, FEB_1)
    assert invoice.status == "void"
    assert invoice.status_transitions.voided_at == FEB_1 + HOUR
    assert invoice.attempt_count == 0
    assert events(server, "invoice.voided", invoice.id)


def test_clearing_pause_with_an_empty_string_resumes_collection(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    stripe.Subscription.modify(subscription.id, pause_collection={"behavior": "void"})

    resumed = stripe.Subscription.modify(subscription.id, pause_collection="")

    assert resumed.pause_collection is None
    updates = events(server, "customer.subscription.updated", subscription.id)
    assert updates[-1]["data"]["previous_attributes"]["pause_collection"] == {
        "behavior": "void",
        "resumes_at": None,
    }
    assert events(server, "customer.subscription.resumed", subscription.id) == []
    advance(clock, FEB_1 + 2 * HOUR)
    assert cycle_invoice(customer, FEB_1).status == "paid"


def test_invalid_pause_behavior_names_the_param(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])
    error = invalid(
        stripe.Subscription.modify, subscription.id, pause_collection={"behavior": "skip"}
    )
    assert error.param == "pause_collection[behavior]"
    assert stripe.Subscription.retrieve(subscription.id).pause_collection is None


# Cancellation


def test_cancel_at_period_end_bills_final_usage_then_deletes(server):
    clock, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()
    subscription = anchored(customer, flat, metered)
    advance(clock, JAN_20)
    meter_event(customer, 4, ts(2026, 1, 18), "1042:2026-01-18:ST")

    pending = stripe.Subscription.modify(subscription.id, cancel_at_period_end=True)

    assert pending.status == "active"
    assert pending.cancel_at_period_end is True
    assert pending.canceled_at == JAN_20  # the time of the request, not the period end
    advance(clock, FEB_1 + 2 * HOUR)

    final = cycle_invoice(customer, FEB_1)
    assert [line.pricing.price_details.price for line in final.lines.data] == [metered.id]
    [usage] = final.lines.data
    assert (usage.quantity, usage.amount) == (4, 2_800)
    assert (usage.period.start, usage.period.end) == (JAN_15, FEB_1)
    assert final.status == "paid"
    ended = stripe.Subscription.retrieve(subscription.id)
    assert ended.status == "canceled"
    assert ended.ended_at == FEB_1
    assert ended.canceled_at == JAN_20
    assert len(events(server, "customer.subscription.deleted", subscription.id)) == 1
    count = len(invoices_of(customer))
    advance(clock, MAR_1 + 2 * HOUR)
    assert len(invoices_of(customer)) == count


def test_cancel_at_period_end_can_be_withdrawn(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    stripe.Subscription.modify(subscription.id, cancel_at_period_end=True)

    kept = stripe.Subscription.modify(subscription.id, cancel_at_period_end=False)

    assert kept.cancel_at_period_end is False
    assert kept.canceled_at is None
    advance(clock, FEB_1 + 2 * HOUR)
    assert stripe.Subscription.retrieve(subscription.id).status == "active"
    assert cycle_invoice(customer, FEB_1).total == 50_000


def test_cancel_without_invoice_now_ends_immediately_and_bills_nothing(server):
    clock, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()
    subscription = anchored(customer, flat, metered)
    advance(clock, JAN_20)
    meter_event(customer, 4, ts(2026, 1, 18), "a")
    before = {i.id for i in invoices_of(customer)}

    canceled = stripe.Subscription.cancel(subscription.id)

    assert canceled.status == "canceled"
    assert canceled.canceled_at == JAN_20
    assert canceled.ended_at == JAN_20
    assert canceled.cancellation_details.reason == "cancellation_requested"
    assert {i.id for i in invoices_of(customer)} == before
    assert len(events(server, "customer.subscription.deleted", subscription.id)) == 1
    advance(clock, FEB_1 + 2 * HOUR)
    assert {i.id for i in invoices_of(customer)} == before


def test_cancel_with_invoice_now_bills_usage_to_date(server):
    clock, customer = clock_customer(JAN_15)
    flat, metered, _ = catalog()
    subscription = anchored(customer, flat, metered)
    advance(clock, ts(2026, 2, 10))
    meter_event(customer, 3, ts(2026, 2, 3), "feb-3")
    meter_event(customer, 2, ts(2026, 1, 20), "jan-20-already-billed")

    canceled = stripe.Subscription.cancel(subscription.id, invoice_now=True)

    assert canceled.status == "canceled"
    final = stripe.Invoice.retrieve(canceled.latest_invoice)
    assert final.created == ts(2026, 2, 10)
    [usage] = final.lines.data
    assert usage.pricing.price_details.price == metered.id
    assert (usage.period.start, usage.period.end) == (FEB_1, ts(2026, 2, 10))
    assert (usage.quantity, usage.amount) == (3, 2_100)
    assert final.status == "paid"
    assert final.parent.subscription_details.subscription == subscription.id


def test_cancelling_a_canceled_subscription_is_not_found(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])
    stripe.Subscription.cancel(subscription.id)

    error = invalid(stripe.Subscription.cancel, subscription.id)

    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert stripe.Subscription.retrieve(subscription.id).status == "canceled"


def test_a_canceled_subscription_accepts_metadata_but_not_other_changes(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])
    stripe.Subscription.cancel(subscription.id)

    tagged = stripe.Subscription.modify(subscription.id, metadata={"churn": "price"})
    assert tagged.metadata.churn == "price"
    invalid(stripe.Subscription.modify, subscription.id, description="back again")
    assert stripe.Subscription.retrieve(subscription.id).description is None


# Calendar


def test_monthly_periods_from_the_31st_clamp_to_short_months(server):
    clock, customer = clock_customer(ts(2026, 1, 31))
    flat, _, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])
    assert periods(subscription) == {(ts(2026, 1, 31), ts(2026, 2, 28))}

    advance(clock, ts(2026, 2, 28) + 2 * HOUR)
    assert periods(stripe.Subscription.retrieve(subscription.id)) == {
        (ts(2026, 2, 28), ts(2026, 3, 31))
    }
    advance(clock, ts(2026, 3, 31) + 2 * HOUR)
    assert periods(stripe.Subscription.retrieve(subscription.id)) == {
        (ts(2026, 3, 31), ts(2026, 4, 30))
    }
    march = cycle_invoice(customer, ts(2026, 3, 31))
    [line] = march.lines.data
    assert (line.period.start, line.period.end) == (ts(2026, 3, 31), ts(2026, 4, 30))


# Billing portal


def test_portal_session_links_to_a_page_for_the_customer(server):
    customer = stripe.Customer.create(email="ap@northwind.example")

    session = stripe.billing_portal.Session.create(
        customer=customer.id, return_url="https://billing.example/account"
    )

    assert session.customer == customer.id
    assert session.return_url == "https://billing.example/account"
    assert session.url.startswith(server.url)
    with urllib.request.urlopen(session.url, timeout=10) as page:
        assert page.status == 200
        assert page.headers.get_content_type() == "text/html"


def test_portal_session_for_an_unknown_customer_is_refused(server):
    error = invalid(stripe.billing_portal.Session.create, customer="cus_Missing0000000000")
    assert error.param == "customer"
    assert error.code == "resource_missing"


def test_pause_resumes_collection_at_resumes_at(server):
    clock, customer = clock_customer(JAN_15)
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    stripe.Subscription.modify(
        subscription.id, pause_collection={"behavior": "void", "resumes_at": FEB_15}
    )

    advance(clock, FEB_1 + 2 * HOUR)
    assert cycle_invoice(customer, FEB_1).status == "void"
    assert stripe.Subscription.retrieve(subscription.id).pause_collection.resumes_at == FEB_15
    advance(clock, MAR_1 + 2 * HOUR)

    assert stripe.Subscription.retrieve(subscription.id).pause_collection is None
    assert cycle_invoice(customer, MAR_1).status == "paid"
    resumed = events(server, "customer.subscription.updated", subscription.id)
    assert any(
        (e["data"]["previous_attributes"].get("pause_collection") or {}).get("resumes_at") == FEB_15
        and e["data"]["object"]["pause_collection"] is None
        for e in resumed
    )


def test_quantity_on_a_metered_item_update_is_refused(server):
    customer = stripe.Customer.create(email="ap@northwind.example")
    _, metered, _ = catalog()
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": metered.id}])
    [item] = subscription["items"].data
    error = invalid(
        stripe.Subscription.modify, subscription.id, items=[{"id": item.id, "quantity": 5}]
    )
    assert error.param == "items[0][quantity]"
    assert stripe.SubscriptionItem.retrieve(item.id).quantity is None


def test_a_declined_first_invoice_leaves_the_subscription_incomplete_until_paid(server):
    customer = stripe.Customer.create(
        email="ap@declines.example",
        invoice_settings={"default_payment_method": "pm_card_chargeCustomerFail"},
    )
    flat, _, _ = catalog()

    subscription = stripe.Subscription.create(customer=customer.id, items=[{"price": flat.id}])

    assert subscription.status == "incomplete"
    [created] = events(server, "customer.subscription.created", subscription.id)
    assert created["data"]["object"]["status"] == "incomplete"
    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert stripe.Subscription.list(customer=customer.id).data[0].id == subscription.id

    stripe.Customer.modify(customer.id, invoice_settings={"default_payment_method": "pm_card_visa"})
    assert stripe.Invoice.pay(invoice.id).status == "paid"

    assert stripe.Subscription.retrieve(subscription.id).status == "active"
    [activated] = events(server, "customer.subscription.updated", subscription.id)
    assert activated["data"]["previous_attributes"] == {"status": "incomplete"}


def test_the_subscription_default_payment_method_is_charged_before_the_customers(server):
    customer = stripe.Customer.create(
        email="ap@northwind.example",
        invoice_settings={"default_payment_method": "pm_card_visa"},
    )
    flat, _, _ = catalog()

    subscription = stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": flat.id}],
        default_payment_method="pm_card_chargeCustomerFail",
    )

    assert subscription.status == "incomplete"
    assert stripe.Invoice.retrieve(subscription.latest_invoice).status == "open"


def test_a_zero_first_invoice_activates_even_a_declining_customer(server):
    _, customer = clock_customer(
        JAN_15, invoice_settings={"default_payment_method": "pm_card_chargeCustomerFail"}
    )
    flat, _, _ = catalog()
    subscription = anchored(customer, flat)
    assert subscription.status == "active"
    assert stripe.Invoice.retrieve(subscription.latest_invoice).status == "paid"
