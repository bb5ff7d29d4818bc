"""The cohort board, a cohort's page, retirement readiness, and the operator's POST actions.

Pages need the view permission; every POST needs the operator permission (403 otherwise) and
calls one service, reporting its refusal or result with the admin's messages."""

import json
from datetime import UTC, date, datetime

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from billing_project.errors import BillingError
from metering.models import BillingAccount

from . import checklist, selectors, services, transitions
from .checklist_models import CohortNote, Rollback
from .gates import TransitionRefused
from .models import Cohort
from .permissions import can_operate, require_operate, require_view
from .sources import reconciliation_days

NEXT = {
    Cohort.Status.PLANNED: (Cohort.Status.READY, "Mark ready"),
    Cohort.Status.READY: (Cohort.Status.PARALLEL_RUN, "Start parallel run"),
    Cohort.Status.PARALLEL_RUN: (Cohort.Status.MIGRATED, "Mark migrated"),
    Cohort.Status.ROLLED_BACK: (Cohort.Status.PLANNED, "Re-plan"),
}


def _today() -> date:
    return datetime.now(UTC).date()


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "can_operate": can_operate(request.user),
        **extra,
    }


def board(request: HttpRequest) -> TemplateResponse:
    require_view(request.user)
    cards = selectors.board_cards(today=_today())
    for card in cards:
        card.next = NEXT.get(card.cohort.status)
    migrated = sum(1 for c in cards if c.cohort.status == Cohort.Status.MIGRATED)
    blocked = sum(1 for c in cards if c.headline.startswith("Blocked"))
    summary = f"{migrated} of {len(cards)} cohorts migrated · {blocked} blocked"
    return TemplateResponse(
        request,
        "admin/cohorts/board.html",
        _context(request, "Cohort migration board", cards=cards, today=_today(), summary=summary),
    )


def detail(request: HttpRequest, pk: int) -> TemplateResponse:
    require_view(request.user)
    cohort = get_object_or_404(selectors.cohort_list(), pk=pk)
    members = selectors.cohort_members(cohort)
    reviews = selectors.reviews(cohort)
    cycle = selectors.cycle_progress(cohort, today=_today())
    days = []
    if cohort.cycle_start and cohort.cycle_end:
        last = min(_today(), cohort.cycle_end)
        if last >= cohort.cycle_start:
            days = list(reconciliation_days(cohort.number, cohort.cycle_start, last).values())
    pre = selectors.checklist_rows(cohort, checklist.PRE)
    post = selectors.checklist_rows(cohort, checklist.POST)
    for row in pre + post:
        row.evidence_json = (
            json.dumps(row.result.evidence, indent=1, default=str) if row.result else ""
        )
    context = _context(
        request,
        f"Cohort {cohort.number} · {cohort.name}",
        cohort=cohort,
        members=[(m, reviews.get(m.pk)) for m in members],
        needs_reviews=cohort.pricing_model == Cohort.PricingModel.CUSTOM,
        pre=pre,
        post=post,
        manual_items=[i for i in checklist.ITEMS if not i.automated],
        cycle=cycle,
        days=days,
        signoffs=selectors.signers(cohort),
        notes=selectors.notes(cohort),
        audit=selectors.audit_list(cohort),
        rollbacks=list(cohort.rollbacks.select_related("by")),
        next=NEXT.get(cohort.status),
        can_rollback=cohort.status in (Cohort.Status.READY, Cohort.Status.PARALLEL_RUN),
        note_kinds=CohortNote.Kind.choices,
        rollback_actions=Rollback.Action.choices,
    )
    return TemplateResponse(request, "admin/cohorts/detail.html", context)


def retirement(request: HttpRequest) -> TemplateResponse:
    require_view(request.user)
    readiness = selectors.retirement_readiness()
    return TemplateResponse(
        request,
        "admin/cohorts/retirement.html",
        _context(request, "Legacy retirement readiness (B.8)", readiness=readiness),
    )


# --- operator actions (POST only) -------------------------------------------------------------


def _back(request: HttpRequest, cohort: Cohort) -> HttpResponseRedirect:
    target = request.POST.get("next")
    if target == "board":
        return HttpResponseRedirect(reverse("admin:cohorts_board"))
    return HttpResponseRedirect(reverse("admin:cohorts_detail", args=[cohort.pk]))


def _refusal(request: HttpRequest, error: BillingError) -> None:
    if isinstance(error, TransitionRefused):
        head = error.message.split(":", 1)[0]
        messages.error(
            request,
            format_html(
                "<strong>{}.</strong><ul class='refusal'>{}</ul>",
                head,
                format_html_join("", "<li>{}</li>", ((r,) for r in error.reasons)),
            ),
        )
    else:
        messages.error(request, error.message)


@require_POST
def act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_operate(request.user)
    cohort = get_object_or_404(Cohort, pk=pk)
    user = request.user
    post = request.POST
    try:
        if action == "run-checks":
            results = services.cohort_checks_run(cohort=cohort, by=user)
            failed = [r for r in results if not r.passed]
            text = f"Cohort {cohort.number}: {len(results)} checks run, {len(failed)} failing"
            (messages.warning if failed else messages.success)(request, text)
        elif action == "transition":
            target = post.get("to", "")
            if target not in transitions.TRANSITIONS:
                raise BillingError(f"unknown target state {target!r}", field="to")
            moved = transitions.TRANSITIONS[target](cohort=cohort, by=user)
            messages.success(
                request, f"Cohort {moved.number} is now {moved.get_status_display().lower()}."
            )
        elif action == "rollback":
            rollback = transitions.cohort_rollback(
                cohort=cohort,
                by=user,
                reason=post.get("reason", ""),
                action=post.get("rollback_action", Rollback.Action.PAUSE),
            )
            messages.success(
                request,
                f"Cohort {cohort.number} rolled back: {len(rollback.subscriptions)} "
                "subscription(s) stopped, members billed by legacy again.",
            )
        elif action == "item":
            result = services.checklist_item_record(
                cohort=cohort,
                key=post.get("item", ""),
                passed=post.get("passed") == "yes",
                note=post.get("note", ""),
                evidence=post.get("reference", ""),
                by=user,
            )
            messages.success(request, f"Recorded: {checklist.item_get(result.item).label}.")
        elif action == "note":
            services.cohort_note_add(
                cohort=cohort,
                text=post.get("text", ""),
                kind=post.get("kind", CohortNote.Kind.NOTE),
                by=user,
            )
            messages.success(request, "Note added.")
        elif action == "sign-off":
            _, created = services.cohort_sign_off(cohort=cohort, by=user, note=post.get("note", ""))
            messages.success(
                request, "Signed off." if created else "You had already signed off (counts once)."
            )
        elif action == "review":
            account_pk = post.get("account", "")
            if not account_pk.isdigit():
                raise BillingError(f"no account {account_pk[:40]!r}", field="account")
            account = get_object_or_404(BillingAccount, pk=account_pk)
            _, created = services.account_review_sign(
                cohort=cohort, account=account, note=post.get("note", ""), by=user
            )
            messages.success(
                request,
                f"Review of account {account.acct_id} signed."
                if created
                else f"Account {account.acct_id} was already reviewed.",
            )
        else:
            raise BillingError(f"unknown action {action!r}", field="action")
    except BillingError as error:
        _refusal(request, error)
    return _back(request, cohort)
