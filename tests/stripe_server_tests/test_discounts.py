"""Coupons, customer discounts (current shape: `discount.source.coupon`), discounts on invoices
and subscriptions, with the events Stripe emits."""

import json
import urllib.request

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def event_types(server, prefix):
    return [e["type"] for e in server.store.events if e["type"].startswith(prefix)]


def customer():
    return stripe.Customer.create(email="ap@northwind.example")


def harness_discount(server, customer_id, coupon_id):
    request = urllib.request.Request(
        f"{server.url}/_harness/customers/{customer_id}/discount",
        data=f"coupon={coupon_id}".encode(),
        method="POST",
        headers={"Authorization": "Bearer sk_test_Discounts0000000000000"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def draft(cust, *amounts, **params):
    invoice = stripe.Invoice.create(customer=cust.id, **params)
    for amount in amounts:
        stripe.InvoiceItem.create(
            customer=cust.id, amount=amount, currency="usd", invoice=invoice.id
        )
    return stripe.Invoice.retrieve(invoice.id)


def test_coupon_crud_emits_coupon_events(server):
    coupon = stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever", name="10%")
    assert (coupon.percent_off, coupon.amount_off, coupon.valid) == (10, None, True)
    fixed = stripe.Coupon.create(
        amount_off=500, currency="usd", duration="repeating", duration_in_months=3
    )
    assert (fixed.amount_off, fixed.currency, fixed.duration_in_months) == (500, "usd", 3)

    stripe.Coupon.modify("LOYAL10", name="Loyalty", metadata={"cohort": "2"})
    assert stripe.Coupon.retrieve("LOYAL10").name == "Loyalty"
    assert {c.id for c in stripe.Coupon.list().data} == {"LOYAL10", fixed.id}
    assert stripe.Coupon.delete(fixed.id).deleted is True

    assert event_types(server, "coupon.") == [
        "coupon.created",
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
    ]


def test_coupon_needs_exactly_one_kind_of_amount_and_a_known_duration(server):
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Coupon.create(duration="once")
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Coupon.create(amount_off=100, duration="once")  # no currency
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Coupon.create(percent_off=5, duration="sometimes")
    assert caught.value.param == "duration"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Coupon.create(percent_off=5, duration="repeating")
    assert caught.value.param == "duration_in_months"


def test_a_customer_discount_cannot_be_set_through_the_customer_api(server):
    """In this API version customers have no coupon/discounts parameter: Stripe's 400."""
    cust = customer()
    stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever")
    for param in ("coupon", "discounts", "promotion_code"):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            stripe.Customer.modify(
                cust.id, **{param: [{"coupon": "LOYAL10"}] if param == "discounts" else "LOYAL10"}
            )
        assert caught.value.user_message == f"Received unknown parameter: {param}"


def test_a_customer_discount_holds_its_coupon_under_source(server):
    cust = customer()
    stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever")
    harness_discount(server, cust.id, "LOYAL10")

    retrieved = stripe.Customer.retrieve(cust.id)

    assert retrieved.discount.object == "discount"
    assert retrieved.discount.source.type == "coupon"
    assert retrieved.discount.source.coupon == "LOYAL10"
    assert "coupon" not in retrieved.discount
    expanded = stripe.Customer.retrieve(cust.id, expand=["discount.source.coupon"])
    assert expanded.discount.source.coupon.percent_off == 10
    assert stripe.Coupon.retrieve("LOYAL10").times_redeemed == 1


def test_customer_discount_events(server):
    cust = customer()
    stripe.Coupon.create(id="A", percent_off=10, duration="forever")
    stripe.Coupon.create(id="B", percent_off=20, duration="forever")

    harness_discount(server, cust.id, "A")
    harness_discount(server, cust.id, "B")
    removed = stripe.Customer.delete_discount(cust.id)

    assert removed.deleted is True
    assert stripe.Customer.retrieve(cust.id).discount is None
    assert event_types(server, "customer.discount.") == [
        "customer.discount.created",
        "customer.discount.updated",
        "customer.discount.deleted",
    ]


def test_an_invoice_inherits_the_customer_discount_and_totals_are_consistent(server):
    cust = customer()
    stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever")
    discount = harness_discount(server, cust.id, "LOYAL10")["discount"]

    invoice = draft(cust, 10_000, 2_505)

    assert invoice.discounts == [discount["id"]]
    assert [line.discount_amounts[0].amount for line in invoice.lines.data] == [1_000, 251]
    assert invoice.lines.data[0].discount_amounts[0].discount == discount["id"]
    assert invoice.total_discount_amounts[0].amount == 1_251
    assert invoice.subtotal == 12_505
    assert invoice.total == invoice.subtotal - 1_251
    assert invoice.amount_due == invoice.total


def test_an_amount_off_coupon_on_an_invoice_is_spread_over_its_lines(server):
    cust = customer()
    stripe.Coupon.create(id="FIVE", amount_off=500, currency="usd", duration="once")

    invoice = draft(cust, 3_000, 1_000, discounts=[{"coupon": "FIVE"}])

    amounts = [line.discount_amounts[0].amount for line in invoice.lines.data]
    assert amounts == [375, 125]
    assert invoice.total == 3_500
    assert stripe.Invoice.finalize_invoice(invoice.id).amount_due == 3_500


def test_a_discount_never_takes_an_invoice_below_zero(server):
    cust = customer()
    stripe.Coupon.create(id="BIG", amount_off=10_000, currency="usd", duration="once")
    invoice = draft(cust, 1_200, discounts=[{"coupon": "BIG"}])
    assert (invoice.total, invoice.total_discount_amounts[0].amount) == (0, 1_200)


def test_an_empty_discounts_param_does_not_inherit(server):
    cust = customer()
    stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever")
    harness_discount(server, cust.id, "LOYAL10")
    invoice = draft(cust, 1_000, discounts="")
    assert invoice.discounts == []
    assert invoice.total == 1_000


def test_a_once_customer_coupon_is_used_up_by_the_first_invoice(server):
    cust = customer()
    stripe.Coupon.create(id="FIRST", percent_off=50, duration="once")
    harness_discount(server, cust.id, "FIRST")

    first = stripe.Invoice.finalize_invoice(draft(cust, 1_000).id)
    second = draft(cust, 1_000)

    assert first.total == 500
    assert stripe.Customer.retrieve(cust.id).discount is None
    assert second.total == 1_000
    assert "customer.discount.deleted" in event_types(server, "customer.discount.")


def test_subscription_discounts_apply_to_its_invoices(server):
    cust = customer()
    product = stripe.Product.create(name="Platform")
    price = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=8_000, recurring={"interval": "month"}
    )
    stripe.Coupon.create(id="Q", percent_off=25, duration="forever")

    subscription = stripe.Subscription.create(
        customer=cust.id, items=[{"price": price.id}], discounts=[{"coupon": "Q"}]
    )

    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert len(subscription.discounts) == 1
    assert invoice.discounts == subscription.discounts
    assert invoice.total == 6_000
    assert invoice.amount_paid == 6_000
