"""The cohorts app's boundary to Stripe and Mailgun: rollback writes (pause, cancel) and the
reads the post-cycle payment check and the Mailgun check need. Plain dicts in and out.

Rollback writes carry an idempotency key derived from our rollback row, so a retried rollback
replays Stripe's first answer; pausing or cancelling an already paused or cancelled
subscription is reported, not repeated.
"""

from typing import Any
from urllib.parse import urlencode

from anymail.utils import get_anymail_setting

from billing_project import stripe_api
from invoices.mailgun import MailgunUnavailable, _events_url, _get_json
from invoices.mailgun_templates import invoice_templates_check as mailgun_invoice_templates_check

__all__ = [
    "MailgunUnavailable",
    "mailgun_accepted_events",
    "mailgun_invoice_templates_check",
    "paid_invoices_for_customer",
    "subscription_cancel",
    "subscription_pause",
]


def subscription_pause(subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """Stop collecting: Stripe voids the invoices it would create while paused."""
    return stripe_api.request(
        "post",
        f"/v1/subscriptions/{subscription_id}",
        idempotency_key=idempotency_key,
        pause_collection={"behavior": "void"},
    )


def subscription_cancel(subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
    return stripe_api.request(
        "delete", f"/v1/subscriptions/{subscription_id}", idempotency_key=idempotency_key
    )


def subscription_get(subscription_id: str) -> dict[str, Any]:
    return stripe_api.request("get", f"/v1/subscriptions/{subscription_id}")


def paid_invoices_for_customer(customer_id: str, *, created_gte: int) -> list[dict[str, Any]]:
    """The customer's paid invoices created from `created_gte` (manual and subscription), each
    with all its lines (paged past the ones Stripe embeds)."""
    return [
        stripe_api.with_all_lines(invoice)
        for invoice in stripe_api.pages(
            "/v1/invoices", customer=customer_id, status="paid", created={"gte": created_gte}
        )
    ]


def mailgun_accepted_events(message_id: str) -> list[dict[str, Any]]:
    """Mailgun's `accepted` events for one message (one per recipient, BCC included)."""
    api_key = get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default="")
    if not api_key:
        raise MailgunUnavailable("no MAILGUN_API_KEY is set")
    query = {"event": "accepted", "message-id": message_id.strip("<>"), "limit": "300"}
    page = _get_json(f"{_events_url()}?{urlencode(query)}", api_key)
    items = page.get("items")
    if not isinstance(items, list):
        raise MailgunUnavailable("Mailgun's events answer has no list of items")
    return items
