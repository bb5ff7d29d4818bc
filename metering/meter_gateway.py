"""The usage side's one boundary to Stripe: meter events out, meter event summaries in.

stripe-python's own retries are off here: the outbox keeps the attempt count and the next try
in its rows, so a failure is recorded and retried on our schedule, never hidden.
"""

import enum
from dataclasses import dataclass
from datetime import datetime

import stripe
from django.conf import settings

from .usage_types import METER_CUSTOMER_KEY, METER_VALUE_KEY

DUPLICATE_IDENTIFIER = "An event already exists with identifier"
TOO_LATE_CODES = {"timestamp_too_far_in_past"}


class Outcome(enum.Enum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    RETRY = "retry"
    TOO_LATE = "too_late"
    REJECTED = "rejected"


@dataclass(frozen=True)
class MeterEventResult:
    outcome: Outcome
    message: str = ""
    retry_after: int | None = None


def meter_event_send(
    *, event_name: str, customer_id: str, value: int, identifier: str, timestamp: datetime
) -> MeterEventResult:
    """Send one meter event. Idempotent: the identifier is also the request's idempotency key,
    and Stripe's answer that the identifier exists means it arrived earlier."""
    try:
        stripe.billing.MeterEvent.create(
            event_name=event_name,
            payload={METER_CUSTOMER_KEY: customer_id, METER_VALUE_KEY: str(value)},
            identifier=identifier,
            timestamp=int(timestamp.timestamp()),
            api_key=settings.STRIPE_SECRET_KEY,
            idempotency_key=f"meter-event:{identifier}",
            max_network_retries=0,
        )
    except stripe.RateLimitError as exc:
        return MeterEventResult(Outcome.RETRY, _message(exc), _retry_after(exc))
    except stripe.APIConnectionError as exc:
        return MeterEventResult(Outcome.RETRY, f"connection: {exc.user_message or exc}")
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status in (409, 429):
            return MeterEventResult(Outcome.RETRY, _message(exc), _retry_after(exc))
        if DUPLICATE_IDENTIFIER in (exc.user_message or ""):
            return MeterEventResult(Outcome.ALREADY_SENT, _message(exc))
        if exc.code in TOO_LATE_CODES:
            return MeterEventResult(Outcome.TOO_LATE, _message(exc))
        return MeterEventResult(Outcome.REJECTED, _message(exc))
    return MeterEventResult(Outcome.SENT)


def meter_ids_by_event_name() -> dict[str, str]:
    """Active meters: event name -> meter id."""
    meters = stripe.billing.Meter.list(
        status="active", limit=100, api_key=settings.STRIPE_SECRET_KEY
    )
    return {meter.event_name: meter.id for meter in meters.auto_paging_iter()}


def meter_usage_total(*, meter_id: str, customer_id: str, start: datetime, end: datetime) -> int:
    """A customer's aggregated usage on a meter for events with start <= timestamp < end."""
    summaries = stripe.billing.Meter.list_event_summaries(
        meter_id,
        customer=customer_id,
        start_time=int(start.timestamp()),
        end_time=int(end.timestamp()),
        limit=100,
        api_key=settings.STRIPE_SECRET_KEY,
    )
    return sum(int(summary.aggregated_value) for summary in summaries.auto_paging_iter())


def _message(exc: stripe.StripeError) -> str:
    parts = [str(exc.http_status or "")]
    if exc.code:
        parts.append(exc.code)
    parts.append(exc.user_message or str(exc))
    return " ".join(part for part in parts if part)[:1000]


def _retry_after(exc: stripe.StripeError) -> int | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None
