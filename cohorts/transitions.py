"""Cohort transitions: planned -> ready -> parallel_run -> migrated, rollback, re-planning.

Each transition evaluates its gate and refuses with every failing condition; a refusal is
audited too. Stripe is called only outside the cohort row lock (provisioning before the
move to parallel run, pausing or cancelling subscriptions during a rollback)."""

import calendar
from datetime import UTC, date, datetime

from django.db import transaction
from django.utils import timezone

from billing_project.datapoints import datapoint_record
from billing_project.errors import BillingError, ConflictError
from billing_project.stripe_api import StripeApiError
from metering.models import BillingAccount
from metering.provisioning import ProvisionError, cohort_anchor

from . import gateways, selectors, sources
from .audit import audit_record
from .checklist_models import AuditEntry, Rollback
from .gates import TransitionRefused, gate_problems
from .models import Cohort

S = Cohort.Status
Owner = BillingAccount.BillingOwner


def _today(today: date | None) -> date:
    return today or datetime.now(UTC).date()


def _refuse(cohort: Cohort, target: str, reasons: list[str], by) -> TransitionRefused:
    error = TransitionRefused(cohort, target, reasons)
    audit_record(
        cohort=cohort,
        action=AuditEntry.Action.TRANSITION_REFUSED,
        by=by,
        subject=target,
        before={"status": cohort.status},
        after={"status": cohort.status},
        message=error.message,
    )
    return error


def _check_operator(by) -> None:
    if by is None or not by.is_staff:
        raise BillingError("only a staff user can move a cohort", field="by", code="not_staff")


def owners_set(*, cohort: Cohort, owner: str, by, reason: str) -> int:
    """Set the billing owner of every member (inside the caller's transaction), one audit row
    per account that changes. Returns how many changed."""
    changed = 0
    for account in BillingAccount.objects.select_for_update().filter(cohort=cohort).order_by("pk"):
        if account.billing_owner == owner:
            continue
        before = account.billing_owner
        account.billing_owner = owner
        account.save(update_fields=["billing_owner", "updated_at"])
        audit_record(
            cohort=cohort,
            action=AuditEntry.Action.OWNER_CHANGE,
            by=by,
            subject=f"account {account.acct_id}",
            before={"billing_owner": before},
            after={"billing_owner": owner},
            message=reason,
        )
        changed += 1
    return changed


def _move(cohort: Cohort, target: str, by, *, message: str, **fields) -> Cohort:
    before = {"status": cohort.status, **{k: str(getattr(cohort, k)) for k in fields}}
    cohort.status = target
    cohort.status_changed_at = timezone.now()
    for name, value in fields.items():
        setattr(cohort, name, value)
    cohort.save(update_fields=["status", "status_changed_at", "updated_at", *fields])
    audit_record(
        cohort=cohort,
        action=AuditEntry.Action.TRANSITION,
        by=by,
        subject=target,
        before=before,
        after={"status": target, **{k: str(v) for k, v in fields.items()}},
        message=message,
    )
    datapoint_record(
        name="cohort_transition",
        dimensions={"cohort": cohort.number, "from": before["status"], "to": target},
    )
    return cohort


def _gated(cohort_pk: int, target: str, by, today: date) -> Cohort:
    """Lock the cohort and evaluate the gate under the lock; raise the refusal if it fails."""
    cohort = Cohort.objects.select_for_update().get(pk=cohort_pk)
    problems = gate_problems(cohort, target, today=today)
    if problems:
        raise TransitionRefused(cohort, target, problems)
    return cohort


def _run(cohort: Cohort, target: str, by, today: date, body) -> Cohort:
    try:
        with transaction.atomic():
            locked = _gated(cohort.pk, target, by, today)
            return body(locked)
    except TransitionRefused as refused:
        raise _refuse(cohort, target, refused.reasons, by) from None


def cohort_mark_ready(*, cohort: Cohort, by, today: date | None = None) -> Cohort:
    """planned -> ready: every pre-cohort item passes (and, for cohort 3, every review)."""
    _check_operator(by)
    return _run(
        cohort,
        S.READY,
        by,
        _today(today),
        lambda c: _move(c, S.READY, by, message="every pre-cohort item passes"),
    )


def _cycle(cohort: Cohort, cycle_start: date | None) -> tuple[datetime, date, date]:
    if cycle_start is not None:
        cohort.cycle_start = cycle_start
    try:
        anchor = cohort_anchor(cohort)
    except ProvisionError as exc:
        raise BillingError(str(exc), field="cycle_start") from exc
    start = anchor.date()
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return anchor, start, end


def cohort_start_parallel_run(
    *, cohort: Cohort, by, cycle_start: date | None = None, today: date | None = None
) -> Cohort:
    """ready -> parallel_run: provision the members' subscriptions (idempotent), then set the
    cycle and make the members `parallel` (legacy still bills)."""
    _check_operator(by)
    today = _today(today)
    cohort.refresh_from_db()
    problems = gate_problems(cohort, S.PARALLEL_RUN, today=today)
    if problems:
        raise _refuse(cohort, S.PARALLEL_RUN, problems, by)
    anchor, start, end = _cycle(cohort, cycle_start)
    try:
        report = sources.provision(cohort.number, anchor=anchor)
    except (ProvisionError, StripeApiError) as exc:
        raise _refuse(cohort, S.PARALLEL_RUN, [f"provisioning failed: {exc}"], by) from exc
    if report.errors:
        raise _refuse(cohort, S.PARALLEL_RUN, [f"provisioning: {e}" for e in report.errors], by)
    summary = (
        f"subscriptions: {len(report.created)} created, {len(report.adopted)} adopted, "
        f"{len(report.skipped)} already provisioned; cycle {start}..{end}"
    )

    def body(locked: Cohort) -> Cohort:
        owners_set(cohort=locked, owner=Owner.PARALLEL, by=by, reason="parallel run starts")
        return _move(locked, S.PARALLEL_RUN, by, message=summary, cycle_start=start, cycle_end=end)

    return _run(cohort, S.PARALLEL_RUN, by, today, body)


def cohort_mark_migrated(*, cohort: Cohort, by, today: date | None = None) -> Cohort:
    """parallel_run -> migrated: one full clean cycle, the post-cycle items and two distinct
    sign-offs; the members become Stripe-billed."""
    _check_operator(by)

    def body(locked: Cohort) -> Cohort:
        owners_set(cohort=locked, owner=Owner.STRIPE, by=by, reason="cohort migrated")
        signers = ", ".join(s.by.get_username() for s in selectors.signers(locked))
        return _move(locked, S.MIGRATED, by, message=f"one clean cycle; signed off by {signers}")

    return _run(cohort, S.MIGRATED, by, _today(today), body)


def cohort_replan(*, cohort: Cohort, by, today: date | None = None) -> Cohort:
    """rolled_back -> planned: a new round; earlier checks, reviews and sign-offs stop counting."""
    _check_operator(by)

    def body(locked: Cohort) -> Cohort:
        return _move(
            locked,
            S.PLANNED,
            by,
            message="re-planned after a rollback",
            round=locked.round + 1,
            cycle_start=None,
            cycle_end=None,
        )

    return _run(cohort, S.PLANNED, by, _today(today), body)


def cohort_rollback(
    *, cohort: Cohort, by, reason: str, action: str = Rollback.Action.PAUSE
) -> Rollback:
    """ready/parallel_run -> rolled_back: pause (or cancel) the members' subscriptions in
    Stripe, return the members to legacy billing for the next cycle, and record why.

    Safe to retry: the rollback row is claimed once per round and every Stripe call carries
    `rollback:<row>:<subscription>` as its idempotency key; the cohort moves only once every
    subscription is stopped."""
    _check_operator(by)
    reason = (reason or "").strip()
    if action not in Rollback.Action.values:
        raise BillingError(f"unknown rollback action {action!r}: pause or cancel", field="action")
    problems = [] if reason else ["a reason is required"]
    cohort.refresh_from_db()
    problems = gate_problems(cohort, S.ROLLED_BACK, today=_today(None)) + problems
    if problems:
        raise _refuse(cohort, S.ROLLED_BACK, problems, by)
    with transaction.atomic():
        rollback, _ = Rollback.objects.get_or_create(
            cohort=cohort,
            round=cohort.round,
            defaults={
                "from_status": cohort.status,
                "action": action,
                "reason": reason,
                "by": by,
                "at": timezone.now(),
            },
        )
    results = _stop_subscriptions(cohort, rollback)
    failed = [r for r in results if r["result"].startswith("error")]
    with transaction.atomic():
        Rollback.objects.filter(pk=rollback.pk).update(subscriptions=results)
        rollback.subscriptions = results
        if failed:
            audit_record(
                cohort=cohort,
                action=AuditEntry.Action.ROLLBACK,
                by=by,
                subject="incomplete",
                after={"rollback": rollback.pk, "failed": len(failed)},
                message="; ".join(f"{r['subscription']}: {r['result']}" for r in failed),
            )
        else:
            locked = Cohort.objects.select_for_update().get(pk=cohort.pk)
            if locked.status != S.ROLLED_BACK:
                owners_set(cohort=locked, owner=Owner.LEGACY, by=by, reason=f"rollback: {reason}")
                _move(locked, S.ROLLED_BACK, by, message=rollback.reason)
                audit_record(
                    cohort=locked,
                    action=AuditEntry.Action.ROLLBACK,
                    by=by,
                    subject=rollback.action,
                    after={"rollback": rollback.pk, "subscriptions": len(results)},
                    message=rollback.reason,
                )
            rollback.completed_at = timezone.now()
            Rollback.objects.filter(pk=rollback.pk).update(completed_at=rollback.completed_at)
    if failed:
        raise ConflictError(
            f"rollback of cohort {cohort.number} incomplete: {len(failed)} subscription(s) "
            "could not be stopped; retry the rollback ("
            + "; ".join(f"{r['subscription']}: {r['result']}" for r in failed)
            + ")",
            code="rollback_incomplete",
        )
    return rollback


def _stop_subscriptions(cohort: Cohort, rollback: Rollback) -> list[dict]:
    records = sources.subscriptions_of(a.pk for a in selectors.cohort_members(cohort))
    results = []
    for record in sorted(records.values(), key=lambda r: r.stripe_subscription_id):
        key = f"rollback:{rollback.pk}:{record.stripe_subscription_id}"
        try:
            if rollback.action == Rollback.Action.CANCEL:
                done = gateways.subscription_cancel(
                    record.stripe_subscription_id, idempotency_key=key
                )
                result = f"canceled ({done.get('status')})"
            else:
                done = gateways.subscription_pause(
                    record.stripe_subscription_id, idempotency_key=key
                )
                behavior = (done.get("pause_collection") or {}).get("behavior")
                result = f"paused ({behavior})"
        except StripeApiError as exc:
            result = f"error: {exc.message}"
        results.append(
            {
                "acct_id": record.account.acct_id,
                "subscription": record.stripe_subscription_id,
                "result": result,
            }
        )
    return results


TRANSITIONS = {
    S.READY: cohort_mark_ready,
    S.PARALLEL_RUN: cohort_start_parallel_run,
    S.MIGRATED: cohort_mark_migrated,
    S.PLANNED: cohort_replan,
}
