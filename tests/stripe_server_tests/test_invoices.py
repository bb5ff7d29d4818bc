"""Invoices and invoice items on the Stripe-compatible server, through unmodified
stripe-python: manual invoices, finalization and numbering, payment, the status transitions
and their errors, lines pagination, listing, updates; invoice item amounts."""

import urllib.request
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    """The Stripe-compatible server with fresh state (the module name `stripe` stays free)."""
    stripe_server.reset()
    return stripe_server


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


DAY = 86_400
JAN_15 = ts(2026, 1, 15)
FEB_1 = ts(2026, 2, 1)

DECLINING = {"default_payment_method": "pm_card_chargeCustomerFail"}


def customer(**params):
    return stripe.Customer.create(email="ap@northwind.example", **params)


def clock_customer(frozen_time: int, **params):
    clock = stripe.test_helpers.TestClock.create(frozen_time=frozen_time)
    return clock, customer(test_clock=clock.id, **params)


def item(cust, amount: int, **params):
    return stripe.InvoiceItem.create(customer=cust.id, amount=amount, currency="usd", **params)


def draft_with(cust, *amounts: int, **params):
    invoice = stripe.Invoice.create(customer=cust.id, **params)
    for amount in amounts:
        item(cust, amount, invoice=invoice.id)
    return stripe.Invoice.retrieve(invoice.id)


def open_invoice(cust, *amounts: int, **params):
    """Finalized without collecting (auto_advance is false for API-created invoices)."""
    return stripe.Invoice.finalize_invoice(draft_with(cust, *amounts, **params).id)


def event_types(server, object_id: str) -> list[str]:
    return [e["type"] for e in server.store.events if e["data"]["object"].get("id") == object_id]


def invalid(call, *args, **params) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call(*args, **params)
    return caught.value


def one_time_price(unit_amount: int):
    product = stripe.Product.create(name="Setup fee")
    return stripe.Price.create(product=product.id, currency="usd", unit_amount=unit_amount)


# Creating and filling drafts


def test_manual_invoice_excludes_pending_items_by_default(server):
    cust = customer()
    pending = item(cust, 1_500)

    invoice = stripe.Invoice.create(customer=cust.id)

    assert invoice.status == "draft"
    assert invoice.billing_reason == "manual"
    assert invoice.auto_advance is False
    assert invoice.lines.data == []
    assert invoice.total == 0
    assert stripe.InvoiceItem.retrieve(pending.id).invoice is None


def test_manual_invoice_with_include_pulls_in_pending_items(server):
    cust = customer()
    first = item(cust, 1_500, description="Setup")
    second = item(cust, 2_000, description="Training")
    other_customer = item(customer(), 9_900)

    invoice = stripe.Invoice.create(customer=cust.id, pending_invoice_items_behavior="include")

    details = [line.parent.invoice_item_details.invoice_item for line in invoice.lines.data]
    assert sorted(details) == sorted([first.id, second.id])
    assert invoice.total == 3_500
    assert invoice.amount_due == 3_500
    assert stripe.InvoiceItem.retrieve(first.id).invoice == invoice.id
    assert stripe.InvoiceItem.retrieve(other_customer.id).invoice is None


def test_invalid_pending_items_behavior_creates_nothing(server):
    cust = customer()
    error = invalid(
        stripe.Invoice.create, customer=cust.id, pending_invoice_items_behavior="everything"
    )
    assert error.param == "pending_invoice_items_behavior"
    assert stripe.Invoice.list(customer=cust.id).data == []


def test_items_added_with_invoice_become_lines_of_that_draft(server):
    cust = customer()
    invoice = stripe.Invoice.create(customer=cust.id)

    added = item(cust, 4_200, invoice=invoice.id, description="Consulting")
    item(cust, 800)  # pending, not on this invoice

    invoice = stripe.Invoice.retrieve(invoice.id)
    [line] = invoice.lines.data
    assert line.amount == 4_200
    assert line.description == "Consulting"
    assert line.parent.type == "invoice_item_details"
    assert line.parent.invoice_item_details.invoice_item == added.id
    assert invoice.total == 4_200
    assert added.invoice == invoice.id


def test_items_cannot_be_added_to_a_finalized_invoice(server):
    cust = customer()
    invoice = open_invoice(cust, 1_000)
    error = invalid(item, cust, 500, invoice=invoice.id)
    assert error.param == "invoice"
    assert stripe.Invoice.retrieve(invoice.id).total == 1_000


# Finalizing


def test_finalize_numbers_per_customer_and_links_the_hosted_page(server):
    northwind, contoso = customer(), customer()

    first = open_invoice(northwind, 1_000)
    second = open_invoice(northwind, 2_000)
    other = open_invoice(contoso, 3_000)

    assert first.number == f"{northwind.invoice_prefix}-0001"
    assert second.number == f"{northwind.invoice_prefix}-0002"
    assert other.number == f"{contoso.invoice_prefix}-0001"
    assert first.status == "open"
    assert first.status_transitions.finalized_at is not None
    assert stripe.Customer.retrieve(northwind.id).next_invoice_sequence == 3
    with urllib.request.urlopen(first.hosted_invoice_url, timeout=10) as page:
        body = page.read().decode()
        assert page.status == 200
        assert page.headers.get_content_type() == "text/html"
    assert first.number in body
    assert "10.00" in body


def test_a_draft_has_no_number_or_hosted_page(server):
    invoice = draft_with(customer(), 1_000)
    assert invoice.number is None
    assert invoice.hosted_invoice_url is None
    assert invoice.status_transitions.finalized_at is None


def test_send_invoice_due_date_is_days_until_due_after_finalization(server):
    _, cust = clock_customer(JAN_15)
    invoice = draft_with(cust, 12_000, collection_method="send_invoice", days_until_due=30)

    finalized = stripe.Invoice.finalize_invoice(invoice.id)

    assert finalized.status == "open"
    assert finalized.due_date == JAN_15 + 30 * DAY
    assert finalized.attempt_count == 0  # send_invoice waits for the customer to pay


def test_finalizing_a_zero_total_invoice_marks_it_paid(server):
    cust = customer()
    invoice = stripe.Invoice.create(customer=cust.id)

    finalized = stripe.Invoice.finalize_invoice(invoice.id)

    assert finalized.status == "paid"
    assert finalized.amount_paid == 0
    assert finalized.status_transitions.paid_at is not None
    assert event_types(server, invoice.id)[-3:] == [
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_finalizing_twice_is_refused(server):
    invoice = open_invoice(customer(), 1_000)
    error = invalid(stripe.Invoice.finalize_invoice, invoice.id)
    assert "open" in str(error)
    assert stripe.Invoice.retrieve(invoice.id).number == invoice.number


# Paying


def test_pay_marks_paid_and_records_the_payment(server):
    cust = customer()
    invoice = open_invoice(cust, 7_500)

    paid = stripe.Invoice.pay(invoice.id)

    assert paid.status == "paid"
    assert paid.amount_paid == 7_500
    assert paid.amount_remaining == 0
    assert paid.attempt_count == 1
    assert "invoice.paid" in event_types(server, invoice.id)
    expanded = stripe.Invoice.retrieve(invoice.id, expand=["payments"])
    [payment] = expanded.payments.data
    assert payment.amount_paid == 7_500
    assert payment.status == "paid"
    assert payment.invoice == invoice.id


def test_declined_payment_is_a_card_error_and_leaves_the_invoice_open(server):
    cust = customer(invoice_settings=DECLINING)
    invoice = open_invoice(cust, 7_500)

    with pytest.raises(stripe.CardError) as caught:
        stripe.Invoice.pay(invoice.id)

    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"
    after = stripe.Invoice.retrieve(invoice.id)
    assert after.status == "open"
    assert after.attempt_count == 1
    assert after.amount_paid == 0
    types = event_types(server, invoice.id)
    assert "invoice.payment_failed" in types
    assert "invoice.paid" not in types
    assert stripe.Invoice.retrieve(invoice.id, expand=["payments"]).payments.data == []


def test_paid_out_of_band_marks_paid_without_charging(server):
    cust = customer(invoice_settings=DECLINING)  # a card that would decline is never tried
    invoice = open_invoice(cust, 7_500)

    paid = stripe.Invoice.pay(invoice.id, paid_out_of_band=True)

    assert paid.status == "paid"
    assert paid.amount_paid == 7_500
    assert paid.attempt_count == 0
    assert "invoice.payment_failed" not in event_types(server, invoice.id)


def test_paying_a_paid_invoice_is_refused(server):
    invoice = open_invoice(customer(), 1_000)
    stripe.Invoice.pay(invoice.id)
    error = invalid(stripe.Invoice.pay, invoice.id)
    assert "already paid" in str(error)
    assert stripe.Invoice.retrieve(invoice.id).amount_paid == 1_000


# Void and uncollectible


def test_void_an_open_invoice(server):
    invoice = open_invoice(customer(), 5_000)

    voided = stripe.Invoice.void_invoice(invoice.id)

    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None
    assert "invoice.voided" in event_types(server, invoice.id)
    error = invalid(stripe.Invoice.pay, invoice.id)
    assert "void" in str(error)


def test_mark_uncollectible_then_pay_or_void(server):
    cust = customer()
    first, second = open_invoice(cust, 5_000), open_invoice(cust, 6_000)

    for invoice in (first, second):
        marked = stripe.Invoice.mark_uncollectible(invoice.id)
        assert marked.status == "uncollectible"
        assert marked.status_transitions.marked_uncollectible_at is not None

    assert stripe.Invoice.pay(first.id).status == "paid"
    voided = stripe.Invoice.void_invoice(second.id)
    assert voided.status == "void"
    [update] = [
        e
        for e in server.store.events
        if e["type"] == "invoice.updated" and e["data"]["object"]["status"] == "void"
    ]
    assert update["data"]["previous_attributes"] == {"status": "uncollectible"}


def test_voiding_a_draft_is_refused_with_a_clear_error(server):
    invoice = draft_with(customer(), 1_000)
    error = invalid(stripe.Invoice.void_invoice, invoice.id)
    assert error.http_status == 400
    assert "draft" in str(error)
    assert stripe.Invoice.retrieve(invoice.id).status == "draft"


def test_paid_invoices_cannot_be_voided_or_marked_uncollectible(server):
    invoice = open_invoice(customer(), 1_000)
    stripe.Invoice.pay(invoice.id)
    assert "paid" in str(invalid(stripe.Invoice.void_invoice, invoice.id))
    assert "paid" in str(invalid(stripe.Invoice.mark_uncollectible, invoice.id))
    assert stripe.Invoice.retrieve(invoice.id).status == "paid"


# Deleting drafts


def test_deleting_a_draft_returns_its_items_to_pending(server):
    cust = customer()
    invoice = stripe.Invoice.create(customer=cust.id)
    attached = item(cust, 2_500, invoice=invoice.id)

    result = stripe.Invoice.delete(invoice.id)

    assert result.deleted is True
    assert stripe.InvoiceItem.retrieve(attached.id).invoice is None
    pending = stripe.InvoiceItem.list(customer=cust.id, pending=True)
    assert [i.id for i in pending.data] == [attached.id]
    assert invalid(stripe.Invoice.retrieve, invoice.id).http_status == 404


def test_deleting_a_finalized_invoice_is_refused(server):
    invoice = open_invoice(customer(), 1_000)
    error = invalid(stripe.Invoice.delete, invoice.id)
    assert "void" in str(error).lower()
    assert stripe.Invoice.retrieve(invoice.id).status == "open"


def test_deleting_a_subscription_draft_is_refused(server):
    clock, cust = clock_customer(JAN_15)
    product = stripe.Product.create(name="Account Charges")
    price = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=50_000, recurring={"interval": "month"}
    )
    subscription = stripe.Subscription.create(
        customer=cust.id,
        items=[{"price": price.id}],
        billing_cycle_anchor=FEB_1,
        proration_behavior="none",
    )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=FEB_1 + 60)
    draft = stripe.Invoice.retrieve(stripe.Subscription.retrieve(subscription.id).latest_invoice)
    assert (draft.status, draft.billing_reason) == ("draft", "subscription_cycle")

    error = invalid(stripe.Invoice.delete, draft.id)

    assert "subscription" in str(error)
    assert stripe.Invoice.retrieve(draft.id).status == "draft"


def test_pending_items_go_only_to_their_own_subscriptions_invoice(server):
    clock, cust = clock_customer(JAN_15)
    product = stripe.Product.create(name="Account Charges")
    monthly = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=50_000, recurring={"interval": "month"}
    )
    mid_month = stripe.Subscription.create(customer=cust.id, items=[{"price": monthly.id}])
    on_the_first = stripe.Subscription.create(
        customer=cust.id,
        items=[{"price": monthly.id}],
        billing_cycle_anchor=FEB_1,
        proration_behavior="none",
    )
    tied = item(cust, 1_200, subscription=mid_month.id, description="Extra seats")
    loose = item(cust, 300, description="Any next invoice")

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=FEB_1 + 7200)

    first_cycle = stripe.Invoice.retrieve(
        stripe.Subscription.retrieve(on_the_first.id).latest_invoice
    )
    items_on_it = {
        line.parent.invoice_item_details.invoice_item
        for line in first_cycle.lines.data
        if line.parent.type == "invoice_item_details"
    }
    assert items_on_it == {loose.id}
    assert stripe.InvoiceItem.retrieve(tied.id).invoice is None


# Lines, listing, updating


def test_lines_paginate_in_invoice_order(server):
    cust = customer()
    invoice = draft_with(cust, 100, 200, 300, 400, 500)
    expected = [line.id for line in invoice.lines.data]
    assert [line.amount for line in invoice.lines.data] == [100, 200, 300, 400, 500]

    page = stripe.Invoice.list_lines(invoice.id, limit=2)
    assert [line.id for line in page.data] == expected[:2]
    assert page.has_more is True
    page = stripe.Invoice.list_lines(invoice.id, limit=2, starting_after=page.data[-1].id)
    assert [line.id for line in page.data] == expected[2:4]
    assert page.has_more is True
    page = stripe.Invoice.list_lines(invoice.id, limit=2, starting_after=page.data[-1].id)
    assert [line.id for line in page.data] == expected[4:]
    assert page.has_more is False
    every = stripe.Invoice.list_lines(invoice.id, limit=2).auto_paging_iter()
    assert [line.id for line in every] == expected
    stored = stripe.Invoice.retrieve(invoice.id).lines.data
    assert all("created" not in line for line in stored)


def test_list_by_customer_created_range_and_status(server):
    clock, cust = clock_customer(JAN_15)
    january = open_invoice(cust, 1_000)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=FEB_1)
    february = open_invoice(cust, 2_000)
    draft = draft_with(cust, 3_000)
    stripe.Invoice.pay(february.id)
    other = open_invoice(customer(), 4_000)

    def ids(**params) -> list[str]:
        return [i.id for i in stripe.Invoice.list(**params).auto_paging_iter()]

    assert ids(customer=cust.id) == [draft.id, february.id, january.id]  # newest first
    assert ids(customer=cust.id, created={"lt": FEB_1}) == [january.id]
    assert ids(customer=cust.id, created={"gte": FEB_1}) == [draft.id, february.id]
    assert ids(customer=cust.id, created={"gte": JAN_15, "lte": JAN_15}) == [january.id]
    assert ids(customer=cust.id, status="open") == [january.id]
    assert ids(customer=cust.id, status="paid") == [february.id]
    assert ids(status="draft") == [draft.id]
    assert other.id in ids(status="open")


def test_open_invoice_metadata_and_memo_are_editable_but_not_its_terms(server):
    invoice = open_invoice(customer(), 1_000, metadata={"acct_id": "1042"})

    updated = stripe.Invoice.modify(invoice.id, metadata={"period": "2026-01"})

    assert updated.metadata.to_dict() == {"acct_id": "1042", "period": "2026-01"}
    [event] = [
        e
        for e in server.store.events
        if e["type"] == "invoice.updated" and e["data"]["object"]["id"] == invoice.id
    ]
    assert set(event["data"]["previous_attributes"]) == {"metadata"}
    # Stripe's memo (`description`) stays editable on an open invoice.
    assert stripe.Invoice.modify(invoice.id, description="PO 7781").description == "PO 7781"
    for field, value in (("collection_method", "send_invoice"), ("days_until_due", 15)):
        error = invalid(stripe.Invoice.modify, invoice.id, **{field: value})
        assert error.param == field
        assert "draft" in str(error)
    assert stripe.Invoice.retrieve(invoice.id).collection_method == "charge_automatically"


def test_refused_update_changes_nothing(server):
    invoice = open_invoice(customer(), 1_000)
    invalid(stripe.Invoice.modify, invoice.id, metadata={"a": "b"}, due_date=FEB_1)
    assert stripe.Invoice.retrieve(invoice.id).metadata.to_dict() == {}


def test_paid_invoice_keeps_its_memo_but_accepts_metadata(server):
    invoice = open_invoice(customer(), 1_000, description="January")
    stripe.Invoice.pay(invoice.id)
    error = invalid(stripe.Invoice.modify, invoice.id, description="Changed")
    assert error.param == "description"
    assert stripe.Invoice.modify(invoice.id, metadata={"synced": "yes"}).metadata.synced == "yes"
    assert stripe.Invoice.retrieve(invoice.id).description == "January"


# Invoice items


def test_item_priced_by_a_price_bills_unit_amount_times_quantity(server):
    cust = customer()
    price = one_time_price(2_500)

    created = stripe.InvoiceItem.create(customer=cust.id, pricing={"price": price.id}, quantity=3)

    assert created.amount == 7_500
    assert created.currency == "usd"
    assert created.quantity == 3
    assert created.pricing.price_details.price == price.id
    assert created.pricing.price_details.product == price.product
    assert created.pricing.unit_amount_decimal == Decimal("2500")


def test_item_with_an_amount_has_no_price(server):
    created = item(customer(), 1_999)
    assert created.amount == 1_999
    assert created.pricing.price_details is None
    assert created.invoice is None


def test_item_unit_amount_decimal_is_rounded_once_half_up(server):
    cust = customer()

    tiny = stripe.InvoiceItem.create(
        customer=cust.id, currency="usd", unit_amount_decimal="0.05", quantity=30
    )
    half = stripe.InvoiceItem.create(
        customer=cust.id, currency="usd", unit_amount_decimal="12.5", quantity=1
    )
    below = stripe.InvoiceItem.create(
        customer=cust.id, currency="usd", unit_amount_decimal="0.333", quantity=4
    )

    assert tiny.amount == 2  # 0.05 x 30 = 1.5, rounded once for the line (not 0 x 30)
    assert tiny.pricing.unit_amount_decimal == Decimal("0.05")
    assert half.amount == 13
    assert below.amount == 1  # 1.332


def test_item_with_both_amount_and_unit_amount_decimal_is_refused(server):
    cust = customer()
    error = invalid(
        stripe.InvoiceItem.create,
        customer=cust.id,
        currency="usd",
        amount=100,
        unit_amount_decimal="1.5",
    )
    assert error.param == "amount"
    assert stripe.InvoiceItem.list(customer=cust.id).data == []


def test_item_for_an_unknown_customer_is_refused(server):
    error = invalid(
        stripe.InvoiceItem.create, customer="cus_Missing0000000000", amount=100, currency="usd"
    )
    assert error.http_status == 400
    assert error.param == "customer"
    assert error.code == "resource_missing"


def test_item_with_an_unknown_price_names_the_pricing_param(server):
    error = invalid(
        stripe.InvoiceItem.create, customer=customer().id, pricing={"price": "price_Missing0000"}
    )
    assert error.param == "pricing[price]"


def test_deleting_a_pending_item(server):
    cust = customer()
    doomed, kept = item(cust, 100), item(cust, 200)

    result = stripe.InvoiceItem.delete(doomed.id)

    assert result.deleted is True
    assert [i.id for i in stripe.InvoiceItem.list(customer=cust.id).data] == [kept.id]
    assert invalid(stripe.InvoiceItem.retrieve, doomed.id).http_status == 404


def test_an_item_on_a_finalized_invoice_cannot_be_deleted(server):
    cust = customer()
    invoice = open_invoice(cust, 1_000)
    [line] = invoice.lines.data
    item_id = line.parent.invoice_item_details.invoice_item
    invalid(stripe.InvoiceItem.delete, item_id)
    assert stripe.InvoiceItem.retrieve(item_id).invoice == invoice.id


def test_listing_pending_items(server):
    cust = customer()
    invoice = stripe.Invoice.create(customer=cust.id)
    on_invoice = item(cust, 100, invoice=invoice.id)
    first, second = item(cust, 200), item(cust, 300)

    pending = stripe.InvoiceItem.list(customer=cust.id, pending=True)
    invoiced = stripe.InvoiceItem.list(customer=cust.id, pending=False)

    assert {i.id for i in pending.data} == {first.id, second.id}
    assert [i.id for i in invoiced.data] == [on_invoice.id]
    assert all("created" not in i for i in pending.data)
    assert "created" not in stripe.InvoiceItem.retrieve(first.id)
