"""The invoice email, sent through Anymail's Mailgun backend to the Mailgun-compatible server,
and read back from the local outbox when Mailgun is not the backend."""

import dataclasses
import email
import email.policy
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from anymail.exceptions import AnymailAPIError
from anymail.utils import UNSET
from django.core import mail
from pypdf import PdfReader, PdfWriter

from invoices.documents import InvoiceDocument
from invoices.emails import (
    DEFAULT_TEMPLATES,
    invoice_email_build,
    invoice_email_send,
    invoice_email_template,
    invoice_email_variables,
)
from invoices.mailgun import MailgunUnavailable, mailgun_message_for_attempt, normalise_message_id

HOSTED_URL = "https://invoice.stripe.com/i/acct_1Adv/test_YWNjdF8xQWR2LF9TN0ZFMQ?s=ap"
CUSTOMER = "Acme Accounts Payable <ap@acme.example>"
BCC = "2658568@bcc.hubspot.com"
MD5_HEX = re.compile(r"\b[0-9a-f]{32}\b", re.IGNORECASE)


def _document(**changes: object) -> InvoiceDocument:
    document = InvoiceDocument(
        stripe_invoice_id="in_1Adv7FE1",
        number="7FE1-0001",
        currency="usd",
        acct_id=4417,
        customer_name="Acme & Sons",
        customer_email="ap@acme.example",
        customer_address="1 Main St\nSpringfield IL 62701\nUS",
        issued_on=date(2026, 3, 31),
        due_on=date(2026, 4, 1),
        period_start=datetime(2026, 3, 1, tzinfo=UTC),
        period_end=datetime(2026, 4, 1, tzinfo=UTC),
        collection_method="send_invoice",
        hosted_invoice_url=HOSTED_URL,
        lines=(),
        subtotal_minor=53_900,
        discount_minor=0,
        tax_minor=0,
        total_minor=53_900,
        amount_paid_minor=0,
        credit_minor=0,
        amount_due_minor=53_900,
        finalized_at=1_774_915_200,
    )
    return dataclasses.replace(document, **changes)


def _pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_metadata({"/Title": "Invoice 7FE1-0001"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _build(document: InvoiceDocument | None = None, **overrides: object):
    document = document or _document()
    arguments = {
        "document": document,
        "pdf_content": _pdf(),
        "to": [CUSTOMER],
        "template": invoice_email_template(document.collection_method),
        "delivery_id": 81,
        "attempt_id": "81:invoice_new:1",
    }
    arguments.update(overrides)
    return invoice_email_build(**arguments)


@pytest.fixture
def mailgun_events_answering_503() -> Iterator[str]:
    """A server on Mailgun's events path that only answers 503, as Mailgun does when degraded."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"message": "Service Unavailable"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v3"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_invoice_email_reaches_mailgun_with_stored_template_variables_tags_and_pdf(mailgun):
    pdf = _pdf()
    message = _build(pdf_content=pdf)

    message_id = invoice_email_send(message)

    [received] = mailgun.messages
    assert received.from_email == "billing-noreply@notify.adventive.com"
    assert received.to == [CUSTOMER]
    assert received.bcc == [BCC]
    assert received.subject == "Invoice 7FE1-0001 from Adventive — $539.00 due 1 Apr 2026"
    assert received.template == "invoice_new"
    assert received.template_variables == {
        "number": "7FE1-0001",
        "amount_due": "$539.00",
        "total": "$539.00",
        "currency": "USD",
        "due_date": "2026-04-01",
        "due_date_display": "1 Apr 2026",
        "hosted_invoice_url": HOSTED_URL,
        "customer_name": "Acme & Sons",
        "period": "1\u201331 Mar 2026",
        "status": "open",
    }
    assert received.user_variables == {
        "delivery_id": "81",
        "attempt_id": "81:invoice_new:1",
        "stripe_invoice_id": "in_1Adv7FE1",
        "acct_id": "4417",
    }
    assert received.tags == ["invoice", "invoice_new"]
    assert received.html is None
    assert HOSTED_URL in received.text
    assert "Acme & Sons" in received.text
    assert not MD5_HEX.search(json.dumps(received.template_variables) + received.text)
    [attachment] = received.attachments
    assert (attachment.filename, attachment.content_type) == (
        "invoice-7FE1-0001.pdf",
        "application/pdf",
    )
    assert attachment.content == pdf
    assert len(PdfReader(io.BytesIO(attachment.content)).pages) == 1
    assert message_id == received.id == message.anymail_status.message_id


def test_bcc_goes_once_per_message_not_once_per_recipient(mailgun):
    message = _build(to=[CUSTOMER, "Controller <controller@acme.example>"])

    invoice_email_send(message)

    [received] = mailgun.messages
    assert received.to == [CUSTOMER, "Controller <controller@acme.example>"]
    assert received.bcc == [BCC]
    assert received.recipient_variables is None
    accepted_for_bcc = [event for event in mailgun.events() if event["recipient"] == BCC]
    assert len(accepted_for_bcc) == 1


@pytest.mark.parametrize(
    ("collection_method", "status", "template", "subject"),
    [
        (
            "send_invoice",
            "open",
            "invoice_new",
            "Invoice 7FE1-0001 from Adventive — $539.00 due 1 Apr 2026",
        ),
        (
            "charge_automatically",
            "open",
            "invoice_notify",
            "Your Adventive invoice 7FE1-0001 — $539.00 to be charged",
        ),
        (
            "charge_automatically",
            "paid",
            "invoice_notify",
            "Your Adventive invoice 7FE1-0001 — $539.00 charged",
        ),
    ],
)
def test_collection_method_chooses_the_template_and_its_wording(
    mailgun, collection_method, status, template, subject
):
    document = _document(collection_method=collection_method, status=status)

    invoice_email_send(_build(document))

    [received] = mailgun.messages
    assert received.template == template
    assert received.tags == ["invoice", template]
    assert received.subject == subject
    assert received.template_variables["status"] == status


def test_notify_email_says_whether_the_card_on_file_is_or_was_charged(mailgun):
    for status in ("open", "paid"):
        document = _document(collection_method="charge_automatically", status=status)
        invoice_email_send(_build(document))

    upcoming, paid = mailgun.messages
    assert "will be charged to the payment method on file" in upcoming.text
    assert "has been charged to the payment method on file" in paid.text
    assert "has been charged" not in upcoming.text


def test_templates_follow_the_billing_email_templates_setting(settings):
    settings.BILLING_EMAIL_TEMPLATES = {
        "send_invoice": "invoice_notify",
        "charge_automatically": "invoice_new",
    }

    assert invoice_email_template("send_invoice") == "invoice_notify"
    assert invoice_email_template("charge_automatically") == "invoice_new"


def test_without_the_setting_the_documented_defaults_apply(settings):
    del settings.BILLING_EMAIL_TEMPLATES

    assert invoice_email_template("send_invoice") == "invoice_new"
    assert invoice_email_template("charge_automatically") == "invoice_notify"
    assert DEFAULT_TEMPLATES == {
        "send_invoice": "invoice_new",
        "charge_automatically": "invoice_notify",
    }


def test_an_unknown_collection_method_is_refused_by_name(settings):
    settings.BILLING_EMAIL_TEMPLATES = DEFAULT_TEMPLATES

    with pytest.raises(ValueError, match="'out_of_band'"):
        invoice_email_template("out_of_band")


def test_an_operator_resend_with_the_original_template_keeps_its_wording(mailgun, settings):
    settings.BILLING_EMAIL_TEMPLATES = DEFAULT_TEMPLATES
    document = _document(collection_method="charge_automatically", status="paid")

    invoice_email_send(_build(document, template="invoice_new"))

    [received] = mailgun.messages
    assert received.template == "invoice_new"
    assert received.subject.startswith("Invoice 7FE1-0001 from Adventive — $539.00 due")


def test_email_without_recipient_is_refused_before_anything_is_sent(mailgun):
    with pytest.raises(ValueError, match="no recipient"):
        _build(to=[])
    with pytest.raises(ValueError, match="no recipient"):
        _build(to=["  "])

    assert mailgun.attempts == 0


def test_pay_by_link_email_without_hosted_invoice_url_is_refused(mailgun):
    with pytest.raises(ValueError, match="hosted_invoice_url"):
        _build(_document(hosted_invoice_url=""))


def test_variables_format_money_dates_and_periods_for_people():
    document = _document(
        currency="eur",
        amount_due_minor=123_456,
        total_minor=150_000,
        due_on=None,
        period_start=datetime(2025, 12, 1, tzinfo=UTC),
        period_end=datetime(2026, 2, 1, tzinfo=UTC),
    )

    variables = invoice_email_variables(document)

    assert variables["amount_due"] == "1,234.56 EUR"
    assert variables["total"] == "1,500.00 EUR"
    assert variables["currency"] == "EUR"
    assert variables["due_date"] == ""
    assert variables["due_date_display"] == ""
    assert variables["period"] == "1 Dec 2025 \u2013 31 Jan 2026"
    assert all(isinstance(value, str) for value in variables.values())


def test_local_file_backend_writes_a_readable_message_without_mailgun_fields(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    message = _build()

    message_id = invoice_email_send(message)

    assert message_id == "local-81:invoice_new:1"
    assert message.esp_extra is UNSET
    [written] = list(tmp_path.iterdir())
    raw = written.read_bytes()
    assert b"t:variables" not in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"].strip() == (
        "Invoice 7FE1-0001 from Adventive — $539.00 due 1 Apr 2026"
    )
    assert parsed["From"] == "billing-noreply@notify.adventive.com"
    assert message.bcc == [BCC]
    assert parsed["Bcc"] is None
    assert BCC.encode() not in raw
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    for body in (text, html):
        assert "7FE1-0001" in body
        assert "$539.00" in body
        assert HOSTED_URL in body
    assert "Acme & Sons" in text
    assert "Acme &amp; Sons" in html
    assert f'href="{HOSTED_URL}"' in html
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "invoice-7FE1-0001.pdf"
    assert len(PdfReader(io.BytesIO(attachment.get_content())).pages) == 1


def test_test_backend_gets_the_local_rendering_and_a_stable_local_id():
    message = _build(attempt_id="81:invoice_new:2")

    assert invoice_email_send(message) == "local-81:invoice_new:2"

    [sent] = mail.outbox
    assert sent.subject == "Invoice 7FE1-0001 from Adventive — $539.00 due 1 Apr 2026"
    assert sent.bcc == [BCC]
    [(html, mimetype)] = sent.alternatives
    assert mimetype == "text/html"
    assert "Pay invoice" in html


def test_a_mailgun_5xx_on_send_surfaces_as_anymail_api_error(mailgun):
    mailgun.fail_next(1, status=503)

    with pytest.raises(AnymailAPIError) as raised:
        invoice_email_send(_build())

    assert raised.value.status_code == 503
    assert mailgun.messages == []


def test_accepted_attempt_is_found_in_mailgun_events_after_a_lost_answer(mailgun):
    mailgun.fail_next(1, status=502, accept=True)

    with pytest.raises(AnymailAPIError):
        invoice_email_send(_build(attempt_id="81:invoice_new:1"))
    invoice_email_send(_build(delivery_id=82, attempt_id="82:invoice_new:1"))

    [lost, other] = mailgun.messages
    found = mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER)
    assert found == lost.id
    assert found != other.id


def test_event_lookup_and_send_give_the_same_message_id(mailgun):
    sent_id = invoice_email_send(_build(attempt_id="81:invoice_new:3"))

    assert mailgun_message_for_attempt("81:invoice_new:3", recipient=CUSTOMER) == sent_id
    [event] = [e for e in mailgun.events() if e["recipient"] == "ap@acme.example"]
    assert event["message"]["headers"]["message-id"] == sent_id.strip("<>")


def test_an_attempt_mailgun_never_accepted_is_not_found(mailgun):
    invoice_email_send(_build(attempt_id="81:invoice_new:1"))

    assert mailgun_message_for_attempt("81:invoice_new:2", recipient=CUSTOMER) is None


def test_unreachable_mailgun_events_api_raises_mailgun_unavailable(mailgun, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_URL": "http://127.0.0.1:9/v3"}

    with pytest.raises(MailgunUnavailable, match="unreachable"):
        mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER)


def test_a_5xx_from_mailgun_events_api_raises_mailgun_unavailable(
    mailgun, settings, mailgun_events_answering_503
):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_URL": mailgun_events_answering_503}

    with pytest.raises(MailgunUnavailable, match="HTTP 503"):
        mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER)


def test_a_refused_api_key_is_no_answer_either(mailgun, settings):
    invoice_email_send(_build(attempt_id="81:invoice_new:1"))
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "key-wrong"}

    with pytest.raises(MailgunUnavailable, match="HTTP 401"):
        mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER)


def test_with_a_local_backend_no_attempt_can_have_reached_mailgun(mailgun, settings):
    invoice_email_send(_build(attempt_id="81:invoice_new:1"))
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"

    assert mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER) is None


@pytest.mark.parametrize(
    "spelling",
    [
        "20260401060000.1a2b3c@notify.adventive.com",
        "<20260401060000.1a2b3c@notify.adventive.com>",
        " <20260401060000.1a2b3c@notify.adventive.com>\n",
    ],
)
def test_message_id_spellings_normalise_to_anymails_bracketed_form(spelling):
    assert normalise_message_id(spelling) == "<20260401060000.1a2b3c@notify.adventive.com>"


def test_an_empty_message_id_is_not_normalised():
    with pytest.raises(ValueError):
        normalise_message_id("<>")


def test_the_lookup_pages_through_every_event_of_the_recipient(mailgun):
    # Mailgun has no filter on user variables: every accepted event of the recipient in the
    # window comes back, 300 to a page, and the attempt is matched here.
    for n in range(650):  # earlier sends to the same customer fill the first pages
        mailgun.record_event(
            {
                "id": f"earlier-{n}",
                "event": "accepted",
                "timestamp": time.time() - 60,
                "recipient": "ap@acme.example",
                "message": {"headers": {"message-id": f"earlier-{n}@notify.example"}},
                "tags": ["invoice"],
                "user-variables": {"attempt_id": f"earlier:{n}"},
            }
        )
    sent_id = invoice_email_send(_build(attempt_id="81:invoice_new:7"))

    assert mailgun_message_for_attempt("81:invoice_new:7", recipient=CUSTOMER) == sent_id
    assert mailgun_message_for_attempt("81:invoice_new:8", recipient=CUSTOMER) is None


def test_the_lookup_asks_for_the_attempt_recipient_only(mailgun):
    invoice_email_send(_build(attempt_id="81:invoice_new:1"))

    # Another recipient's message carrying the same attempt id is not ours to find.
    assert mailgun_message_for_attempt("81:invoice_new:1", recipient="cfo@other.example") is None
    assert mailgun_message_for_attempt("81:invoice_new:1", recipient=CUSTOMER) is not None
