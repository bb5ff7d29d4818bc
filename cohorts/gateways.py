"""The cohorts app's boundary to Stripe and Mailgun: rollback writes (pause, cancel) and the
reads the post-cycle payment check and the Mailgun check need. Plain dicts in and out.

Rollback writes carry an idempotency key derived from our rollback row, so a retried rollback
replays Stripe's first answer; pausing or cancelling an already paused or cancelled
subscription is reported, not repeated.
"""

from typing import Any
from urllib.parse import urlencode

import stripe
from anymail.utils import get_anymail_setting
from django.conf import settings

from invoices.mailgun import MailgunUnavailable, _events_url, _get_json

__all__ = [
    "MailgunUnavailable",
    "mailgun_accepted_events",
    "paid_invoices_for_customer",
    "subscription_cancel",
    "subscription_pause",
]


def _opts() -> dict[str, Any]:
    return {"api_key": settings.STRIPE_SECRET_KEY}


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def subscription_pause(subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """Stop collecting: Stripe voids the invoices it would create while paused."""
    return _plain(
        stripe.Subscription.modify(
            subscription_id,
            pause_collection={"behavior": "void"},
            idempotency_key=idempotency_key,
            **_opts(),
        )
    )


def subscription_cancel(subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
    return _plain(
        stripe.Subscription.cancel(subscription_id, idempotency_key=idempotency_key, **_opts())
    )


def subscription_get(subscription_id: str) -> dict[str, Any]:
    return _plain(stripe.Subscription.retrieve(subscription_id, **_opts()))


def paid_invoices_for_customer(customer_id: str, *, created_gte: int) -> list[dict[str, Any]]:
    """The customer's paid invoices created from `created_gte` (manual and subscription)."""
    return [
        _plain(invoice)
        for invoice in stripe.Invoice.list(
            customer=customer_id,
            status="paid",
            created={"gte": created_gte},
            limit=100,
            **_opts(),
        ).auto_paging_iter()
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
