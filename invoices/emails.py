"""The invoice email: a Mailgun stored template in production, the same words rendered locally.

Mailgun renders the HTML from its stored template (`invoice_new` or `invoice_notify`) with the
`t:variables` we send. Those go through Anymail's `esp_extra`, not `template_id` +
`merge_global_data`: Anymail maps the latter to recipient-variables, which puts Mailgun in batch
mode (one copy per recipient, the HubSpot BCC duplicated) and sends no `t:variables`.
The files under `templates/invoices/email/` mirror the stored templates with the same variables,
so every other backend (the local outbox under var/outbox, Django's test backend) shows what the
customer reads.
"""

import json

from anymail.backends.base import AnymailBaseBackend
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import get_connection
from django.template.loader import render_to_string

from billing_project.money import format_money
from billing_project.time_display import day_text, period_text
from invoices.documents import InvoiceDocument
from invoices.mailgun import mailgun_backend_in_use, normalise_message_id

# Which stored template each Stripe collection method gets; BILLING_EMAIL_TEMPLATES overrides.
# An operator's re-send uses the template of the original send.
DEFAULT_TEMPLATES = {"send_invoice": "invoice_new", "charge_automatically": "invoice_notify"}
SEND_INVOICE = "send_invoice"
PDF_CONTENT_TYPE = "application/pdf"


def invoice_email_templates() -> dict[str, str]:
    """The configured collection method -> Mailgun template name mapping."""
    return dict(getattr(settings, "BILLING_EMAIL_TEMPLATES", DEFAULT_TEMPLATES))


def invoice_email_template(collection_method: str) -> str:
    """The Mailgun template for an invoice collected this way; unknown methods are refused."""
    templates = invoice_email_templates()
    try:
        return templates[collection_method]
    except KeyError:
        raise ValueError(
            f"no invoice email template for collection method {collection_method!r}; "
            f"BILLING_EMAIL_TEMPLATES covers {sorted(templates)}"
        ) from None


EMAIL_VARIABLE_NAMES = frozenset(
    {
        "number",
        "amount_due",
        "total",
        "currency",
        "due_date",
        "due_date_display",
        "hosted_invoice_url",
        "customer_name",
        "period",
        "status",
    }
)


def invoice_email_variable_names() -> frozenset[str]:
    """The `t:variables` every invoice email carries (what a stored template may use)."""
    return EMAIL_VARIABLE_NAMES


def invoice_email_variables(document: InvoiceDocument) -> dict[str, str]:
    """The template variables, all strings, identical for Mailgun and the local rendering."""
    return {
        "number": document.number,
        "amount_due": format_money(document.amount_due_minor, document.currency),
        "total": format_money(document.total_minor, document.currency),
        "currency": document.currency.upper(),
        "due_date": document.due_on.isoformat() if document.due_on else "",
        "due_date_display": day_text(document.due_on) if document.due_on else "",
        "hosted_invoice_url": document.hosted_invoice_url,
        "customer_name": document.customer_name,
        "period": period_text(document.period_start, document.period_end),
        "status": document.status,
    }


def invoice_email_build(
    *,
    document: InvoiceDocument,
    pdf_content: bytes,
    to: list[str],
    template: str,
    delivery_id: int,
    attempt_id: str,
) -> AnymailMessage:
    """The message for one send attempt; building it has no side effects.

    With the Mailgun backend the HTML comes from the stored template (only the text part is
    ours); with any other backend the local HTML rendering is attached instead.
    """
    recipients = [address.strip() for address in to if address and address.strip()]
    if not recipients:
        raise ValueError(f"invoice {document.number} email has no recipient (to={to!r})")
    if not pdf_content:
        raise ValueError(f"invoice {document.number} email has no PDF to attach")
    if not attempt_id:
        raise ValueError(f"invoice {document.number} email has no attempt_id")
    pays_by_link = _collection_role(template, document) == SEND_INVOICE
    if pays_by_link and not document.hosted_invoice_url:
        raise ValueError(f"invoice {document.number} is paid by link but has no hosted_invoice_url")
    variables = invoice_email_variables(document)
    text = render_to_string(f"invoices/email/{template}.txt", variables)
    message = AnymailMessage(
        subject=_subject(variables, pays_by_link=pays_by_link),
        body=text,
        from_email=settings.BILLING_FROM_EMAIL,
        to=recipients,
        bcc=[settings.BILLING_BCC_ADDRESS] if settings.BILLING_BCC_ADDRESS else [],
        tags=["invoice", template],
        metadata={
            "delivery_id": str(delivery_id),
            "attempt_id": attempt_id,
            "stripe_invoice_id": document.stripe_invoice_id,
            "acct_id": "" if document.acct_id is None else str(document.acct_id),
        },
    )
    if mailgun_backend_in_use():
        message.esp_extra = {"template": template, "t:variables": json.dumps(variables)}
    else:
        html = render_to_string(f"invoices/email/{template}.html", variables)
        message.attach_alternative(html, "text/html")
    message.attach(f"invoice-{document.number}.pdf", pdf_content, PDF_CONTENT_TYPE)
    return message


def invoice_email_send(message: AnymailMessage) -> str:
    """Send through the configured backend; the provider's message id, normalised.

    Anymail errors (`AnymailAPIError`, `AnymailRequestsAPIError`, …) propagate so the caller
    can retry or park. Backends without provider ids get `local-<attempt_id>`, stable across
    re-sends of the same attempt.
    """
    connection = get_connection()
    message.connection = connection
    sent = message.send()
    if not sent:
        raise RuntimeError(f"the email backend sent nothing for {message.subject!r}")
    if isinstance(connection, AnymailBaseBackend):
        message_id = message.anymail_status.message_id
        if not isinstance(message_id, str):
            raise RuntimeError(f"the email provider gave no single message id: {message_id!r}")
        return normalise_message_id(message_id)
    return f"local-{message.metadata['attempt_id']}"


def _collection_role(template: str, document: InvoiceDocument) -> str:
    """Whether a template asks for payment or notifies of a charge, from the configuration."""
    roles = {name: method for method, name in invoice_email_templates().items()}
    return roles.get(template, document.collection_method)


def _subject(variables: dict[str, str], *, pays_by_link: bool) -> str:
    number, amount = variables["number"], variables["amount_due"]
    if pays_by_link:
        due = f" due {variables['due_date_display']}" if variables["due_date_display"] else " due"
        return f"Invoice {number} from Adventive — {amount}{due}"
    charged = "charged" if variables["status"] == "paid" else "to be charged"
    return f"Your Adventive invoice {number} — {amount} {charged}"
