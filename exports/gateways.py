"""The exports app's one boundary to Stripe: the events API (Stripe keeps 30 days of events)."""

from collections.abc import Iterator
from typing import Any

from billing_project import stripe_api
from billing_project.errors import ExternalServiceError
from billing_project.stripe_api import StripeApiError

PAGE_SIZE = 100
NETWORK_RETRIES = 2
EVENTS_RETENTION_DAYS = 30


def stripe_events_list(*, created_gte: int, created_lt: int) -> Iterator[dict[str, Any]]:
    """Every event Stripe still holds created in [created_gte, created_lt), as plain dicts,
    page by page. Raises ExternalServiceError when Stripe cannot be read."""
    try:
        yield from stripe_api.pages(
            "/v1/events", retries=NETWORK_RETRIES, created={"gte": created_gte, "lt": created_lt}
        )
    except StripeApiError as exc:
        raise ExternalServiceError(
            f"Stripe events could not be read: {exc.message}", service="stripe"
        ) from exc
