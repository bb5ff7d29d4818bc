"""Email leaves through the configured Anymail Mailgun backend over HTTP, and comes back as
signed tracking webhooks, exactly as it will in production."""

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from anymail.exceptions import AnymailAPIError
from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.core.mail import EmailMessage
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader, PdfWriter

from invoices.mailgun import mailgun_message_for_attempt, normalise_message_id

CUSTOMER = "Acme Accounts Payable <ap@acme.example>"


def _pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_metadata({"/Title": "Invoice INV-0042"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _invoice_email() -> EmailMessage:
    message = EmailMessage(
        subject="Your Adventive invoice INV-0042",
        body="Your invoice is attached.",
        from_email=settings.BILLING_FROM_EMAIL,
        to=[CUSTOMER],
        bcc=[settings.BILLING_BCC_ADDRESS],
    )
    message.esp_extra = {
        "template": "invoice_new",
        "t:variables": json.dumps(
            {"invoice_number": "INV-0042", "amount_due": "$1,234.50", "pay_url": "https://pay"}
        ),
    }
    message.metadata = {"delivery_id": "7781", "attempt_key": "7781:invoice_new:1"}
    return message


@pytest.fixture
def tracked_events() -> Iterator[list[AnymailTrackingEvent]]:
    received: list[AnymailTrackingEvent] = []

    def receiver(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
        received.append(event)

    tracking.connect(receiver, weak=False, dispatch_uid="test-email-mailgun")
    try:
        yield received
    finally:
        tracking.disconnect(dispatch_uid="test-email-mailgun")


def test_invoice_email_reaches_mailgun_with_template_bcc_pdf_and_metadata(mailgun):
    pdf = _pdf_bytes()
    message = _invoice_email()
    message.attach("INV-0042.pdf", pdf, "application/pdf")

    assert message.send() == 1

    [received] = mailgun.messages
    assert received.from_email == "billing-noreply@notify.adventive.com"
    assert received.to == [CUSTOMER]
    assert received.bcc == ["2658568@bcc.hubspot.com"]
    assert received.cc == []
    assert received.subject == "Your Adventive invoice INV-0042"
    assert received.template == "invoice_new"
    assert received.template_variables == {
        "invoice_number": "INV-0042",
        "amount_due": "$1,234.50",
        "pay_url": "https://pay",
    }
    assert received.user_variables == {"delivery_id": "7781", "attempt_key": "7781:invoice_new:1"}
    [attachment] = received.attachments
    assert (attachment.filename, attachment.content_type) == ("INV-0042.pdf", "application/pdf")
    assert attachment.content == pdf
    assert len(PdfReader(io.BytesIO(attachment.content)).pages) == 1
    assert message.anymail_status.message_id == received.id
    assert message.anymail_status.status == {"queued"}


def test_sent_attempt_is_found_by_the_apps_lookup_among_its_recipients_other_emails(mailgun):
    first = _invoice_email()
    first.metadata = {"delivery_id": "7781", "attempt_id": "attempt-7781-1"}
    first.send()
    second = _invoice_email()  # same recipient, another attempt
    second.metadata = {"delivery_id": "7781", "attempt_id": "attempt-7781-2"}
    second.send()
    assert first.anymail_status.message_id != second.anymail_status.message_id

    assert mailgun_message_for_attempt("attempt-7781-1", recipient=CUSTOMER) == (
        normalise_message_id(first.anymail_status.message_id)
    )
    assert mailgun_message_for_attempt("attempt-7781-2", recipient=CUSTOMER) == (
        normalise_message_id(second.anymail_status.message_id)
    )
    assert mailgun_message_for_attempt("attempt-7781-3", recipient=CUSTOMER) is None
    # Asked about another recipient, the customer's emails are not its own.
    assert mailgun_message_for_attempt("attempt-7781-1", recipient="ap@other.example") is None


def test_a_mailgun_5xx_surfaces_as_anymail_api_error_so_the_caller_can_retry(mailgun):
    mailgun.fail_next(1, status=503)

    with pytest.raises(AnymailAPIError) as raised:
        _invoice_email().send()

    assert raised.value.status_code == 503
    assert mailgun.messages == []
    retried = _invoice_email()
    assert retried.send() == 1
    assert [m.id for m in mailgun.messages] == [retried.anymail_status.message_id]


@pytest.mark.django_db
def test_tracking_webhook_signed_like_mailgun_is_accepted_and_reported(mailgun, tracked_events):
    """Uses the database because the project's tracking receivers record delivery state."""
    message = _invoice_email()
    message.send()
    payload = mailgun.tracking_payload("delivered", event_id="evt-delivered-1")

    response = Client().post(
        reverse("anymail:mailgun_tracking_webhook"),
        data=json.dumps(payload),
        content_type="application/json",
    )

    assert response.status_code == 200
    [event] = tracked_events
    assert event.event_type == "delivered"
    assert event.message_id == message.anymail_status.message_id
    assert event.recipient == "ap@acme.example"
    assert event.metadata == {"delivery_id": "7781", "attempt_key": "7781:invoice_new:1"}
    assert event.event_id == payload["signature"]["token"]


@pytest.mark.django_db
def test_tracking_webhook_with_a_bad_signature_is_rejected_and_not_reported(
    mailgun, tracked_events
):
    """Uses the database because the project's tracking receivers record delivery state."""
    _invoice_email().send()
    payload = mailgun.tracking_payload("delivered")
    payload["signature"]["signature"] = "0" * 64

    response = Client().post(
        reverse("anymail:mailgun_tracking_webhook"),
        data=json.dumps(payload),
        content_type="application/json",
    )

    assert response.status_code in {400, 403}
    assert tracked_events == []
