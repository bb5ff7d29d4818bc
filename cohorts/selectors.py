"""Reads for the cohort pages: checklist state, sign-offs, reviews, the board and retirement."""

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Q, QuerySet

from metering.models import BillingAccount

from . import checklist, sources
from .checklist_models import AccountReview, AuditEntry, ChecklistResult, CohortNote, SignOff
from .models import Cohort


def cohort_list() -> QuerySet[Cohort]:
    return Cohort.objects.annotate(
        member_count=Count("memberships", filter=Q(memberships__left_at__isnull=True))
    ).order_by("number")


def cohort_members(cohort: Cohort) -> list[BillingAccount]:
    return list(BillingAccount.objects.filter(cohort=cohort).order_by("acct_id"))


def checklist_latest(cohort: Cohort) -> dict[str, ChecklistResult]:
    """The latest result of each item in the cohort's current round (one query)."""
    latest: dict[str, ChecklistResult] = {}
    results = ChecklistResult.objects.filter(cohort=cohort, round=cohort.round).select_related("by")
    for result in results.order_by("-at", "-id"):
        latest.setdefault(result.item, result)
    return latest


def signers(cohort: Cohort) -> list[SignOff]:
    return list(SignOff.objects.filter(cohort=cohort, round=cohort.round).select_related("by"))


def reviews(cohort: Cohort) -> dict[int, AccountReview]:
    rows = AccountReview.objects.filter(cohort=cohort, round=cohort.round).select_related("by")
    return {review.account_id: review for review in rows}


def notes(cohort: Cohort, *, limit: int = 50) -> list[CohortNote]:
    return list(CohortNote.objects.filter(cohort=cohort).select_related("by")[:limit])


def audit_list(cohort: Cohort, *, limit: int = 100) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(cohort=cohort).select_related("by")[:limit])


@dataclass
class ItemRow:
    item: checklist.Item
    result: ChecklistResult | None

    @property
    def state(self) -> str:
        if self.result is None:
            return "not_run"
        return "pass" if self.result.passed else "fail"


def checklist_rows(cohort: Cohort, phase: str) -> list[ItemRow]:
    latest = checklist_latest(cohort)
    return [ItemRow(item, latest.get(item.key)) for item in checklist.items(phase)]


@dataclass
class CycleProgress:
    days_total: int = 0
    days_elapsed: int = 0
    days_clean: int = 0
    bad_days: list[tuple[date, str]] = field(default_factory=list)


def cycle_progress(cohort: Cohort, *, today: date) -> CycleProgress:
    """Clean days so far in the cohort's current cycle (elapsed = up to today)."""
    if cohort.cycle_start is None or cohort.cycle_end is None:
        return CycleProgress()
    total = (cohort.cycle_end - cohort.cycle_start).days + 1
    last = min(today, cohort.cycle_end)
    if last < cohort.cycle_start:
        return CycleProgress(days_total=total)
    days = sources.reconciliation_days(cohort.number, cohort.cycle_start, last)
    return CycleProgress(
        days_total=total,
        days_elapsed=len(days),
        days_clean=sum(1 for d in days.values() if d.status == "clean"),
        bad_days=[(d, r.status) for d, r in days.items() if r.status != "clean"],
    )


@dataclass
class Card:
    cohort: Cohort
    members: int
    phase: str
    items_passed: int
    items_total: int
    cycle: CycleProgress
    open_drift: int
    failed_deliveries: int
    signoffs: int
    headline: str


def _phase(cohort: Cohort) -> str:
    if cohort.status in (Cohort.Status.PARALLEL_RUN, Cohort.Status.MIGRATED):
        return ChecklistResult.Phase.POST
    return ChecklistResult.Phase.PRE


def board_cards(*, today: date) -> list[Card]:
    """One card per cohort: where it stands and what blocks it."""
    cohorts = list(cohort_list())
    failed = sources.failed_delivery_counts(c.pk for c in cohorts)
    drift: dict[int, int] = {}
    for number in sources.open_drift().values_list("cohort_number", flat=True):
        drift[number] = drift.get(number, 0) + 1
    cards = []
    for cohort in cohorts:
        phase = _phase(cohort)
        rows = checklist_rows(cohort, phase)
        passed = sum(1 for row in rows if row.state == "pass")
        cycle = cycle_progress(cohort, today=today)
        card = Card(
            cohort=cohort,
            members=cohort.member_count,
            phase=phase,
            items_passed=passed,
            items_total=len(rows),
            cycle=cycle,
            open_drift=drift.get(cohort.number, 0),
            failed_deliveries=failed.get(cohort.pk, 0),
            signoffs=len({s.by_id for s in signers(cohort)}),
            headline="",
        )
        card.headline = _headline(card, rows)
        cards.append(card)
    return cards


def _headline(card: Card, rows: list[ItemRow]) -> str:
    cohort = card.cohort
    if cohort.status == Cohort.Status.MIGRATED:
        return "Migrated: Stripe bills these accounts"
    if cohort.status == Cohort.Status.ROLLED_BACK:
        return "Rolled back: legacy bills these accounts"
    if card.open_drift:
        return f"Blocked: {card.open_drift} open drift"
    failing = [row.item.label for row in rows if row.state == "fail"]
    if failing:
        return f"Blocked: {failing[0]}" + (
            f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        )
    if card.cycle.bad_days:
        day, status = card.cycle.bad_days[0]
        return f"Blocked: {day:%b %d} {status}"
    not_run = sum(1 for row in rows if row.state == "not_run")
    if not_run:
        return f"{not_run} checklist item(s) not run yet"
    if cohort.status == Cohort.Status.PARALLEL_RUN:
        return "On track"
    return "Checklist complete"


@dataclass
class Retirement:
    ready: bool
    missing: list[str]
    cohorts: list[Cohort]
    accounts_checked: int


def retirement_readiness() -> Retirement:
    """Can the legacy system be retired (B.8)? Every cohort migrated, every account in a cohort,
    every history export verified, every legacy PDF copied. Reads only."""
    cohorts = list(cohort_list())
    missing = [
        f"cohort {c.number} ({c.name}) is {c.get_status_display().lower()}, not migrated"
        for c in cohorts
        if c.status != Cohort.Status.MIGRATED
    ]
    if not cohorts:
        missing.append("no cohort exists")
    outside = BillingAccount.objects.filter(cohort__isnull=True).count()
    if outside:
        missing.append(f"{outside} billing account(s) in no cohort")
    not_stripe = BillingAccount.objects.exclude(billing_owner=BillingAccount.BillingOwner.STRIPE)
    if count := not_stripe.count():
        missing.append(f"{count} billing account(s) not billed by Stripe alone")
    coverage = sources.all_export_coverage()
    for member in coverage:
        missing.extend(f"account {member.acct_id}: {m}" for m in member.missing)
    return Retirement(
        ready=not missing, missing=missing, cohorts=cohorts, accounts_checked=len(coverage)
    )
