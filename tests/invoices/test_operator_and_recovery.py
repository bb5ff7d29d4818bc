"""Operator actions (re-send, retry, re-render) and recovery after a worker dies mid-way."""

from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.services import (
    NeedsAttention,
    delivery_process,
    delivery_record,
    delivery_rerender,
    delivery_resend,
    delivery_retry,
    delivery_store_pdf,
)
from invoices.tasks import delivery_sweep_task
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

pytestmark = pytest.mark.django_db

State = InvoiceDelivery.State


@pytest.fixture
def sent_delivery(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    _, customer = billed_customer()
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == State.SENT
    return delivery


def recorded_delivery(server):
    import stripe

    _, customer = billed_customer()
    invoice_id = finalized_event(server, customer.id)["data"]["object"]["id"]
    delivery, _ = delivery_record(
        invoice=stripe.Invoice.retrieve(invoice_id).to_dict(), event_type="invoice.finalized"
    )
    return delivery


def test_operator_resend_sends_one_more_email_with_the_same_template(sent_delivery, mailgun):
    first = delivery_resend(delivery_id=sent_delivery.pk, request_key="resend-1")
    again = delivery_resend(delivery_id=sent_delivery.pk, request_key="resend-1")
    assert first.pk == again.pk
    assert len(mailgun.messages) == 2
    assert {m.template for m in mailgun.messages} == {"invoice_new"}
    assert mailgun.messages[1].attachments[0].content == mailgun.messages[0].attachments[0].content
    delivery_resend(delivery_id=sent_delivery.pk, request_key="resend-2")
    assert len(mailgun.messages) == 3
    assert EmailAttempt.objects.filter(delivery=sent_delivery).count() == 3


def test_resend_is_refused_before_the_first_email(server, mailgun, s3_bucket):
    delivery = recorded_delivery(server)
    with pytest.raises(NeedsAttention, match="only a delivery that was sent"):
        delivery_resend(delivery_id=delivery.pk, request_key="resend-1")
    assert mailgun.messages == []


def test_retry_after_failure_sends_once(
    server, mailgun, s3_bucket, settings, django_capture_on_commit_callbacks
):
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 1
    delivery = recorded_delivery(server)
    mailgun.fail_next(1, status=400)  # a refusal: nothing was queued
    with django_capture_on_commit_callbacks(execute=True):
        delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        delivery_retry(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1
    with pytest.raises(NeedsAttention):
        delivery_retry(delivery_id=delivery.pk)


def test_rerender_with_identical_bytes_keeps_the_key(sent_delivery, mailgun):
    key = sent_delivery.pdf_key
    delivery = delivery_rerender(delivery_id=sent_delivery.pk)
    assert delivery.pdf_key == key
    assert len(mailgun.messages) == 1


def test_different_bytes_never_overwrite_the_emailed_pdf(sent_delivery):
    storage = storages["default"]
    with storage.open(sent_delivery.pdf_key, "rb") as first:
        original = first.read()
    key = delivery_store_pdf(delivery=sent_delivery, content=original + b"%changed")
    assert key == sent_delivery.pdf_key.replace(".pdf", ".v2.pdf")
    with storage.open(sent_delivery.pdf_key, "rb") as again:
        assert again.read() == original
    assert delivery_store_pdf(delivery=sent_delivery, content=original + b"%changed") == key
    third = delivery_store_pdf(delivery=sent_delivery, content=original + b"%third")
    assert third.endswith(".v3.pdf")


def test_worker_dead_before_render_is_resumed_by_the_sweeper_once_its_lease_expires(
    server, mailgun, s3_bucket, django_capture_on_commit_callbacks
):
    delivery = recorded_delivery(server)
    # A worker took the lease and died: nothing happens until the lease runs out.
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        lease_token="00000000-0000-4000-8000-000000000001",
        lease_until=timezone.now() + timedelta(minutes=4),
        updated_at=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_sweep_task() == 0
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert delivery_sweep_task() == 1  # runs inline in tests
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1


def test_an_expired_lease_is_resumed_at_once_without_waiting_for_the_stuck_delay(
    server, mailgun, s3_bucket
):
    delivery = recorded_delivery(server)
    # Died a minute ago: recently updated, but its lease (released by any finished run) ran out.
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        lease_token="00000000-0000-4000-8000-000000000002",
        lease_until=timezone.now() - timedelta(seconds=1),
        updated_at=timezone.now() - timedelta(minutes=1),
        next_attempt_at=None,
    )
    assert delivery_sweep_task() == 1
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1


def test_worker_dead_after_store_sends_exactly_once(server, mailgun, s3_bucket):
    delivery = recorded_delivery(server)
    mailgun.fail_next(1, status=400)  # a refusal: nothing was queued
    delivery_process(delivery_id=delivery.pk)  # renders and stores, then the send fails
    delivery.refresh_from_db()
    assert delivery.state == State.STORED
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert delivery_sweep_task() == 1
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1


def test_answer_lost_after_mailgun_accepted_is_found_not_resent(
    server, mailgun, s3_bucket, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 1}
    delivery = recorded_delivery(server)
    # Mailgun accepts, but its answer never arrives in time (a timeout, like a killed worker).
    mailgun.fail_next(1, status=None, delay=3, accept=True)
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert delivery.state == State.SENDING
    assert attempt.status == EmailAttempt.Status.SENDING
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1
    assert delivery.mailgun_message_id == mailgun.messages[0].id


def test_tracking_that_arrived_during_an_interrupted_send_is_applied_at_recovery(
    server, mailgun, s3_bucket, settings, client
):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 1}
    delivery = recorded_delivery(server)
    mailgun.fail_next(1, status=None, delay=3, accept=True)
    delivery_process(delivery_id=delivery.pk)
    message = mailgun.messages[0]
    bounced = mailgun.tracking_payload(
        event="failed",
        message_id=message.id,
        recipient=message.to[0],
        extra={"severity": "permanent"},
    )
    response = client.post(
        "/anymail/mailgun/tracking/", data=bounced, content_type="application/json"
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.state == State.SENDING  # the bounce is kept, not yet known to be ours
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == State.BOUNCED
    assert len(mailgun.messages) == 1
