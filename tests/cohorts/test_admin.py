"""The board, a cohort's page and retirement readiness: operators act, auditors only look."""

import pytest
from django.contrib import admin
from django.db import DatabaseError, transaction
from django.urls import reverse

from cohorts import checklist
from cohorts.checklist_models import AuditEntry, ChecklistResult, CohortNote, SignOff
from cohorts.models import Cohort
from tests import factories

from .conftest import (
    CYCLE_END,
    CYCLE_START,
    both_databases,
    clean_cycle,
    cohort_with_members,
    pass_items,
)
from .factories import DriftRecordFactory, ReconciliationRunFactory

# The board and a cohort's page count the cycle's days up to today.
pytestmark = pytest.mark.calendar

ACTIONS = ["run-checks", "transition", "rollback", "item", "note", "sign-off", "review"]


@pytest.fixture
def cohorts():
    planned = cohort_with_members(3, members=2, pricing_model=Cohort.PricingModel.CUSTOM)
    running = cohort_with_members(
        2, members=3, status="parallel_run", cycle_start=CYCLE_START, cycle_end=CYCLE_END
    )
    clean_cycle(running, skip=CYCLE_START.replace(day=12))
    ReconciliationRunFactory(run_date=CYCLE_START.replace(day=12), cohort_number=2, status="drift")
    DriftRecordFactory(account=running.accounts.first())
    factories.InvoiceDeliveryFactory(account=running.accounts.first(), state="failed")
    return planned, running


def _login(client, user):
    client.force_login(user)
    return client


@both_databases
def test_the_board_shows_one_card_per_cohort_with_its_numbers(client, operator, cohorts):
    _planned, running = cohorts
    pass_items(running, checklist.POST, skip="payment_once")
    response = _login(client, operator).get(reverse("admin:cohorts_board"))
    assert response.status_code == 200
    cards = {card.cohort.number: card for card in response.context["cards"]}
    assert set(cards) == {2, 3}
    card = cards[2]
    assert (card.members, card.open_drift, card.failed_deliveries) == (3, 1, 1)
    assert (card.items_passed, card.items_total) == (4, 5)
    assert card.cycle.days_total == 31 and card.cycle.days_clean == 30
    assert card.headline == "Blocked: 1 open drift"
    assert cards[3].headline == "12 checklist item(s) not run yet"
    html = response.content.decode()
    assert 'value="Run checks"' in html and 'value="Mark migrated"' in html


@both_databases
def test_the_board_runs_in_a_fixed_number_of_queries(
    client, operator, cohorts, django_assert_max_num_queries
):
    _login(client, operator)
    with django_assert_max_num_queries(40):
        client.get(reverse("admin:cohorts_board"))


@both_databases
def test_an_operator_runs_checks_and_reads_a_refusal(client, operator, cohorts):
    planned, _ = cohorts
    _login(client, operator)
    url = reverse("admin:cohorts_act", args=[planned.pk, "run-checks"])
    response = client.post(url, {"next": "board"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:cohorts_board")
    assert ChecklistResult.objects.filter(cohort=planned).count() == 8
    response = client.post(
        reverse("admin:cohorts_act", args=[planned.pk, "transition"]), {"to": "ready"}, follow=True
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Cohort 3 cannot move to Ready" in text
    assert "Acodei creates QuickBooks entries (manual): not recorded yet" in text
    assert "no signed manual review" in text
    planned.refresh_from_db()
    assert planned.status == "planned"


@both_databases
def test_an_operator_records_manual_items_notes_reviews_and_sign_offs(client, operator, cohorts):
    planned, running = cohorts
    _login(client, operator)
    act = lambda cohort, action, data: client.post(  # noqa: E731
        reverse("admin:cohorts_act", args=[cohort.pk, action]), data, follow=True
    )
    response = act(planned, "item", {"item": "rollback_plan", "passed": "yes", "note": ""})
    assert "Rollback plan confirmed (manual): a note is required" in str(
        next(iter(response.context["messages"]))
    )
    act(planned, "item", {"item": "rollback_plan", "passed": "yes", "note": "runbook v3 agreed"})
    result = ChecklistResult.objects.get(cohort=planned, item="rollback_plan")
    assert (result.passed, result.note, result.by, result.method) == (
        True,
        "runbook v3 agreed",
        operator,
        "manual",
    )
    response = act(planned, "item", {"item": "subscriptions", "passed": "yes", "note": "trust me"})
    assert "verified by code" in str(next(iter(response.context["messages"])))
    account = planned.accounts.first()
    act(planned, "review", {"account": account.pk, "note": "custom terms checked"})
    assert planned.reviews.get().by == operator
    act(running, "note", {"kind": "rollback_request", "text": "Acme asks to go back"})
    assert CohortNote.objects.get(cohort=running).kind == "rollback_request"
    act(running, "sign-off", {"note": "looks right"})
    act(running, "sign-off", {})
    assert SignOff.objects.filter(cohort=running).count() == 1
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"manual_item", "review", "note", "sign_off"} <= actions


@both_databases
def test_an_auditor_sees_every_page_without_action_buttons(client, auditor, cohorts):
    planned, running = cohorts
    _login(client, auditor)
    pages = [
        reverse("admin:cohorts_board"),
        reverse("admin:cohorts_detail", args=[planned.pk]),
        reverse("admin:cohorts_detail", args=[running.pk]),
        reverse("admin:cohorts_retirement"),
        reverse("admin:cohorts_cohort_change", args=[running.pk]),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "/act/" not in html, page
        for button in ("Run checks", "Mark ready", "Mark migrated", "Sign off", "Roll back"):
            assert f'value="{button}"' not in html, page
    change = client.get(reverse("admin:cohorts_cohort_change", args=[running.pk])).content.decode()
    assert 'name="_save"' not in change


@both_databases
def test_an_auditor_sees_every_admin_list_of_the_project(client, auditor):
    _login(client, auditor)
    ours = ("cohorts", "metering", "reconciliation", "invoices", "exports", "billing_project")
    for model, _model_admin in admin.site._registry.items():
        if model._meta.app_label not in ours:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        assert "addlink" not in response.content.decode(), url


@pytest.mark.parametrize("action", ACTIONS)
@both_databases
def test_an_auditor_can_change_nothing(client, auditor, cohorts, action):
    planned, running = cohorts
    _login(client, auditor)
    before = AuditEntry.objects.count(), ChecklistResult.objects.count()
    for cohort in (planned, running):
        response = client.post(
            reverse("admin:cohorts_act", args=[cohort.pk, action]),
            {"to": "ready", "reason": "x", "note": "x", "text": "x", "item": "rollback_plan"},
        )
        assert response.status_code == 403
    assert (AuditEntry.objects.count(), ChecklistResult.objects.count()) == before
    response = client.post(
        reverse("admin:cohorts_cohort_changelist"),
        {"action": "mark_ready", "_selected_action": [planned.pk]},
    )
    planned.refresh_from_db()
    assert planned.status == "planned"
    response = client.post(
        reverse("admin:cohorts_cohort_change", args=[planned.pk]), {"name": "renamed"}
    )
    assert response.status_code == 403


@both_databases
def test_changelist_actions_call_the_gated_services(client, operator, cohorts):
    planned, _ = cohorts
    _login(client, operator)
    response = client.post(
        reverse("admin:cohorts_cohort_changelist"),
        {"action": "mark_ready", "_selected_action": [planned.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Cohort 3 cannot move to Ready" in text


@both_databases
def test_retirement_page_lists_what_is_missing_and_changes_nothing(client, auditor, cohorts):
    _login(client, auditor)
    before = (Cohort.objects.values_list("status", flat=True), AuditEntry.objects.count())
    response = client.get(reverse("admin:cohorts_retirement"))
    readiness = response.context["readiness"]
    assert not readiness.ready
    assert "cohort 2 (Cohort 2) is parallel run, not migrated" in readiness.missing
    assert "cohort 3 (Cohort 3) is planned, not migrated" in readiness.missing
    assert "Not ready" in response.content.decode()
    assert (list(before[0]), before[1]) == (
        list(Cohort.objects.values_list("status", flat=True)),
        AuditEntry.objects.count(),
    )


@both_databases
def test_retirement_is_ready_only_when_everything_is_migrated_and_exported():
    from cohorts.selectors import retirement_readiness

    cohort = cohort_with_members(1, members=1, status="migrated")
    cohort.accounts.update(billing_owner="stripe")
    readiness = retirement_readiness()
    assert readiness.ready, readiness.missing
    factories.LegacyInvoiceFactory(account=factories.LegacyAccountFactory(acct_id=4242))
    readiness = retirement_readiness()
    assert not readiness.ready
    assert any("history" in m and "not exported" in m for m in readiness.missing)


@both_databases
def test_audit_entries_cannot_be_changed_or_deleted(operator):
    cohort = cohort_with_members(1)
    entry = AuditEntry.objects.create(
        cohort=cohort, action="note", by=operator, at=cohort.created_at
    )
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(message="rewritten")
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).message == ""
