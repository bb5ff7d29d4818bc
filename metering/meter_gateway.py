"""The usage side's boundary to Stripe: meter events out; meter event summaries and the invoice
that bills a usage period in.

Calls go through the one Stripe client (`billing_project.stripe_api`) without its retries:
the outbox keeps the attempt count and the next try in its rows, so a failure is recorded and
retried on our schedule, never hidden.
"""

import enum
from dataclasses import dataclass
from datetime import datetime

from billing_project import stripe_api
from billing_project.stripe_api import StripeApiError

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
        stripe_api.request(
            "post",
            "/v1/billing/meter_events",
            idempotency_key=f"meter-event:{identifier}",
            retries=0,
            event_name=event_name,
            payload={METER_CUSTOMER_KEY: customer_id, METER_VALUE_KEY: str(value)},
            identifier=identifier,
            timestamp=int(timestamp.timestamp()),
        )
    except StripeApiError as exc:
        if exc.unavailable:
            return MeterEventResult(Outcome.RETRY, exc.message, exc.retry_after)
        if DUPLICATE_IDENTIFIER in exc.message:
            return MeterEventResult(Outcome.ALREADY_SENT, exc.message)
        if exc.stripe_code in TOO_LATE_CODES:
            return MeterEventResult(Outcome.TOO_LATE, exc.message)
        return MeterEventResult(Outcome.REJECTED, exc.message)
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
        for invoice in stripe_api.pages(
            "/v1/invoices", retries=0, customer=customer_id, created={"gte": at}
        ):
            parent = invoice.get("parent") or {}
            if not parent.get("subscription_details"):
                continue  # a one-off invoice carries no metered usage
            if not invoice["period_start"] <= at < invoice["period_end"]:
                continue
            transitions = invoice.get("status_transitions") or {}
            return UsageInvoice(
                invoice_id=invoice["id"],
                status=invoice["status"],
                finalized_at=transitions.get("finalized_at"),
                finalizes_at=invoice.get("automatically_finalizes_at"),
            )
    except StripeApiError as exc:
        raise InvoiceLookupFailed(exc.message) from exc
    return None


def meter_ids_by_event_name() -> dict[str, str]:
    """Active meters: event name -> meter id."""
    return {
        meter["event_name"]: meter["id"]
        for meter in stripe_api.pages("/v1/billing/meters", status="active")
    }


def meter_usage_total(*, meter_id: str, customer_id: str, start: datetime, end: datetime) -> int:
    """A customer's aggregated usage on a meter for events with start <= timestamp < end."""
    summaries = stripe_api.pages(
        f"/v1/billing/meters/{meter_id}/event_summaries",
        customer=customer_id,
        start_time=int(start.timestamp()),
        end_time=int(end.timestamp()),
    )
    return sum(int(summary["aggregated_value"]) for summary in summaries)
