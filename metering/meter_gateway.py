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


@dataclass(frozen=True)
class UsageInvoice:
    """The Stripe invoice that bills a usage period, as far as the meter side cares."""

    invoice_id: str
    status: str
    finalized_at: int | None
    finalizes_at: int | None

    @property
    def finalized(self) -> bool:
        return self.status != "draft" or self.finalized_at is not None


class InvoiceLookupFailed(Exception):
    """Stripe could not be asked which invoice bills a usage period (retry later)."""


def usage_invoice_find(*, customer_id: str, timestamp: datetime) -> UsageInvoice | None:
    """The customer's subscription invoice whose usage period holds `timestamp`, or None when
    Stripe has not made it yet (the period is still open, or its invoice is being created).

    Only invoices created at or after the timestamp can bill it (metered usage is billed in
    arrears, at the end of the period that holds it)."""
    at = int(timestamp.timestamp())
    try:
        invoices = stripe.Invoice.list(
            customer=customer_id,
            created={"gte": at},
            limit=100,
            api_key=settings.STRIPE_SECRET_KEY,
            max_network_retries=0,
        )
        for invoice in invoices.auto_paging_iter():
            parent = invoice.get("parent") or {}
            if not parent.get("subscription_details"):
                continue  # a one-off invoice carries no metered usage
            if not invoice.period_start <= at < invoice.period_end:
                continue
            transitions = invoice.get("status_transitions") or {}
            return UsageInvoice(
                invoice_id=invoice.id,
                status=invoice.status,
                finalized_at=transitions.get("finalized_at"),
                finalizes_at=invoice.get("automatically_finalizes_at"),
            )
    except stripe.StripeError as exc:
        raise InvoiceLookupFailed(_message(exc)) from exc
    return None


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
