"""The server against Stripe's own description of its API: stripe-python's generated types
(requests and responses) and Stripe's example objects (`fixtures3.json`)."""

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import stripe

from tests.stripe_server import conformance

FIXTURES = json.loads((Path(conformance.__file__).with_name("fixtures3.json")).read_text())[
    "resources"
]

# Where Stripe's fixtures (rendered by an older spec than this API version's) and
# stripe-python's types disagree, for the object types this server serves. The types win:
# `invoice.subscription` moved to `invoice.parent.subscription_details` in 2025-03-31.basil.
FIXTURE_DISAGREEMENTS = {
    "invoice": ["invoice.subscription is not a field of invoice"],
    "event": ["event.data.object.aggregate_usage is not a field of plan"],
    "credit_note": [
        "credit_note.lines.data[1].invoice_line_item is missing from credit_note_line_item"
    ],
}
# Kinds the server stores as its own records and renders through a presenter (the answers are
# checked like every other answer; the records are not Stripe objects).
INTERNAL = {"billing.meter_event", "product_feature"}


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def raw(server, method, path, body=""):
    request = urllib.request.Request(
        server.url + path,
        data=body.encode() if method == "POST" else None,
        method=method,
        headers={"Authorization": "Bearer sk_test_Conformance0000000000000"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def served_objects(server):
    """Every Stripe object the server holds (meter events are kept as records)."""
    for kind, objects in server.store.objects.items():
        for record in objects.values():
            if kind == "billing.meter_event":
                yield kind, record["event"]
            elif kind not in INTERNAL:
                yield kind, record


def exercise_every_resource(server):
    """One of each object the server serves, made through stripe-python."""
    now = int(time.time())
    clock = stripe.test_helpers.TestClock.create(frozen_time=now)
    cust = stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id)
    stripe.Account.retrieve()
    product = stripe.Product.create(name="Impressions")
    feature = stripe.entitlements.Feature.create(name="API", lookup_key="api")
    stripe.Product.create_feature(product.id, entitlement_feature=feature.id)
    meter = stripe.billing.Meter.create(
        display_name="Impressions",
        event_name="impressions",
        default_aggregation={"formula": "sum"},
    )
    flat = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=5_000, recurring={"interval": "month"}
    )
    metered = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=2,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    subscription = stripe.Subscription.create(
        customer=cust.id, items=[{"price": flat.id}, {"price": metered.id}]
    )
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": cust.id, "value": "7"}
    )
    stripe.billing.Meter.list_event_summaries(
        meter.id, customer=cust.id, start_time=now // 60 * 60, end_time=(now // 60 + 2) * 60
    )
    stripe.InvoiceItem.create(customer=cust.id, amount=1_200, currency="usd")
    invoice = stripe.Invoice.create(customer=cust.id, pending_invoice_items_behavior="include")
    stripe.Invoice.finalize_invoice(invoice.id)
    stripe.Invoice.pay(invoice.id)
    stripe.Invoice.list_lines(invoice.id)
    stripe.Invoice.retrieve(invoice.id, expand=["payments"])
    stripe.SubscriptionItem.list(subscription=subscription.id)
    stripe.WebhookEndpoint.create(url="http://127.0.0.1:9/hook", enabled_events=["*"])
    stripe.billing_portal.Session.create(customer=cust.id)
    stripe.Coupon.create(id="LOYAL10", percent_off=10, duration="forever")
    raw(server, "POST", f"/_harness/customers/{cust.id}/discount", "coupon=LOYAL10")
    method = stripe.PaymentMethod.attach("pm_card_visa", customer=cust.id)
    stripe.Customer.modify(cust.id, invoice_settings={"default_payment_method": method.id})
    stripe.InvoiceItem.create(customer=cust.id, amount=3_000, currency="usd")
    discounted = stripe.Invoice.create(customer=cust.id, pending_invoice_items_behavior="include")
    discounted = stripe.Invoice.finalize_invoice(discounted.id)
    stripe.CreditNote.create(
        invoice=discounted.id,
        lines=[
            {
                "type": "invoice_line_item",
                "invoice_line_item": discounted.lines.data[0].id,
                "amount": 500,
            }
        ],
    )
    stripe.Invoice.send_invoice(discounted.id)
    client = stripe.StripeClient(
        "sk_test_Conformance0000000000000", base_addresses={"api": server.url}
    )
    client.v2.core.event_destinations.create(
        {
            "name": "errors",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": ["v1.billing.meter.error_report_triggered"],
            "webhook_endpoint": {"url": "http://127.0.0.1:9/thin"},
        }
    )
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": "cus_Missing", "value": "1"}
    )
    [report] = server.flush_meter_errors()
    client.v2.core.events.retrieve(report["id"])
    stripe.Event.list(limit=100)
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=now + 40 * 86_400)
    return {"customer": cust, "invoice": invoice, "subscription": subscription}


def test_every_object_the_server_serves_has_exactly_the_fields_of_its_stripe_type(server):
    exercise_every_resource(server)

    seen = set()
    for kind, obj in served_objects(server):
        seen.add(obj["object"])
        assert conformance.object_violations(obj) == [], kind
    for event in server.store.events:
        assert conformance.object_violations(event) == []
    assert {
        "account",
        "billing.meter",
        "billing.meter_event",
        "billing_portal.session",
        "coupon",
        "credit_note",
        "customer",
        "discount",
        "payment_method",
        "v2.core.event",
        "v2.core.event_destination",
        "entitlements.feature",
        "event",
        "invoice",
        "invoice_payment",
        "invoiceitem",
        "price",
        "product",
        "subscription",
        "test_helpers.test_clock",
        "webhook_endpoint",
    } <= seen


def test_the_served_types_have_fixtures_and_classes(server):
    exercise_every_resource(server)
    for _, obj in served_objects(server):
        assert conformance.resource_class(obj["object"]) is not None, obj["object"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_stripes_own_example_objects_pass_the_response_check(name):
    problems = conformance.object_violations(FIXTURES[name])
    if name in FIXTURE_DISAGREEMENTS:
        assert problems == FIXTURE_DISAGREEMENTS[name]
    elif name in SERVED_FIXTURES:
        assert problems == []


SERVED_FIXTURES = {
    "account",
    "billing.meter",
    "billing.meter_event",
    "billing.meter_event_summary",
    "billing_portal.session",
    "coupon",
    "customer",
    "discount",
    "entitlements.feature",
    "invoice_payment",
    "invoiceitem",
    "line_item",
    "payment_method",
    "plan",
    "price",
    "product",
    "product_feature",
    "subscription",
    "subscription_item",
    "test_helpers.test_clock",
    "webhook_endpoint",
    "credit_note_line_item",
}


def test_almost_every_stripe_fixture_conforms_exactly():
    """The check is not so loose that it hides nothing, nor so strict it rejects Stripe."""
    failing = [name for name, obj in FIXTURES.items() if conformance.object_violations(obj)]
    assert len(FIXTURES) > 150
    assert len(failing) <= 15, failing


def test_an_invented_field_is_a_500_naming_the_object_and_field(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    server.store.objects["customer"][cust.id]["days_until_due"] = 30

    with pytest.raises(stripe.APIError) as caught:
        stripe.Customer.retrieve(cust.id)

    assert caught.value.http_status == 500
    assert "customer.days_until_due is not a field of customer" in str(caught.value)


def test_invoice_days_until_due_is_not_rendered_but_still_sets_the_due_date(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    invoice = stripe.Invoice.create(
        customer=cust.id, collection_method="send_invoice", days_until_due=15
    )
    assert "days_until_due" not in invoice

    stripe.InvoiceItem.create(customer=cust.id, amount=100, currency="usd", invoice=invoice.id)
    opened = stripe.Invoice.finalize_invoice(invoice.id)

    assert opened.due_date == opened.status_transitions.finalized_at + 15 * 86_400


def test_an_invented_field_in_a_nested_sub_object_is_detected(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    server.store.objects["customer"][cust.id]["invoice_settings"]["net_terms"] = 30

    with pytest.raises(stripe.APIError) as caught:
        stripe.Customer.retrieve(cust.id)

    assert "customer.invoice_settings.net_terms is not a field of Customer.InvoiceSettings" in str(
        caught.value
    )


def test_a_missing_field_is_detected(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    del server.store.objects["customer"][cust.id]["invoice_prefix"]

    status, body = raw(server, "GET", f"/v1/customers/{cust.id}")

    assert status == 500
    assert "customer.invoice_prefix is missing from customer" in body["error"]["message"]


def test_an_invented_field_on_a_list_item_is_detected(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    server.store.objects["customer"][cust.id]["acct_id"] = "A-1"

    status, body = raw(server, "GET", "/v1/customers")

    assert status == 500
    assert "data[0].acct_id is not a field of customer" in body["error"]["message"]


def test_an_unknown_parameter_gets_stripes_400(server):
    status, body = raw(server, "POST", "/v1/customers", "email=a%40b.example&foo=bar")

    assert status == 400
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "message": "Received unknown parameter: foo",
            "param": "foo",
        }
    }
    assert server.store.all("customer") == []


def test_an_unknown_parameter_sent_by_stripe_python_is_an_invalid_request(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Invoice.create(customer=cust.id, days_until_due_extra=3)

    assert caught.value.http_status == 400
    assert caught.value.param == "days_until_due_extra"


def test_an_unknown_nested_parameter_names_its_full_path(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    product = stripe.Product.create(name="Fonts")
    price = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=100, recurring={"interval": "month"}
    )

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Subscription.create(customer=cust.id, items=[{"price": price.id, "colour": "red"}])

    assert str(caught.value.user_message) == "Received unknown parameter: items[0][colour]"
    assert caught.value.param == "items[0][colour]"
    assert server.store.all("subscription") == []


def test_a_bad_enum_value_gets_stripes_400(server):
    cust = stripe.Customer.create(email="ap@northwind.example")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Invoice.create(customer=cust.id, collection_method="send_by_fax")

    assert caught.value.http_status == 400
    assert caught.value.param == "collection_method"
    assert caught.value.user_message == (
        "Invalid collection_method: must be one of charge_automatically or send_invoice"
    )


def test_a_bad_nested_enum_value_gets_stripes_400(server):
    product = stripe.Product.create(name="Fonts")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Price.create(
            product=product.id, currency="usd", unit_amount=1, recurring={"interval": "fortnight"}
        )

    assert caught.value.param == "recurring[interval]"
    assert caught.value.user_message.startswith("Invalid recurring[interval]: must be one of")


def test_expand_is_always_allowed(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    assert stripe.Customer.retrieve(cust.id, expand=["sources"]).id == cust.id


def test_routes_map_to_their_generated_operation():
    assert conformance.params_class("POST", "/v1/invoices").__name__ == "InvoiceCreateParams"
    assert (
        conformance.params_class("POST", "/v1/invoices/in_1/finalize").__name__
        == "InvoiceFinalizeInvoiceParams"
    )
    assert conformance.params_class("GET", "/v1/invoices/search").__name__ == "InvoiceSearchParams"
    assert conformance.params_class("GET", "/v1/invoices/in_1").__name__ == "InvoiceRetrieveParams"
    assert conformance.params_class("POST", "/_harness/customers") is None


def test_every_stripe_route_of_the_server_has_a_generated_params_type():
    from tests.stripe_server.app import ROUTES

    untyped = []
    for method, pattern, _ in ROUTES:
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "x_1", pattern.pattern.strip("^$"))
        if conformance.params_class(method, path) is None:
            untyped.append(f"{method} {path}")
    assert sorted(untyped) == ["POST /_harness/customers", "POST /_harness/customers/x_1/discount"]
