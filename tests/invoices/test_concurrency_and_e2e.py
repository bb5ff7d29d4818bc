"""Many events for one invoice at once, and the whole path through a real task worker."""

import io
import threading
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.db import connections
from django.test import Client
from pypdf import PdfReader

from invoices.models import EmailAttempt, InvoiceDelivery
from tests.fixtures.stripe import sign_event
from tests.harness.qcluster import QCluster
from tests.invoices.scenarios import billed_customer, finalized_event, ts

State = InvoiceDelivery.State


@pytest.mark.django_db(transaction=True)
def test_finalized_updated_and_paid_arriving_together_give_one_pdf_and_one_email(
    server, mailgun, s3_bucket, endpoint_url
):
    _, customer = billed_customer()
    finalized = finalized_event(server, customer.id)
    invoice_id = finalized["data"]["object"]["id"]
    stripe.Invoice.modify(invoice_id, metadata={"po": "PO-7781"})
    stripe.Invoice.pay(invoice_id, paid_out_of_band=True)
    events = [finalized] + [
        e
        for e in server.store.events
        if e["type"] in ("invoice.updated", "invoice.paid")
        and e["data"]["object"]["id"] == invoice_id
    ]
    assert {e["type"] for e in events} == {"invoice.finalized", "invoice.updated", "invoice.paid"}
    barrier = threading.Barrier(len(events))
    statuses: list[int] = []

    def post(event):
        try:
            payload, headers = sign_event(event)
            barrier.wait()
            response = Client().post(
                endpoint_url, data=payload, content_type="application/json", **headers
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(events)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=invoice_id)
    if delivery.state != State.SENT:  # a request that found the lease taken left it queued
        from invoices.services import delivery_process

        delivery_process(delivery_id=delivery.pk)
        delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert delivery.payment_status == "paid"
    assert len(mailgun.messages) == 1
    assert EmailAttempt.objects.filter(delivery=delivery).count() == 1
    stored = list(s3_bucket.list_objects_v2(Bucket="invoices-test").get("Contents", []))
    assert [o["Key"] for o in stored] == [delivery.pdf_key]


@pytest.mark.django_db(transaction=True)
def test_cycle_invoice_reaches_the_customer_through_a_real_worker(
    stripe_server, mailgun, s3_bucket, live_server, tmp_path
):
    server = stripe_server
    server.reset()  # background webhook delivery on, as Stripe does
    call_command(
        "setup_webhook_endpoint", base_url=live_server.url, register=True, stdout=StringIO()
    )
    cluster = QCluster(log_path=tmp_path / "qcluster.log").start()
    try:
        account, customer = billed_customer()
        invoice_id = finalized_event(server, customer.id)["data"]["object"]["id"]
        delivery = cluster.wait_for(
            lambda: InvoiceDelivery.objects.filter(
                stripe_invoice_id=invoice_id, state=State.SENT
            ).first(),
            timeout=120,
            what="the delivery to be sent by the worker",
        )
    finally:
        cluster.stop()
    assert delivery.pdf_key == f"{account.acct_id}/{delivery.inv_uuid}.pdf"
    keys = [o["Key"] for o in s3_bucket.list_objects_v2(Bucket="invoices-test").get("Contents", [])]
    assert keys == [delivery.pdf_key]
    assert len(mailgun.messages) == 1
    message = mailgun.messages[0]
    assert message.template == "invoice_new"
    assert message.template_variables["hosted_invoice_url"] == delivery.hosted_invoice_url
    assert message.bcc == ["2658568@bcc.hubspot.com"]
    assert message.attachments[0].filename == f"invoice-{delivery.number}.pdf"
    pdf_text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(message.attachments[0].content)).pages
    )
    assert delivery.number in pdf_text
    assert "$500.00" in pdf_text
    assert delivery.finalized_at.timestamp() >= ts(2026, 2, 1)

    tracking_url = live_server.url + "/anymail/mailgun/tracking/"
    status, _ = mailgun.post_tracking_webhook(tracking_url, event="delivered")
    assert status == 200
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert list(delivery.events.values_list("step", flat=True))[-1] == "tracking_delivered"
