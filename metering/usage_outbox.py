"""The usage outbox: pending revisions become Stripe meter events, each exactly once.

Work is split into lanes, one per account (= Stripe customer) and usage type (= meter). A lane
is held with a PostgreSQL advisory lock while it sends, so there is at most one concurrent
meter event call per customer per meter however many workers poll; different lanes run in
parallel threads. No row lock is held across a network call: each result is recorded by a
conditional update of a still-pending row.

A revision that Stripe would no longer bill on its invoice is marked `too_late` (and billing is
alerted) instead of being sent: its timestamp is past Stripe's 35-day window, or the invoice
Stripe made for its period has finalized (or finalizes within `SEND_MARGIN`). That is read from
Stripe, not from the calendar: Stripe keeps a cycle invoice as a draft for a grace period (one
hour by default, up to 72 hours as configured) in which late usage still counts. Subscriptions
are monthly and anchored on the 1st, 00:00 UTC, so usage of the current month needs no lookup,
and one lookup per customer and month serves a run. An operator settles a too-late revision
with an invoice item or a credit note; nothing is dropped.

A 429, a 5xx or a connection failure is retried with backoff (Retry-After honoured), bounded by
`OUTBOX_MAX_ATTEMPTS`, after which the row is `failed` for an operator. The meter event's
identifier (key + revision) doubles as the request's idempotency key, and Stripe's "identifier
already exists" answer to a retry counts as delivered.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from billing_project.alerts import alert_raise
from billing_project.datapoints import datapoint_record
from billing_project.errors import BillingError

from .meter_gateway import (
    InvoiceLookupFailed,
    Outcome,
    UsageInvoice,
    meter_event_send,
    usage_invoice_find,
)
from .usage_models import UsageRevision
from .usage_selectors import Lane, usage_outbox_due_lanes, usage_outbox_lane_due
from .usage_types import UsageType, meter_event_name

logger = logging.getLogger("billing.usage_outbox")

State = UsageRevision.State
STRIPE_PAST_WINDOW = timedelta(days=35)
# Sending stops this long before either limit, so an event cannot reach Stripe just too late.
SEND_MARGIN = timedelta(minutes=10)
OUTBOX_BACKOFF_SECONDS = [30, 60, 120, 300, 900, 1800, 3600, 7200, 7200]
OUTBOX_MAX_ATTEMPTS = len(OUTBOX_BACKOFF_SECONDS) + 1
OUTBOX_WORKERS = 4
LANE_BATCH = 500
# A run stops taking new rows after this long, well inside the task queue's 300 s timeout.
RUN_BUDGET_SECONDS = 200
LANE_LOCK_NAMESPACE = 0x5553  # pg advisory lock class id of usage lanes
_TYPE_INDEX = {usage_type: n for n, usage_type in enumerate(UsageType.values)}


@dataclass
class OutboxReport:
    lanes: int = 0
    busy_lanes: int = 0
    sent: int = 0
    retried: int = 0
    failed: list[str] = field(default_factory=list)
    too_late: list[str] = field(default_factory=list)

    def merge(self, other: "OutboxReport") -> None:
        self.lanes += other.lanes
        self.busy_lanes += other.busy_lanes
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.too_late += other.too_late

    def summary(self) -> str:
        return (
            f"{self.lanes} lanes ({self.busy_lanes} busy elsewhere): {self.sent} sent, "
            f"{self.retried} to retry, {len(self.failed)} failed, {len(self.too_late)} too late"
        )


def _month_after(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def period_end(period: date) -> datetime:
    """The end of the billing period holding this usage day (monthly, anchored on the 1st)."""
    return datetime.combine(_month_after(period), datetime.min.time(), tzinfo=UTC)


# What a run learnt of the invoices billing past periods: (customer, month) -> invoice or None.
InvoiceCache = dict[tuple[str, date], UsageInvoice | None]


def too_late_reason(
    revision: UsageRevision, now: datetime, invoices: InvoiceCache | None = None
) -> str:
    """Why this revision can no longer reach its invoice, or "" if it still can.

    Raises InvoiceLookupFailed when its period has ended and Stripe cannot say whether the
    invoice billing it has finalized (the revision then waits: sending it blind could lose it).
    """
    if revision.event_timestamp < now - STRIPE_PAST_WINDOW + SEND_MARGIN:
        return "older than Stripe's 35-day meter event window"
    period = revision.record.period
    if now < period_end(period):
        return ""  # its billing period is still open: no invoice can have billed it
    customer_id = revision.record.account.stripe_customer_id
    if not customer_id:
        return ""  # no customer, no invoice: the revision waits for its customer
    key = (customer_id, period.replace(day=1))
    cache = {} if invoices is None else invoices
    if key not in cache:
        cache[key] = usage_invoice_find(customer_id=customer_id, timestamp=revision.event_timestamp)
    invoice = cache[key]
    if invoice is None:
        return ""  # Stripe has not made the period's invoice yet: the usage will be on it
    if invoice.finalized:
        at = invoice.finalized_at
        when = f" at {datetime.fromtimestamp(at, tz=UTC):%Y-%m-%d %H:%M} UTC" if at else ""
        return f"the {period:%B %Y} invoice {invoice.invoice_id} finalized{when}"
    if invoice.finalizes_at is not None:
        finalizes = datetime.fromtimestamp(invoice.finalizes_at, tz=UTC)
        if now >= finalizes - SEND_MARGIN:
            return (
                f"the {period:%B %Y} invoice {invoice.invoice_id} finalizes at "
                f"{finalizes:%Y-%m-%d %H:%M} UTC, too soon to be sure it counts"
            )
    return ""


def usage_outbox_send(
    *, now: datetime | None = None, workers: int = OUTBOX_WORKERS
) -> OutboxReport:
    """Send every due pending revision once. Safe to run concurrently and to re-run."""
    now = now or timezone.now()
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    lanes = usage_outbox_due_lanes(now=now)
    report = OutboxReport()
    if workers <= 1 or len(lanes) <= 1:
        for lane in lanes:
            report.merge(_lane_send(lane, now, deadline))
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="usage-lane") as pool:
            for lane_report in pool.map(lambda lane: _lane_thread(lane, now, deadline), lanes):
                report.merge(lane_report)
    if report.too_late or report.failed:
        _alert(report)
    if lanes:
        datapoint_record(
            name="usage_outbox_run",
            dimensions={
                "lanes": report.lanes,
                "sent": report.sent,
                "retried": report.retried,
                "failed": len(report.failed),
                "too_late": len(report.too_late),
            },
        )
    return report


def _lane_thread(lane: Lane, now: datetime, deadline: float) -> OutboxReport:
    try:
        return _lane_send(lane, now, deadline)
    finally:
        connection.close()


@contextlib.contextmanager
def _lane_lock(lane: Lane) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    account_id, usage_type = lane
    key = account_id * len(_TYPE_INDEX) + _TYPE_INDEX[usage_type]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LANE_LOCK_NAMESPACE, key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LANE_LOCK_NAMESPACE, key])


def _lane_send(lane: Lane, now: datetime, deadline: float) -> OutboxReport:
    report = OutboxReport(lanes=1)
    invoices: InvoiceCache = {}
    with _lane_lock(lane) as held:
        if not held:
            report.busy_lanes = 1
            return report
        for revision in usage_outbox_lane_due(lane=lane, now=now, limit=LANE_BATCH):
            if time.monotonic() > deadline or not _send_one(revision, now, report, invoices):
                break  # Stripe asked us to slow down or is failing: the lane waits
    return report


def _send_one(
    revision: UsageRevision, now: datetime, report: OutboxReport, invoices: InvoiceCache
) -> bool:
    """Send one revision; False when the lane should stop for this run."""
    try:
        reason = too_late_reason(revision, now, invoices)
    except InvoiceLookupFailed as exc:
        _retry(revision, f"could not read its invoice from Stripe: {exc}", now, None, report)
        return False
    if reason:
        _too_late(revision, reason, report)
        return True
    account = revision.record.account
    if not account.stripe_customer_id:
        _retry(revision, f"account {account.acct_id} has no Stripe customer yet", now, None, report)
        return True  # no call was made: each row of the lane waits on its own count
    result = meter_event_send(
        event_name=meter_event_name(revision.record.usage_type),
        customer_id=account.stripe_customer_id,
        value=revision.delta,
        identifier=revision.identifier,
        timestamp=revision.event_timestamp,
    )
    if result.outcome in (Outcome.SENT, Outcome.ALREADY_SENT):
        done = _pending(revision).update(
            state=State.SENT,
            sent_at=timezone.now(),
            attempts=revision.attempts + 1,
            next_attempt_at=None,
            last_error="" if result.outcome is Outcome.SENT else result.message,
        )
        report.sent += done
        return True
    if result.outcome is Outcome.TOO_LATE:
        _too_late(revision, f"Stripe refused the timestamp: {result.message}", report)
        return True
    if result.outcome is Outcome.RETRY:
        _retry(revision, result.message, now, result.retry_after, report)
        return False
    _fail(revision, result.message, report)
    return True


def _pending(revision: UsageRevision):
    return UsageRevision.objects.filter(pk=revision.pk, state=State.PENDING)


def _retry(
    revision: UsageRevision,
    error: str,
    now: datetime,
    retry_after: int | None,
    report: OutboxReport,
) -> None:
    attempts = revision.attempts + 1
    if attempts >= OUTBOX_MAX_ATTEMPTS:
        _fail(revision, f"gave up after {attempts} attempts: {error}", report)
        return
    wait = OUTBOX_BACKOFF_SECONDS[min(attempts, len(OUTBOX_BACKOFF_SECONDS)) - 1]
    wait = max(wait, retry_after or 0)
    report.retried += _pending(revision).update(
        attempts=attempts, next_attempt_at=now + timedelta(seconds=wait), last_error=error
    )


def _fail(revision: UsageRevision, error: str, report: OutboxReport) -> None:
    if _pending(revision).update(
        state=State.FAILED,
        attempts=revision.attempts + 1,
        next_attempt_at=None,
        last_error=error,
    ):
        report.failed.append(revision.identifier)


def _too_late(revision: UsageRevision, reason: str, report: OutboxReport) -> None:
    with transaction.atomic():
        if not _pending(revision).update(
            state=State.TOO_LATE, too_late_reason=reason[:255], next_attempt_at=None
        ):
            return
        datapoint_record(
            name="usage_too_late",
            dimensions={
                "identifier": revision.identifier,
                "acct_id": revision.record.account.acct_id,
                "delta": revision.delta,
                "reason": reason,
            },
        )
    report.too_late.append(revision.identifier)


def _alert(report: OutboxReport) -> None:
    lines = []
    if report.too_late:
        lines.append(
            f"{len(report.too_late)} usage revision(s) can no longer reach their invoice; "
            "bill them with an invoice item or a credit note, then mark them settled:"
        )
        lines += [f"  {identifier}" for identifier in report.too_late[:50]]
    if report.failed:
        lines.append(f"{len(report.failed)} usage revision(s) were refused by Stripe:")
        lines += [f"  {identifier}" for identifier in report.failed[:50]]
    alert_raise(
        route="billing",
        title=(f"Usage outbox: {len(report.too_late)} too late, {len(report.failed)} failed"),
        body="\n".join(lines),
        dimensions={"too_late": len(report.too_late), "failed": len(report.failed)},
    )


def usage_revision_retry(*, revision_id: int, now: datetime | None = None) -> bool:
    """Put a failed revision back in the outbox (an operator's action). True if it was.

    A revision Stripe refused after accepting it (a meter error report) is not sent again:
    its identifier already reached Stripe; the usage is posted again as a correction."""
    refused = UsageRevision.objects.filter(pk=revision_id).exclude(stripe_error_code="")
    if refused.exists():
        raise BillingError(
            "Stripe refused this meter event after accepting it "
            f"({refused.values_list('stripe_error_code', flat=True)[0]}); fix the cause, then "
            "post the usage again as a correction",
            field="revision",
        )
    return bool(
        UsageRevision.objects.filter(pk=revision_id, state=State.FAILED).update(
            state=State.PENDING, attempts=0, next_attempt_at=now or timezone.now()
        )
    )


def usage_revision_settle(*, revision_id: int, note: str, by=None) -> bool:
    """Record that an operator billed a too-late revision another way. True if it was open."""
    if not note.strip():
        raise BillingError(
            "say how the usage was settled (invoice item or credit note id)", field="note"
        )
    return bool(
        UsageRevision.objects.filter(
            pk=revision_id, state=State.TOO_LATE, resolved_at__isnull=True
        ).update(resolved_at=timezone.now(), resolved_by=by, resolution_note=note.strip()[:500])
    )
