"""Writes to cohorts and memberships. Each service owns its transaction."""

from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from billing_project.datapoints import datapoint_record
from billing_project.errors import BillingError
from metering.models import BillingAccount

from . import checklist, checks, selectors
from .audit import audit_record
from .checklist_models import AccountReview, AuditEntry, ChecklistResult, CohortNote, SignOff
from .models import Cohort, CohortMembership


def cohort_assign_account(
    *,
    account: BillingAccount,
    cohort: Cohort | None,
    reason: str = "",
    by: AbstractBaseUser | None = None,
) -> CohortMembership | None:
    """Move an account into `cohort` (or out of any, with None), closing the open membership.

    Idempotent: assigning the cohort the account is already in changes nothing.
    """
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        current = CohortMembership.objects.filter(account=account, left_at__isnull=True).first()
        if current is not None and cohort is not None and current.cohort_id == cohort.pk:
            return current
        now = timezone.now()
        if current is not None:
            current.left_at = now
            current.save(update_fields=["left_at"])
        membership = None
        if cohort is not None:
            membership = CohortMembership.objects.create(
                cohort=cohort, account=account, joined_at=now, reason=reason, moved_by=by
            )
        account.cohort = cohort
        account.save(update_fields=["cohort", "updated_at"])
        datapoint_record(
            name="cohort_membership_changed",
            dimensions={
                "account_id": account.acct_id,
                "from_cohort": current.cohort.number if current else None,
                "to_cohort": cohort.number if cohort else None,
                "reason": reason,
            },
        )
    return membership


class ChecklistError(BillingError):
    """A checklist write was refused (unknown item, missing note, not a member...)."""


def _operator(by) -> None:
    if by is None or not by.is_staff:
        raise ChecklistError("only a staff user can do this", field="by", code="not_staff")


def cohort_checks_run(
    *, cohort: Cohort, by, phase: str | None = None, today: date | None = None
) -> list[ChecklistResult]:
    """Run the automated items of `phase` (the cohort's current phase by default) and store one
    result each, with the ids looked at. The checks only read; nothing outside changes."""
    _operator(by)
    phase = phase or (
        checklist.POST
        if cohort.status in (Cohort.Status.PARALLEL_RUN, Cohort.Status.MIGRATED)
        else checklist.PRE
    )
    ctx = checks.CheckContext(cohort, today=today)
    outcomes = [
        (item, checks.run_check(item.check, ctx))
        for item in checklist.items(phase)
        if item.automated
    ]
    results = []
    with transaction.atomic():
        before = selectors.checklist_latest(cohort)
        now = timezone.now()
        for item, outcome in outcomes:
            result = ChecklistResult.objects.create(
                cohort=cohort,
                round=cohort.round,
                phase=phase,
                item=item.key,
                method=item.method,
                passed=outcome.passed,
                summary=outcome.summary,
                evidence=outcome.evidence,
                by=by,
                at=now,
            )
            previous = before.get(item.key)
            audit_record(
                cohort=cohort,
                action=AuditEntry.Action.CHECK_RUN,
                by=by,
                subject=item.key,
                before={"passed": previous.passed, "result": previous.pk} if previous else {},
                after={"passed": outcome.passed, "result": result.pk},
                message=outcome.summary,
            )
            results.append(result)
    return results


def checklist_item_record(
    *, cohort: Cohort, key: str, passed: bool, note: str, by, evidence: str = ""
) -> ChecklistResult:
    """Record a manual item (a person confirms it, with a note saying how)."""
    _operator(by)
    try:
        item = checklist.item_get(key)
    except KeyError as exc:
        raise ChecklistError(str(exc.args[0]), field="item") from exc
    if item.automated:
        raise ChecklistError(
            f"{item.label} is verified by code: run the checks instead", field="item"
        )
    note = (note or "").strip()
    if not note:
        raise ChecklistError(f"{item.label}: a note is required", field="note")
    with transaction.atomic():
        previous = selectors.checklist_latest(cohort).get(key)
        result = ChecklistResult.objects.create(
            cohort=cohort,
            round=cohort.round,
            phase=item.phase,
            item=key,
            method=item.method,
            passed=passed,
            summary=f"{'confirmed' if passed else 'not confirmed'} by {by.get_username()}",
            evidence={"reference": evidence.strip()} if evidence.strip() else {},
            note=note,
            by=by,
            at=timezone.now(),
        )
        audit_record(
            cohort=cohort,
            action=AuditEntry.Action.MANUAL_ITEM,
            by=by,
            subject=key,
            before={"passed": previous.passed, "result": previous.pk} if previous else {},
            after={"passed": passed, "result": result.pk},
            message=note,
        )
    return result


def cohort_note_add(
    *, cohort: Cohort, text: str, by, kind: str = CohortNote.Kind.NOTE
) -> CohortNote:
    """A note on the cohort; `rollback_request` notes block the post-cycle checklist."""
    _operator(by)
    text = (text or "").strip()
    if not text:
        raise ChecklistError("the note is empty", field="text")
    if kind not in CohortNote.Kind.values:
        raise ChecklistError(f"unknown note kind {kind!r}", field="kind")
    with transaction.atomic():
        note = CohortNote.objects.create(
            cohort=cohort, round=cohort.round, kind=kind, text=text, by=by, at=timezone.now()
        )
        audit_record(
            cohort=cohort,
            action=AuditEntry.Action.NOTE,
            by=by,
            subject=kind,
            after={"note": note.pk, "kind": kind},
            message=text,
        )
    return note


def account_review_sign(
    *, cohort: Cohort, account: BillingAccount, note: str, by
) -> tuple[AccountReview, bool]:
    """Sign the manual review of one member (cohort 3). Idempotent: a signed review stays."""
    _operator(by)
    note = (note or "").strip()
    if not note:
        raise ChecklistError("a review needs a note saying what was reviewed", field="note")
    if account.cohort_id != cohort.pk:
        raise ChecklistError(
            f"account {account.acct_id} is not a member of cohort {cohort.number}", field="account"
        )
    with transaction.atomic():
        review, created = AccountReview.objects.get_or_create(
            cohort=cohort,
            round=cohort.round,
            account=account,
            defaults={"note": note, "by": by, "signed_at": timezone.now()},
        )
        if created:
            audit_record(
                cohort=cohort,
                action=AuditEntry.Action.REVIEW,
                by=by,
                subject=f"account {account.acct_id}",
                after={"review": review.pk},
                message=note,
            )
    return review, created


def cohort_sign_off(*, cohort: Cohort, by, note: str = "") -> tuple[SignOff, bool]:
    """A staff user's sign-off for migrating the cohort. The same user twice counts once."""
    _operator(by)
    if cohort.status != Cohort.Status.PARALLEL_RUN:
        raise ChecklistError(
            f"cohort {cohort.number} is {cohort.get_status_display().lower()}: sign-offs are "
            "for a cohort under parallel run",
            field="status",
        )
    with transaction.atomic():
        signoff, created = SignOff.objects.get_or_create(
            cohort=cohort,
            round=cohort.round,
            by=by,
            defaults={"note": (note or "").strip(), "signed_at": timezone.now()},
        )
        if created:
            count = SignOff.objects.filter(cohort=cohort, round=cohort.round).count()
            audit_record(
                cohort=cohort,
                action=AuditEntry.Action.SIGN_OFF,
                by=by,
                subject=by.get_username(),
                before={"signoffs": count - 1},
                after={"signoffs": count},
                message=signoff.note,
            )
    return signoff, created
