"""The gates: what must hold before a cohort moves, each failing condition named in words.

Gates only read our own database (stored check results, reconciliation runs, sign-offs), so
they can be evaluated inside the transition's transaction."""

from datetime import date

from billing_project.errors import ConflictError

from . import checklist, checks, selectors
from .models import Cohort

S = Cohort.Status
MIN_SIGNOFFS = 2
FROM = {
    S.READY: (S.PLANNED,),
    S.PARALLEL_RUN: (S.READY,),
    S.MIGRATED: (S.PARALLEL_RUN,),
    S.ROLLED_BACK: (S.READY, S.PARALLEL_RUN),
    S.PLANNED: (S.ROLLED_BACK,),
}


class TransitionRefused(ConflictError):
    """The gate does not hold; `reasons` lists every condition that fails."""

    def __init__(self, cohort: Cohort, target: str, reasons: list[str]):
        label = Cohort.Status(target).label
        super().__init__(
            f"Cohort {cohort.number} cannot move to {label}: " + "; ".join(reasons),
            field="status",
            code="gate_refused",
        )
        self.reasons = reasons


def _status_problem(cohort: Cohort, target: str) -> list[str]:
    allowed = FROM.get(target, ())
    if cohort.status in allowed:
        return []
    names = " or ".join(Cohort.Status(s).label.lower() for s in allowed) or "nothing"
    return [f"it is {cohort.get_status_display().lower()}; only {names} can move there"]


def _items_problems(cohort: Cohort, phase: str) -> list[str]:
    latest = selectors.checklist_latest(cohort)
    problems = []
    for item in checklist.items(phase):
        result = latest.get(item.key)
        if result is None:
            problems.append(f"{item.label}: not {'run' if item.automated else 'recorded'} yet")
        elif not result.passed:
            problems.append(f"{item.label}: failed ({result.summary})")
    return problems


def _review_problems(cohort: Cohort, members) -> list[str]:
    if cohort.pricing_model != Cohort.PricingModel.CUSTOM:
        return []
    signed = selectors.reviews(cohort)
    return [
        f"account {account.acct_id}: no signed manual review"
        for account in members
        if account.pk not in signed
    ]


def gate_problems(cohort: Cohort, target: str, *, today: date) -> list[str]:
    """Every reason the cohort cannot move to `target` now (empty: the gate holds)."""
    problems = _status_problem(cohort, target)
    if problems:
        return problems
    if target in (S.READY, S.PARALLEL_RUN):
        members = selectors.cohort_members(cohort)
        if not members:
            problems.append("the cohort has no members")
        problems += _items_problems(cohort, checklist.PRE)
        problems += _review_problems(cohort, members)
    elif target == S.MIGRATED:
        cycle, _ = checks.cycle_problems(cohort, today=today)
        problems += cycle
        problems += _items_problems(cohort, checklist.POST)
        distinct = {signoff.by_id for signoff in selectors.signers(cohort)}
        if len(distinct) < MIN_SIGNOFFS:
            problems.append(f"{len(distinct)} of {MIN_SIGNOFFS} sign-offs by different staff users")
    return problems
