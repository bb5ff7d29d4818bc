"""An operator's retry or re-send never sends blindly after a send whose outcome is unknown:
Mailgun is asked first, and only an explicit, confirmed "send anyway" sends without its answer."""

import html
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from invoices.admin import resend_refusal
from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.services import NeedsAttention, OutcomeUnknown, delivery_process, delivery_resend
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

pytestmark = pytest.mark.django_db

State = InvoiceDelivery.State
START = datetime(2026, 2, 1, 3, tzinfo=UTC)


def _url(name, delivery):
    return reverse(f"admin:invoices_invoicedelivery_{name}", args=[delivery.pk])


def _texts(response):
    return [m.message for m in response.context["messages"]]


def _failed_delivery(client, server, mailgun, endpoint_url, capture, *, status, accept):
    """A delivery that gave up after one send Mailgun answered with `status`."""
    _, customer = billed_customer()
    mailgun.fail_next(1, status=status, accept=accept)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, capture)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    return delivery


@pytest.fixture
def parked(
    client, server, mailgun, s3_bucket, endpoint_url, settings, django_capture_on_commit_callbacks
):
    """Mailgun queued the message but answered 502, then could not say (its events answer 401)
    until the delivery gave up: the attempt is parked."""
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 2
    delivery = _failed_delivery(
        client,
        server,
        mailgun,
        endpoint_url,
        django_capture_on_commit_callbacks,
        status=502,
        accept=True,
    )
    good = settings.ANYMAIL
    settings.ANYMAIL = {**good, "MAILGUN_API_KEY": "key-wrong"}
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert EmailAttempt.objects.get(delivery=delivery).status == EmailAttempt.Status.PARKED
    assert len(mailgun.messages) == 1 and mailgun.attempts == 1
    return delivery, good


def test_retry_of_a_parked_send_that_mailgun_accepted_counts_it_sent_without_a_second_email(
    parked, admin_client, mailgun, settings, django_capture_on_commit_callbacks
):
    delivery, good = parked
    settings.ANYMAIL = good  # Mailgun answers again
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("retry", delivery), follow=True)
    assert any("Mailgun had accepted send attempt" in text for text in _texts(response))
    delivery.refresh_from_db()
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert delivery.state == State.SENT
    assert attempt.status == EmailAttempt.Status.SENT
    assert attempt.mailgun_message_id == mailgun.messages[0].id
    assert mailgun.attempts == 1
    assert len(mailgun.messages) == 1
    assert not delivery.events.filter(step="retry_requested").exists()


def test_retry_of_a_parked_send_mailgun_cannot_say_about_waits_for_send_anyway(
    parked, admin_client, admin_user, mailgun, settings, django_capture_on_commit_callbacks
):
    delivery, good = parked
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("retry", delivery), follow=True)
    (text,) = _texts(response)
    assert "Mailgun cannot say whether send attempt" in text
    assert 'choose "Send anyway"' in text
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert EmailAttempt.objects.get(delivery=delivery).status == EmailAttempt.Status.PARKED
    assert mailgun.attempts == 1
    # A re-send is refused too, with the reason, before anything is queued.
    assert "outcome is unknown" in resend_refusal(delivery)
    with pytest.raises(OutcomeUnknown):
        delivery_resend(delivery_id=delivery.pk, request_key="resend-direct")
    assert mailgun.attempts == 1

    # Send anyway is offered on the page, asks for confirmation, and is recorded.
    page = admin_client.get(_url("change", delivery)).content.decode()
    assert _url("send_anyway", delivery) in page
    confirm = html.unescape(admin_client.get(_url("send_anyway", delivery)).content.decode())
    assert "the customer gets the invoice email twice" in confirm
    admin_client.post(_url("send_anyway", delivery))  # not confirmed: nothing happens
    assert mailgun.attempts == 1
    settings.ANYMAIL = good
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("send_anyway", delivery), {"confirm": "yes"}, follow=True)
    assert any("Sending anyway for" in text for text in _texts(response))
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert mailgun.attempts == 2
    assert len(mailgun.messages) == 2  # the operator's explicit choice
    chosen = delivery.events.get(step="send_anyway_confirmed")
    assert chosen.by == admin_user


def test_retry_of_a_send_left_sending_asks_mailgun_and_sends_only_once_its_log_settled(
    client,
    server,
    mailgun,
    s3_bucket,
    endpoint_url,
    settings,
    admin_client,
    django_capture_on_commit_callbacks,
):
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 1
    with time_machine.travel(START, tick=False) as traveller:
        delivery = _failed_delivery(
            client,
            server,
            mailgun,
            endpoint_url,
            django_capture_on_commit_callbacks,
            status=503,
            accept=False,
        )
        delivery.refresh_from_db()
        assert delivery.state == State.FAILED
        assert EmailAttempt.objects.get(delivery=delivery).status == EmailAttempt.Status.SENDING

        traveller.move_to(START + timedelta(minutes=5))
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(_url("retry", delivery), follow=True)
        (text,) = _texts(response)
        assert "Mailgun does not list send attempt" in text
        assert "2026-02-01 03:30 UTC" in text
        assert mailgun.attempts == 1

        traveller.move_to(START + timedelta(minutes=31))
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(_url("retry", delivery), follow=True)
        assert any("Retry started for" in text for text in _texts(response))
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert mailgun.attempts == 2
    assert len(mailgun.messages) == 1
    assert delivery.events.filter(step="email_not_found").count() == 1


def test_resend_of_a_failed_delivery_whose_send_mailgun_accepted_sends_nothing_more(
    client,
    server,
    mailgun,
    s3_bucket,
    endpoint_url,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 1
    delivery = _failed_delivery(
        client,
        server,
        mailgun,
        endpoint_url,
        django_capture_on_commit_callbacks,
        status=502,
        accept=True,
    )
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    with pytest.raises(NeedsAttention, match="accepted the earlier send after all"):
        delivery_resend(delivery_id=delivery.pk, request_key="resend-1")
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert mailgun.attempts == 1
    assert len(mailgun.messages) == 1
