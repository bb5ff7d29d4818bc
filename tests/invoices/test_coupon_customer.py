"""A customer holding a coupon, in the current API shape (`discount.source.coupon`), gets exactly
one email with a PDF that shows the discount; dj-stripe's mirror of that customer, which
2.11 cannot read as it is, never holds the delivery up."""

import io
from urllib.parse import urlencode

import pytest
import stripe
from django.conf import settings
from pypdf import PdfReader

from billing_project.models import StripeMirror
from invoices.models import InvoiceDelivery
from tests.factories import BillingAccountFactory
from tests.invoices.scenarios import deliver, finalized_event, ts

pytestmark = pytest.mark.django_db


def coupon_apply(server, customer_id: str, coupon_id: str) -> dict:
    """Apply a coupon as an operator does in the Dashboard (no API parameter exists for it)."""
    status, body, _ = server.handle(
        "POST",
        f"/_harness/customers/{customer_id}/discount",
        "",
        urlencode({"coupon": coupon_id}),
        {"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
    )
    assert status == 200, body
    return body


@pytest.fixture
def discounted(server):
    clock = stripe.test_helpers.TestClock.create(frozen_time=ts(2026, 1, 15))
    customer = stripe.Customer.create(
        email="ap@harborline.example",
        name="Harborline Media",
        test_clock=clock.id,
        metadata={"acct_id": "1077"},
    )
    BillingAccountFactory(
        acct_id=1077,
        stripe_customer_id=customer.id,
        billing_owner="parallel",
        billing_email="ap@harborline.example",
    )
    coupon = stripe.Coupon.create(percent_off=10, duration="forever", name="Loyalty 10 %")
    held = coupon_apply(server, customer.id, coupon.id)
    assert held["discount"]["source"] == {"coupon": coupon.id, "type": "coupon"}
    assert "coupon" not in held["discount"]
    product = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    price = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=50_000,
        recurring={"interval": "month"},
        metadata={"kind": "flat"},
    )
    stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": price.id}],
        billing_cycle_anchor=ts(2026, 2, 1),
        proration_behavior="none",
        collection_method="send_invoice",
        days_until_due=30,
        metadata={"acct_id": "1077"},
    )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 1, 2))
    return customer


def test_a_customer_with_a_coupon_gets_one_email_whose_pdf_shows_the_discount(
    client, server, endpoint_url, discounted, s3_bucket, mailgun, django_capture_on_commit_callbacks
):
    event = finalized_event(server, discounted.id)
    assert event["data"]["object"]["total"] == 45_000
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)  # sent again

    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENT
    assert len(mailgun.messages) == 1
    pdf = s3_bucket.get_object(Bucket=settings.R2_INVOICE_BUCKET, Key=delivery.pdf_key)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf["Body"].read())).pages)
    assert "$500.00" in text and "$450.00" in text
    assert "Discount" in text and "$50.00" in text
    # dj-stripe's copy of the customer (its coupon normalised for it) was made afterwards.
    mirror = StripeMirror.objects.get(event_id=event["id"])
    assert mirror.state == StripeMirror.State.DONE, mirror.last_error
