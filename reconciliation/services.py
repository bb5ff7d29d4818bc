"""Reconciliation writes: claim a run, compare, record results, drift records, datapoints, alerts.

A run is claimed by inserting its row (unique per day, scope and attempt) and committing
before any source is read, so two triggers for the same day cannot both run. Sources are read
outside any transaction; everything the run concludes is written in one transaction.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from billing_project.alerts import alert_raise
from billing_project.datapoints import datapoint_record
from billing_project.errors import BillingError, ConflictError, ExternalServiceError
from billing_project.money import format_money
from cohorts.models import Cohort
from metering.models import BillingAccount
from metering.selectors import catalog_kinds

from .comparison import Compared, compare_account, stripe_month_sides
from .drift import drift_records_detect, drift_records_seen_clean
from .gateways import stripe_invoices_in_window
from .models import ReconciliationResult, ReconciliationRun, ResultStatus
from .periods import RunPeriod, run_period
from .selectors import accounts_in_scope, legacy_month_sides, members_in_scope, scope_key

logger = logging.getLogger("billing.reconciliation")

Progress = Callable[[str], None]
ALERT_ROWS = 20


class AlreadyRan(ConflictError):
    """A run for this day and scope exists; only an explicit --force starts another."""

    def __init__(self, run: ReconciliationRun | None, message: str):
        super().__init__(message, field="date", code="already_ran")
        self.run = run


class SourceUnreadable(BillingError):
    """A source could not be read, or the scope is empty while it should not be."""


@dataclass
class RunOutcome:
    period: RunPeriod
    scope: str
    status: str
    run: ReconciliationRun | None = None
    compared: list[Compared] = field(default_factory=list)
    error: str = ""
    timings_ms: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for row in self.compared if row.status == status)


def run_claim(
    *,
    period: RunPeriod,
    cohort_number: int | None,
    trigger: str,
    force: bool,
    requested_by: str = "",
) -> ReconciliationRun:
    """Insert and commit the run row: attempt 1, or the next attempt when forced."""
    scope = scope_key(cohort_number)
    existing = ReconciliationRun.objects.filter(run_date=period.run_date, scope_key=scope)
    last = existing.aggregate(last=Max("attempt"))["last"] or 0
    if last and not force:
        run = existing.order_by("-attempt").first()
        raise AlreadyRan(
            run,
            f"{scope} was already reconciled for {period.run_date} (attempt {last}, "
            f"{run.status if run else '?'}); use --force to run it again as a new attempt",
        )
    try:
        with transaction.atomic():
            return ReconciliationRun.objects.create(
                run_date=period.run_date,
                service_month=period.service_month,
                scope_key=scope,
                cohort_number=cohort_number,
                attempt=last + 1,
                trigger=trigger,
                forced=force,
                requested_by=requested_by,
                legacy_deadline=period.deadline,
                started_at=timezone.now(),
            )
    except IntegrityError as exc:
        run = existing.order_by("-attempt").first()
        raise AlreadyRan(
            run, f"another run for {scope} on {period.run_date} started at the same time"
        ) from exc


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


def _compare(
    outcome: RunOutcome, *, cohort_number: int | None, progress: Progress
) -> tuple[int, int, int]:
    """Read both sides and compare. Returns (members, stripe invoices, legacy invoices)."""
    period = outcome.period
    started = time.perf_counter()
    accounts = accounts_in_scope(cohort_number=cohort_number)
    members = members_in_scope(cohort_number=cohort_number)
    progress(f"{len(accounts)} accounts in scope {outcome.scope} ({members} cohort members)")
    if not accounts:
        if members:
            raise SourceUnreadable(
                f"no account to check in scope {outcome.scope} while {members} cohort members "
                "exist: none is billed in parallel or by Stripe"
            )
        return members, 0, 0
    try:
        legacy = legacy_month_sides(
            acct_ids=[a.acct_id for a in accounts], month=period.service_month
        )
    except DatabaseError as exc:
        raise SourceUnreadable(f"the legacy database could not be read: {exc}") from exc
    outcome.timings_ms["legacy"] = _ms(started)
    progress(f"legacy: {len(legacy)} accounts invoiced for {period.service_month:%Y-%m}")
    started = time.perf_counter()
    kinds = catalog_kinds()
    snapshot = stripe_invoices_in_window(
        created_gte=period.window_start,
        created_lt=period.window_end,
        kinds=kinds,
        on_page=lambda n: n % 1000 == 0 and progress(f"stripe: {n} invoices read"),
    )
    outcome.timings_ms["stripe"] = _ms(started)
    progress(f"stripe: {len(snapshot.invoices)} invoices read in {snapshot.requests} requests")
    started = time.perf_counter()
    stripe_sides = stripe_month_sides(
        invoices=snapshot.invoices,
        accounts_by_customer={a.stripe_customer_id: a for a in accounts if a.stripe_customer_id},
        month=period.service_month,
        prices=snapshot.prices,
        products=snapshot.products,
        kinds=kinds,
        credit_notes=snapshot.credit_notes,
    )
    outcome.compared = [
        compare_account(
            account=account,
            cohort_number=account.cohort.number if account.cohort else None,
            stripe=stripe_sides.get(account.acct_id),
            legacy=legacy.get(account.acct_id),
            past_deadline=period.past_deadline,
            legacy_expected=account.billing_owner == BillingAccount.BillingOwner.PARALLEL,
        )
        for account in accounts
    ]
    outcome.timings_ms["compare"] = _ms(started)
    legacy_invoices = sum(len(side.documents) for side in legacy.values())
    return members, len(snapshot.invoices), legacy_invoices


def _status(compared: list[Compared]) -> str:
    statuses = {row.status for row in compared}
    if ResultStatus.DRIFT in statuses:
        return ReconciliationRun.Status.DRIFT
    if ResultStatus.PENDING in statuses:
        return ReconciliationRun.Status.PENDING
    return ReconciliationRun.Status.CLEAN


def reconcile_run(
    *,
    run_date: date,
    cohort_number: int | None = None,
    trigger: str = ReconciliationRun.Trigger.COMMAND,
    force: bool = False,
    dry_run: bool = False,
    requested_by: str = "",
    progress: Progress | None = None,
) -> RunOutcome:
    """Reconcile the service month before `run_date`'s month for one scope.

    Runs once per day and scope (AlreadyRan otherwise) unless forced, which records a new
    attempt. A source that cannot be read makes the run `error` with an operations alert,
    never `clean`. With `dry_run` nothing is written, no datapoint, no alert."""
    progress = progress or (lambda message: None)
    today = timezone.now().astimezone(UTC).date()
    if run_date > today:
        raise BillingError(
            f"{run_date} is in the future (today is {today} UTC): only a day that has begun "
            "can be reconciled",
            field="date",
            code="future_date",
        )
    if cohort_number is not None and not Cohort.objects.filter(number=cohort_number).exists():
        raise BillingError(f"there is no cohort {cohort_number}", field="cohort")
    period = run_period(run_date)
    outcome = RunOutcome(period=period, scope=scope_key(cohort_number), status="running")
    if not dry_run:
        outcome.run = run_claim(
            period=period,
            cohort_number=cohort_number,
            trigger=trigger,
            force=force,
            requested_by=requested_by,
        )
    started = time.perf_counter()
    try:
        members, stripe_invoices, legacy_invoices = _compare(
            outcome, cohort_number=cohort_number, progress=progress
        )
    except (SourceUnreadable, ExternalServiceError) as exc:
        outcome.status, outcome.error = ReconciliationRun.Status.ERROR, exc.message
        outcome.compared = []
        members = stripe_invoices = legacy_invoices = 0
    except Exception as exc:  # an unexpected failure must still end the claimed run as error
        logger.exception("reconciliation run failed")
        outcome.status, outcome.error = ReconciliationRun.Status.ERROR, f"unexpected: {exc!r}"
        outcome.compared = []
        members = stripe_invoices = legacy_invoices = 0
    else:
        outcome.status = _status(outcome.compared)
    if dry_run:
        return outcome
    started_write = time.perf_counter()
    run_record(
        outcome,
        members=members,
        stripe_invoices=stripe_invoices,
        legacy_invoices=legacy_invoices,
    )
    outcome.timings_ms["write"] = _ms(started_write)
    outcome.timings_ms["total"] = _ms(started)
    ReconciliationRun.objects.filter(pk=outcome.run.pk).update(timings_ms=outcome.timings_ms)
    outcome.run.timings_ms = outcome.timings_ms
    progress(f"run {outcome.run.pk}: {outcome.status}")
    return outcome


def run_record(
    outcome: RunOutcome, *, members: int, stripe_invoices: int, legacy_invoices: int
) -> ReconciliationRun:
    """Write the run's results, drift records, datapoints and alerts in one transaction."""
    run = outcome.run
    now = timezone.now()
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update().get(pk=run.pk)
        ReconciliationResult.objects.bulk_create(
            [_result_row(run, row) for row in outcome.compared], batch_size=2000
        )
        drifting = [row for row in outcome.compared if row.status == ResultStatus.DRIFT]
        if drifting:
            drift_records_detect(run=run, rows=drifting, at=now)
        clean_ids = [row.account.pk for row in outcome.compared if row.status == "clean"]
        if clean_ids:
            drift_records_seen_clean(
                run=run, account_ids=clean_ids, month=run.service_month, at=now
            )
        run.status = outcome.status
        run.error = outcome.error
        run.accounts_checked = len(outcome.compared)
        run.accounts_clean = outcome.count(ResultStatus.CLEAN)
        run.accounts_drift = len(drifting)
        run.accounts_pending = outcome.count(ResultStatus.PENDING)
        run.members_in_scope = members
        run.stripe_invoices_read = stripe_invoices
        run.legacy_invoices_read = legacy_invoices
        run.total_delta_minor = sum(row.delta_minor for row in drifting)
        run.finished_at = now
        run.save()
        _signal(run, outcome, drifting)
    outcome.run = run
    return run


def _result_row(run: ReconciliationRun, row: Compared) -> ReconciliationResult:
    # Ids, not instances: assigning a related instance consults the database routers, which
    # costs more than the rest of the row at 10,000 rows.
    return ReconciliationResult(
        run_id=run.pk,
        account_id=row.account.pk,
        acct_id=row.account.acct_id,
        cohort_number=row.cohort_number,
        service_month=run.service_month,
        currency=row.currency,
        status=row.status,
        reason=row.reason,
        stripe_total_minor=row.stripe_total_minor,
        legacy_total_minor=row.legacy_total_minor,
        delta_minor=row.delta_minor,
        stripe_by_kind=row.stripe_by_kind,
        legacy_by_kind=row.legacy_by_kind,
        drift_kinds=row.drift_kinds,
        stripe_invoice_ids=row.stripe_invoice_ids,
        legacy_inv_uuids=row.legacy_inv_uuids,
    )


def _signal(run: ReconciliationRun, outcome: RunOutcome, drifting: list[Compared]) -> None:
    """Datapoints and alerts for the run's outcome (stored now, delivered after commit)."""
    month = f"{run.service_month:%Y-%m}"
    if run.status == ReconciliationRun.Status.ERROR:
        alert_raise(
            route="operations",
            title=f"Reconciliation {run.scope_key} for {run.run_date} failed",
            body=run.error,
            dimensions={"run_id": run.pk, "service_month": month, "scope": run.scope_key},
        )
        return
    for row in drifting:
        datapoint_record(
            name="reconcile_drift",
            dimensions={
                "account_id": row.account.acct_id,
                "stripe_total": row.stripe_total_minor,
                "legacy_total": row.legacy_total_minor,
                "delta": row.delta_minor,
                "currency": row.currency,
                "service_month": month,
                "reason": row.reason,
                "kinds": row.drift_kinds,
                "run_id": run.pk,
            },
        )
    if drifting:
        alert_raise(
            route="billing",
            title=(
                f"Reconciliation drift: {len(drifting)} account(s) for {month} "
                f"({run.scope_key}, {run.run_date})"
            ),
            body=_drift_summary(drifting),
            dimensions={
                "run_id": run.pk,
                "service_month": month,
                "accounts_checked": run.accounts_checked,
                "accounts_drift": len(drifting),
            },
        )
    for cohort, checked in _clean_cohorts(outcome.compared).items():
        datapoint_record(
            name="reconcile_clean",
            dimensions={
                "cohort": cohort,
                "accounts_checked": checked,
                "service_month": month,
                "run_id": run.pk,
            },
        )


def _clean_cohorts(compared: list[Compared]) -> dict[int | None, int]:
    """Cohorts whose every account compared clean, with how many were checked."""
    checked: dict[int | None, int] = {}
    unclean: set[int | None] = set()
    for row in compared:
        checked[row.cohort_number] = checked.get(row.cohort_number, 0) + 1
        if row.status != ResultStatus.CLEAN:
            unclean.add(row.cohort_number)
    return {cohort: count for cohort, count in checked.items() if cohort not in unclean}


def _drift_summary(drifting: list[Compared]) -> str:
    rows = sorted(drifting, key=lambda row: (-abs(row.delta_minor), row.account.acct_id))
    lines = [
        f"{row.account.acct_id}: Stripe {format_money(row.stripe_total_minor, row.currency)} vs "
        f"legacy {format_money(row.legacy_total_minor, row.currency)} "
        f"(delta {row.delta_minor:+d}; {row.reason}; kinds {', '.join(row.drift_kinds) or '-'})"
        for row in rows[:ALERT_ROWS]
    ]
    if len(rows) > ALERT_ROWS:
        lines.append(f"... and {len(rows) - ALERT_ROWS} more")
    return "\n".join(lines)
