"""The exports app's one boundary to Stripe: the events API (Stripe keeps 30 days of events)."""

from collections.abc import Iterator
from typing import Any

import stripe
from django.conf import settings

from billing_project.errors import ExternalServiceError

PAGE_SIZE = 100
NETWORK_RETRIES = 2
EVENTS_RETENTION_DAYS = 30


def _client() -> stripe.StripeClient:
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses=base,
        max_network_retries=NETWORK_RETRIES,
    )


def stripe_events_list(*, created_gte: int, created_lt: int) -> Iterator[dict[str, Any]]:
    """Every event Stripe still holds created in [created_gte, created_lt), as plain dicts,
    page by page. Raises ExternalServiceError when Stripe cannot be read."""
    client = _client()
    after = None
    try:
        while True:
            params: dict[str, Any] = {
                "limit": PAGE_SIZE,
                "created": {"gte": created_gte, "lt": created_lt},
            }
            if after:
                params["starting_after"] = after
            page = client.raw_request("get", "/v1/events", **params).data
            yield from page["data"]
            if not page.get("has_more") or not page["data"]:
                return
            after = page["data"][-1]["id"]
    except stripe.StripeError as exc:
        raise ExternalServiceError(
            f"Stripe events could not be read: {exc.user_message or exc}", service="stripe"
        ) from exc
