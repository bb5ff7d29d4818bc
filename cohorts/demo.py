"""Demo data: the three migration cohorts (cohort 1 under parallel run for the current month),
and later, once accounts, reconciliation and exports exist, the board an operator finds."""

import calendar
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from billing_project.demo import DemoContext, demo_step
from metering.models import BillingAccount

from . import checklist, checks, selectors, sources
from .audit import audit_record
from .checklist_models import AuditEntry, ChecklistResult, SignOff
from .models import Cohort
from .permissions import AUDITOR_GROUP, OPERATOR_GROUP, groups_setup
from .services import cohort_checks_run
from .transitions import owners_set

DEMO_COHORTS = (
    (1, "Flat-only", Cohort.PricingModel.FLAT_ONLY, Cohort.Status.PARALLEL_RUN),
    (2, "Flat + tiered impressions", Cohort.PricingModel.FLAT_TIERED, Cohort.Status.READY),
    (3, "Custom / managed services", Cohort.PricingModel.CUSTOM, Cohort.Status.PLANNED),
)


def _month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


@demo_step(10, "cohorts")
def cohorts_demo(ctx: DemoContext) -> str:
    """Create cohorts 1-3 when missing (idempotent: existing cohorts keep their state, which
    the later steps move on); only the parallel-run cohort has a cycle."""
    cycle_start, cycle_end = _month_bounds(ctx.today)
    created = 0
    for number, name, pricing_model, status in DEMO_COHORTS:
        in_cycle = status == Cohort.Status.PARALLEL_RUN
        _, was_created = Cohort.objects.get_or_create(
            number=number,
            defaults={
                "name": name,
                "pricing_model": pricing_model,
                "status": status,
                "cycle_start": cycle_start if in_cycle else None,
                "cycle_end": cycle_end if in_cycle else None,
            },
        )
        created += was_created
    states = ", ".join(
        f"{c.number} {c.get_status_display().lower()}"
        for c in Cohort.objects.filter(number__in=[n for n, *_ in DEMO_COHORTS])
    )
    return f"{len(DEMO_COHORTS)} cohorts ({created} new): {states}"


DEMO_OPERATORS = ("jeffrey", "patrick")
DEMO_AUDITOR = "auditor"
DEMO_MARK = "demo data"


def _demo_user(username: str, group: str):
    """A staff user in `group` with no usable password (set one in the admin to log in)."""
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "email": f"{username}@adventive.com"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=group))
    return user


def _stripe_test_server() -> bool:
    return bool(settings.STRIPE_API_BASE) and not settings.STRIPE_LIVE_MODE


def _previous_month(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return _month_bounds(date.fromordinal(first.toordinal() - 1))


def _as_migrated(cohort: Cohort, signers: list, *, today: date) -> str:
    """Cohort 1's finished migration, loaded as data (its gates are not evaluated here)."""
    if cohort.status == Cohort.Status.MIGRATED:
        # The accounts step derives owners from the status; a migrated cohort is Stripe's.
        BillingAccount.objects.filter(cohort=cohort).exclude(
            billing_owner=BillingAccount.BillingOwner.STRIPE
        ).update(billing_owner=BillingAccount.BillingOwner.STRIPE)
        return "cohort 1 kept migrated"
    start, end = _previous_month(today)
    now = timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        for item in checklist.ITEMS:
            ChecklistResult.objects.create(
                cohort=cohort,
                round=cohort.round,
                phase=item.phase,
                item=item.key,
                method=item.method,
                passed=True,
                summary=f"{DEMO_MARK}: recorded as passed",
                evidence={"demo": True},
                note="" if item.automated else f"{DEMO_MARK}: confirmed",
                by=signers[0],
                at=now,
            )
        for user in signers:
            SignOff.objects.get_or_create(
                cohort=cohort, round=cohort.round, by=user, defaults={"signed_at": now}
            )
        owners_set(
            cohort=cohort, owner=BillingAccount.BillingOwner.STRIPE, by=signers[0], reason=DEMO_MARK
        )
        _clean_cycle_runs(cohort, start, end, now)
        cohort.cycle_start, cohort.cycle_end = start, end
        cohort.status = Cohort.Status.MIGRATED
        cohort.status_changed_at = now
        cohort.save(
            update_fields=["cycle_start", "cycle_end", "status", "status_changed_at", "updated_at"]
        )
        audit_record(
            cohort=cohort,
            action=AuditEntry.Action.TRANSITION,
            by=signers[0],
            subject=Cohort.Status.MIGRATED,
            before={"status": "parallel_run"},
            after={"status": "migrated"},
            message=f"{DEMO_MARK}: loaded as migrated after the {start:%B %Y} cycle",
        )
    return f"cohort 1 migrated ({start:%B %Y} cycle, signed by {', '.join(DEMO_OPERATORS)})"


def _clean_cycle_runs(cohort: Cohort, start: date, end: date, now) -> None:
    """The daily reconciliation runs of the migrated cycle, all clean (loaded as data, so the
    board shows the cycle the cohort was migrated on)."""
    from reconciliation.models import ReconciliationRun
    from reconciliation.periods import run_period

    members = BillingAccount.objects.filter(cohort=cohort).count()
    day = start
    while day <= end:
        period = run_period(day)
        ReconciliationRun.objects.get_or_create(
            run_date=day,
            scope_key=f"cohort:{cohort.number}",
            attempt=1,
            defaults={
                "service_month": period.service_month,
                "legacy_deadline": period.deadline,
                "cohort_number": cohort.number,
                "trigger": ReconciliationRun.Trigger.DEMO,
                "status": ReconciliationRun.Status.CLEAN,
                "accounts_checked": members,
                "accounts_clean": members,
                "members_in_scope": members,
                "requested_by": DEMO_MARK,
                "started_at": now,
                "finished_at": now,
            },
        )
        day += timedelta(days=1)


def _in_parallel_run(cohort: Cohort, by, *, today: date) -> None:
    """Cohort 2 under parallel run (the reconciliation demo may already have put it there)."""
    if cohort.status == Cohort.Status.PARALLEL_RUN:
        return
    start, end = _month_bounds(today)
    with transaction.atomic():
        owners_set(
            cohort=cohort, owner=BillingAccount.BillingOwner.PARALLEL, by=by, reason=DEMO_MARK
        )
        Cohort.objects.filter(pk=cohort.pk).update(
            status=Cohort.Status.PARALLEL_RUN, cycle_start=start, cycle_end=end
        )
    cohort.refresh_from_db()


@demo_step(80, "cohort board")
def cohort_board_demo(ctx: DemoContext) -> str:
    """The board as an operator finds it: cohort 1 migrated, cohort 2 under parallel run (its
    drift comes from the reconciliation demo), cohort 3 planned with its checks run and failing.
    Creates the two groups and demo staff users `jeffrey`, `patrick` (operators) and `auditor`
    without usable passwords. Idempotent."""
    groups_setup()
    signers = [_demo_user(name, OPERATOR_GROUP) for name in DEMO_OPERATORS]
    _demo_user(DEMO_AUDITOR, AUDITOR_GROUP)
    cohorts = {c.number: c for c in Cohort.objects.filter(number__in=(1, 2, 3))}
    if len(cohorts) < 3:
        return "skipped: cohorts 1-3 do not exist (run the cohorts step)"
    parts = [_as_migrated(cohorts[1], signers, today=ctx.today)]
    _in_parallel_run(cohorts[2], signers[0], today=ctx.today)
    drift = sources.open_drift(2).count()
    parts.append(f"cohort 2 in parallel run with {drift} open drift")
    cohort_3 = cohorts[3]
    if cohort_3.status != Cohort.Status.PLANNED:
        Cohort.objects.filter(pk=cohort_3.pk).update(status=Cohort.Status.PLANNED)
        cohort_3.refresh_from_db()
    unchecked = [c for c in (cohorts[2], cohort_3) if not c.results.filter(round=c.round).exists()]
    if _stripe_test_server():
        for cohort in unchecked:
            cohort_checks_run(cohort=cohort, by=signers[0], today=ctx.today)
    elif (
        cohort_3 in unchecked
    ):  # no Stripe to read: the one check that needs none while nothing is provisioned
        ctx_3 = checks.CheckContext(cohort_3, today=ctx.today)
        if not sources.subscriptions_of(ctx_3.member_ids):
            outcome = checks.run_check(checks.check_subscriptions, ctx_3)
            ChecklistResult.objects.create(
                cohort=cohort_3,
                round=cohort_3.round,
                phase=checklist.PRE,
                item="subscriptions",
                method=ChecklistResult.Method.AUTOMATED,
                passed=outcome.passed,
                summary=outcome.summary,
                evidence=outcome.evidence,
                by=signers[0],
                at=timezone.now(),
            )
    failing = [r.item for r in selectors.checklist_latest(cohort_3).values() if not r.passed]
    parts.append(f"cohort 3 planned, {len(failing)} failing check(s)")
    return "; ".join(parts)
