"""Reads for reconciliation. Each is a fixed number of queries, whatever the number of accounts."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet, Sum

from billing_project.classifier import LineKind, kind_from_value
from billing_project.money import major_to_minor
from cohorts.models import Cohort, CohortMembership
from metering.models import BillingAccount

from .comparison import MonthSide
from .legacy import LegacyInvoice, LegacyInvoiceLine
from .models import ReconciliationResult, ReconciliationRun, ResultStatus

RECONCILED_OWNERS = (BillingAccount.BillingOwner.PARALLEL, BillingAccount.BillingOwner.STRIPE)


def scope_key(cohort_number: int | None) -> str:
    return "all" if cohort_number is None else f"cohort:{cohort_number}"


def accounts_in_scope(*, cohort_number: int | None = None) -> list[BillingAccount]:
    """Accounts billed in parallel or by Stripe (for monitoring), optionally one cohort's."""
    accounts = (
        BillingAccount.objects.filter(billing_owner__in=RECONCILED_OWNERS)
        .select_related("cohort")
        .only("id", "acct_id", "stripe_customer_id", "billing_owner", "cohort__number")
    )
    if cohort_number is not None:
        accounts = accounts.filter(cohort__number=cohort_number)
    return list(accounts.order_by("acct_id"))


def members_in_scope(*, cohort_number: int | None = None) -> int:
    """Open cohort memberships the scope should cover: one cohort's, else every cohort's
    under parallel run. Members but no account to check means the run is misconfigured."""
    memberships = CohortMembership.objects.filter(left_at__isnull=True)
    if cohort_number is not None:
        memberships = memberships.filter(cohort__number=cohort_number)
    else:
        memberships = memberships.filter(cohort__status=Cohort.Status.PARALLEL_RUN)
    return memberships.count()


def legacy_month_sides(*, acct_ids: Collection[int], month: date) -> dict[int, MonthSide]:
    """Per acct_id, the legacy invoices for the service month: totals as billed, per-kind
    totals from their lines (a total the lines do not explain is `other`). Two queries."""
    ids = list(acct_ids)
    sides: dict[int, MonthSide] = {}
    invoices = LegacyInvoice.objects.filter(service_month=month, account_id__in=ids).values_list(
        "inv_uuid", "account_id", "total", "currency"
    )
    for inv_uuid, acct_id, total, currency in invoices:
        side = sides.setdefault(acct_id, MonthSide(currency=currency.lower()))
        side.total_minor += major_to_minor(total, currency)
        side.documents.append(inv_uuid)
    lines = (
        LegacyInvoiceLine.objects.filter(invoice__service_month=month, invoice__account_id__in=ids)
        .values_list("invoice__account_id", "invoice__currency", "line_kind")
        .annotate(amount=Sum("amount"))
    )
    explained: dict[int, int] = {}
    for acct_id, currency, line_kind, amount in lines:
        kind = kind_from_value(line_kind) or LineKind.OTHER
        amount_minor = major_to_minor(amount, currency)
        sides[acct_id].by_kind[kind.value] += amount_minor
        explained[acct_id] = explained.get(acct_id, 0) + amount_minor
    for acct_id, side in sides.items():
        side.by_kind[LineKind.OTHER.value] += side.total_minor - explained.get(acct_id, 0)
    return sides


def run_latest(*, run_date: date, scope: str) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(run_date=run_date, scope_key=scope)
        .order_by("-attempt")
        .first()
    )


def result_list(*, run: ReconciliationRun) -> QuerySet[ReconciliationResult]:
    return ReconciliationResult.objects.filter(run=run).select_related("account")


@dataclass
class ChartDay:
    day: date
    checked: int
    drift: int
    pending: int


@dataclass
class CohortChart:
    label: str
    days: list[ChartDay]
    max_checked: int


def drift_chart(*, today: date, days: int = 60) -> list[CohortChart]:
    """Per cohort, per run day of the last `days` days: accounts checked, drifting, pending.

    The latest attempt of a day counts (a forced re-run replaces that day's picture). One
    query for the latest attempts, one for their per-cohort counts."""
    since = today - timedelta(days=days - 1)
    runs = ReconciliationRun.objects.filter(run_date__gte=since, run_date__lte=today).exclude(
        status__in=(ReconciliationRun.Status.RUNNING, ReconciliationRun.Status.ERROR)
    )
    latest: dict[tuple[date, str], tuple[int, int]] = {}
    rows = runs.values_list("id", "run_date", "scope_key", "attempt")
    for run_id, run_date, key, attempt in rows:
        if latest.get((run_date, key), (0, 0))[0] < attempt:
            latest[(run_date, key)] = (attempt, run_id)
    run_days = {run_id: run_date for (run_date, _), (_, run_id) in latest.items()}
    counts = (
        ReconciliationResult.objects.filter(run_id__in=list(run_days))
        .values_list("run_id", "cohort_number")
        .annotate(
            checked=Count("id"),
            drift=Count("id", filter=Q(status=ResultStatus.DRIFT)),
            pending=Count("id", filter=Q(status=ResultStatus.PENDING)),
        )
    )
    per_cohort: dict[int | None, dict[date, ChartDay]] = {}
    for run_id, cohort_number, checked, drift, pending in counts:
        day = run_days[run_id]
        cohort_days = per_cohort.setdefault(cohort_number, {})
        entry = cohort_days.setdefault(day, ChartDay(day=day, checked=0, drift=0, pending=0))
        # Overlapping scopes (all + one cohort) on a day: keep the widest picture.
        if checked > entry.checked:
            entry.checked, entry.drift, entry.pending = checked, drift, pending
    charts = []
    for cohort_number in sorted(per_cohort, key=lambda n: (n is None, n or 0)):
        by_day = per_cohort[cohort_number]
        series = [
            by_day.get(day, ChartDay(day=day, checked=0, drift=0, pending=0))
            for day in (since + timedelta(days=offset) for offset in range(days))
        ]
        label = "No cohort" if cohort_number is None else f"Cohort {cohort_number}"
        charts.append(
            CohortChart(
                label=label, days=series, max_checked=max((d.checked for d in series), default=0)
            )
        )
    return charts
