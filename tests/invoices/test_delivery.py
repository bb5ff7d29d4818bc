"""invoice.finalized -> branded PDF in storage -> one Mailgun email, with delivery state."""

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
import stripe
import time_machine
from django.core.files.storage import storages
from django.db import connections
from pypdf import PdfReader

from billing_project.models import Alert
from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.services import delivery_process
from tests.factories import BillingAccountFactory
from tests.invoices.scenarios import billed_customer, deliver, finalized_event


@pytest.mark.django_db
def test_finalized_subscription_invoice_is_stored_and_emailed_once(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    account, customer = billed_customer()
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)

    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENT, delivery.last_error
    assert delivery.pdf_key == f"{account.acct_id}/{delivery.inv_uuid}.pdf"
    assert delivery.total_minor == 50_000
    assert [m.to for m in mailgun.messages] == [["ap@northwind.example"]]
    message = mailgun.messages[0]
    assert message.from_email.endswith(settings.BILLING_FROM_EMAIL)
    assert message.bcc == [settings.BILLING_BCC_ADDRESS]
    assert message.template == "invoice_new"
    assert message.template_variables["hosted_invoice_url"] == delivery.hosted_invoice_url
    assert delivery.hosted_invoice_url.startswith(server.url)
    with storages["default"].open(delivery.pdf_key, "rb") as stored:
        stored_bytes = stored.read()
    assert message.attachments[0].content == stored_bytes
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(stored_bytes)).pages)
    assert delivery.number in text
    assert "$500.00" in text
    steps = list(delivery.events.values_list("step", flat=True))
    assert steps[:1] == ["recorded"]
    assert {"pdf_rendered", "pdf_stored", "email_sending", "email_sent"} <= set(steps)

    # The same event again, and the paid event: recorded, never a second email.
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    assert len(mailgun.messages) == 1
    assert EmailAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db
def test_invoice_of_a_legacy_owned_account_is_not_ours_and_not_emailed(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    _, customer = billed_customer(owner="legacy")
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.NOT_OURS
    assert "legacy service" in delivery.not_ours_reason
    assert mailgun.messages == []


@pytest.mark.django_db
def test_legacy_manual_invoice_is_not_ours(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    customer = stripe.Customer.create(email="ap@contoso.example")
    BillingAccountFactory(stripe_customer_id=customer.id, billing_owner="parallel")
    stripe.InvoiceItem.create(
        customer=customer.id, amount=12_345, currency="usd", description="Usage"
    )
    invoice = stripe.Invoice.create(
        customer=customer.id,
        pending_invoice_items_behavior="include",
        collection_method="send_invoice",
        days_until_due=30,
    )
    stripe.Invoice.finalize_invoice(invoice.id)
    event = next(e for e in server.store.events if e["type"] == "invoice.finalized")
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=invoice.id)
    assert delivery.state == InvoiceDelivery.State.NOT_OURS
    assert "legacy manual invoice" in delivery.not_ours_reason
    assert mailgun.messages == []


@pytest.mark.django_db
def test_mailgun_refusing_with_400_is_not_sent_and_goes_again_once(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    _, customer = billed_customer()
    mailgun.fail_next(1, status=400)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert delivery.state == InvoiceDelivery.State.STORED
    assert attempt.status == EmailAttempt.Status.FAILED
    assert mailgun.messages == []

    delivery_process(delivery_id=delivery.pk)  # what the sweeper does when the retry is due
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    attempt.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.SENT
    assert mailgun.attempts == 2
    assert len(mailgun.messages) == 1
    assert attempt.tries == 2
    assert attempt.mailgun_message_id == mailgun.messages[0].id


@pytest.mark.django_db
def test_a_503_that_queued_nothing_is_sent_again_only_after_mailgun_had_time_to_list_it(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    start = datetime(2026, 2, 1, 3, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        _, customer = billed_customer()
        mailgun.fail_next(1, status=503)
        event = finalized_event(server, customer.id)
        deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
        delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
        assert delivery.state == InvoiceDelivery.State.SENDING
        steps = list(delivery.events.values_list("step", flat=True))
        assert "email_outcome_unknown" in steps

        traveller.move_to(start + timedelta(minutes=5))
        delivery_process(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == InvoiceDelivery.State.SENDING
        assert mailgun.attempts == 1  # asked Mailgun, sent nothing
        assert "waiting for Mailgun's event log" in delivery.last_error

        traveller.move_to(start + timedelta(minutes=31))
        delivery_process(delivery_id=delivery.pk)
        delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.SENT
    assert mailgun.attempts == 2
    assert len(mailgun.messages) == 1
    assert delivery.mailgun_message_id == mailgun.messages[0].id


@pytest.mark.django_db
def test_mailgun_failing_every_time_ends_failed_with_an_alert(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 3
    _, customer = billed_customer()
    mailgun.fail_next(10, status=500)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    with django_capture_on_commit_callbacks(execute=True):
        delivery_process(delivery_id=delivery.pk)
        delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.FAILED
    assert "gave up after 3 attempts" in delivery.last_error
    assert Alert.objects.filter(route="billing", title__contains=delivery.number).exists()
    assert mailgun.messages == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_mailgun_queued_the_message_sends_one_email(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, status
):
    _, customer = billed_customer()
    mailgun.fail_next(1, status=status, accept=True)  # queued, but the answer is an error
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert attempt.status == EmailAttempt.Status.SENDING  # unknown, not "failed"
    assert delivery.state == InvoiceDelivery.State.SENDING

    delivery_process(delivery_id=delivery.pk)  # the retry asks Mailgun first
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    attempt.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.SENT
    assert mailgun.attempts == 1
    assert len(mailgun.messages) == 1
    assert delivery.mailgun_message_id == mailgun.messages[0].id
    assert attempt.mailgun_message_id == mailgun.messages[0].id
    assert (
        "found at Mailgun after an interrupted send"
        in delivery.events.get(step="email_sent").message
    )


@pytest.mark.django_db
def test_a_read_timeout_after_mailgun_queued_the_message_sends_one_email(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.3}
    _, customer = billed_customer()
    mailgun.fail_next(1, status=None, delay=1.5)  # queued; the answer comes too late
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENDING
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.SENT
    assert len(mailgun.messages) == 1
    assert mailgun.attempts == 1


@pytest.mark.django_db
def test_mailgun_unable_to_say_parks_the_attempt_for_an_operator(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 2
    _, customer = billed_customer()
    mailgun.fail_next(1, status=502, accept=True)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "key-wrong"}  # events answer 401
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert delivery.state == InvoiceDelivery.State.FAILED
    assert attempt.status == EmailAttempt.Status.PARKED
    assert "an operator decides" in delivery.last_error
    assert len(mailgun.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_delivery_send_one_email(server, mailgun, s3_bucket):
    _, customer = billed_customer()
    invoice_id = finalized_event(server, customer.id)["data"]["object"]["id"]
    from invoices.services import delivery_record

    delivery, _ = delivery_record(
        invoice=stripe.Invoice.retrieve(invoice_id).to_dict(), event_type="invoice.finalized"
    )
    barrier = threading.Barrier(2)
    errors = []

    def work():
        try:
            barrier.wait()
            delivery_process(delivery_id=delivery.pk)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    delivery_process(delivery_id=delivery.pk)  # a late third run changes nothing
    delivery.refresh_from_db()
    assert delivery.state == InvoiceDelivery.State.SENT
    assert len(mailgun.messages) == 1


@pytest.mark.django_db
def test_zero_amount_subscription_start_invoice_is_not_emailed(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    _, customer = billed_customer()
    event = next(
        e
        for e in server.store.events
        if e["type"] == "invoice.finalized"
        and e["data"]["object"]["billing_reason"] == "subscription_create"
        and e["data"]["object"]["customer"] == customer.id
    )
    assert event["data"]["object"]["total"] == 0
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.NOT_OURS
    assert "nothing to deliver" in delivery.not_ours_reason
    assert mailgun.messages == []
