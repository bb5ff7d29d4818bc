"""Each gate refuses, naming the condition, when any one condition fails; passes when all hold."""

import pytest

from cohorts import checklist
from cohorts.checklist_models import AuditEntry
from cohorts.gates import TransitionRefused
from cohorts.models import Cohort
from cohorts.services import account_review_sign, cohort_sign_off
from cohorts.transitions import cohort_mark_migrated, cohort_mark_ready
from metering.models import BillingAccount
from tests import factories

from .conftest import (
    AFTER_CYCLE,
    CYCLE_END,
    CYCLE_START,
    clean_cycle,
    cohort_with_members,
    pass_items,
    sign,
)
from .factories import ChecklistResultFactory, ReconciliationRunFactory

PRE_KEYS = [item.key for item in checklist.items(checklist.PRE)]
POST_KEYS = [item.key for item in checklist.items(checklist.POST)]


def _refusal(move, **kwargs) -> str:
    with pytest.raises(TransitionRefused) as refused:
        move(**kwargs)
    return refused.value.message


# --- planned -> ready ---------------------------------------------------------------------


@pytest.mark.django_db
def test_ready_passes_when_every_pre_item_passes(operator):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE)
    moved = cohort_mark_ready(cohort=cohort, by=operator)
    assert moved.status == "ready"
    entry = AuditEntry.objects.get(cohort=cohort, action="transition")
    assert (entry.before["status"], entry.after["status"], entry.by) == (
        "planned",
        "ready",
        operator,
    )


@pytest.mark.parametrize("key", PRE_KEYS)
@pytest.mark.django_db
def test_ready_is_refused_when_one_pre_item_fails(operator, key):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE, skip=key)
    ChecklistResultFactory(cohort=cohort, item=key, passed=False, summary="account 7: broken")
    message = _refusal(cohort_mark_ready, cohort=cohort, by=operator)
    label = checklist.item_get(key).label
    assert f"{label}: failed (account 7: broken)" in message
    assert message.count("failed (") == 1
    cohort.refresh_from_db()
    assert cohort.status == "planned"
    refused = AuditEntry.objects.get(cohort=cohort, action="transition_refused")
    assert label in refused.message


@pytest.mark.django_db
def test_ready_is_refused_while_an_item_has_never_run(operator):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE, skip="history_export")
    message = _refusal(cohort_mark_ready, cohort=cohort, by=operator)
    assert "History export covers every member: not run yet" in message


@pytest.mark.django_db
def test_the_latest_result_of_an_item_counts(operator):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE)
    later = ChecklistResultFactory._meta.model.objects.order_by("-at").first().at
    ChecklistResultFactory(
        cohort=cohort,
        item="flat_price",
        passed=False,
        summary="drifted",
        at=later.replace(year=2027),
    )
    assert "Flat price = legacy sub_rate: failed (drifted)" in _refusal(
        cohort_mark_ready, cohort=cohort, by=operator
    )


@pytest.mark.django_db
def test_ready_is_refused_without_members(operator):
    cohort = cohort_with_members(members=0)
    pass_items(cohort, checklist.PRE)
    assert "the cohort has no members" in _refusal(cohort_mark_ready, cohort=cohort, by=operator)


@pytest.mark.django_db
def test_ready_is_refused_from_any_state_but_planned(operator):
    cohort = cohort_with_members(status="parallel_run")
    pass_items(cohort, checklist.PRE)
    message = _refusal(cohort_mark_ready, cohort=cohort, by=operator)
    assert "it is parallel run; only planned can move there" in message


@pytest.mark.django_db
def test_results_of_an_earlier_round_do_not_count(operator):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE)
    Cohort.objects.filter(pk=cohort.pk).update(round=2)
    cohort.refresh_from_db()
    message = _refusal(cohort_mark_ready, cohort=cohort, by=operator)
    assert message.count("not run yet") + message.count("not recorded yet") == len(PRE_KEYS)


@pytest.mark.django_db
def test_cohort_3_needs_a_signed_review_per_account(operator):
    cohort = cohort_with_members(3, members=2, pricing_model=Cohort.PricingModel.CUSTOM)
    pass_items(cohort, checklist.PRE)
    first, second = BillingAccount.objects.filter(cohort=cohort).order_by("acct_id")
    account_review_sign(cohort=cohort, account=first, note="custom rate card checked", by=operator)
    message = _refusal(cohort_mark_ready, cohort=cohort, by=operator)
    assert f"account {second.acct_id}: no signed manual review" in message
    assert f"account {first.acct_id}" not in message
    account_review_sign(cohort=cohort, account=second, note="managed jobs checked", by=operator)
    assert cohort_mark_ready(cohort=cohort, by=operator).status == "ready"


@pytest.mark.django_db
def test_only_staff_users_move_cohorts(operator):
    from django.contrib.auth import get_user_model

    from billing_project.errors import BillingError

    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE)
    outsider = get_user_model().objects.create_user("outsider", is_staff=False)
    with pytest.raises(BillingError, match="only a staff user"):
        cohort_mark_ready(cohort=cohort, by=outsider)


# --- parallel_run -> migrated -------------------------------------------------------------


def _in_parallel_run(**fields) -> Cohort:
    cohort = cohort_with_members(
        status="parallel_run", cycle_start=CYCLE_START, cycle_end=CYCLE_END, **fields
    )
    BillingAccount.objects.filter(cohort=cohort).update(billing_owner="parallel")
    return cohort


@pytest.fixture
def migratable(operator, operator2):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort)
    sign(cohort, operator, operator2)
    return cohort


@pytest.mark.django_db
def test_migrated_passes_when_every_condition_holds_and_members_become_stripe(migratable, operator):
    moved = cohort_mark_migrated(cohort=migratable, by=operator, today=AFTER_CYCLE)
    assert moved.status == "migrated"
    owners = set(
        BillingAccount.objects.filter(cohort=migratable).values_list("billing_owner", flat=True)
    )
    assert owners == {"stripe"}
    changes = AuditEntry.objects.filter(cohort=migratable, action="owner_change")
    assert changes.count() == 2
    assert {(c.before["billing_owner"], c.after["billing_owner"]) for c in changes} == {
        ("parallel", "stripe")
    }


@pytest.mark.parametrize("key", POST_KEYS)
@pytest.mark.django_db
def test_migrated_is_refused_when_one_post_item_fails(operator, operator2, key):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST, skip=key)
    ChecklistResultFactory(cohort=cohort, item=key, passed=False, summary="not yet")
    clean_cycle(cohort)
    sign(cohort, operator, operator2)
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert f"{checklist.item_get(key).label}: failed (not yet)" in message
    assert set(
        BillingAccount.objects.filter(cohort=cohort).values_list("billing_owner", flat=True)
    ) == {"parallel"}


@pytest.mark.django_db
def test_a_drift_day_anywhere_in_the_cycle_blocks_migrated(operator, operator2):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort, skip=CYCLE_END.replace(day=17))
    ReconciliationRunFactory(run_date=CYCLE_END.replace(day=17), status="drift")
    sign(cohort, operator, operator2)
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert "drift on 2026-01-17" in message


@pytest.mark.django_db
def test_a_missing_day_blocks_migrated(operator, operator2):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort, skip=CYCLE_START)
    sign(cohort, operator, operator2)
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert "no reconciliation run on 2026-01-01" in message


@pytest.mark.parametrize("status", ["pending", "error", "running"])
@pytest.mark.django_db
def test_a_day_that_is_not_clean_blocks_migrated(operator, operator2, status):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort, skip=CYCLE_END)
    ReconciliationRunFactory(run_date=CYCLE_END, status=status)
    sign(cohort, operator, operator2)
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert "2026-01-31" in message


@pytest.mark.django_db
def test_a_backfilled_day_counts_and_a_clean_re_run_replaces_a_drift(migratable, operator):
    from reconciliation.models import ReconciliationRun

    day = CYCLE_START.replace(day=9)
    ReconciliationRun.objects.filter(run_date=day).delete()
    message = _refusal(cohort_mark_migrated, cohort=migratable, by=operator, today=AFTER_CYCLE)
    assert "no reconciliation run on 2026-01-09" in message
    ReconciliationRunFactory(run_date=day, status="drift", trigger="schedule")
    ReconciliationRunFactory(run_date=day, attempt=2, trigger="command", forced=True)
    assert (
        cohort_mark_migrated(cohort=migratable, by=operator, today=AFTER_CYCLE).status == "migrated"
    )


@pytest.mark.django_db
def test_a_day_covered_by_an_all_scope_run_is_judged_on_this_cohorts_results(migratable, operator):
    from reconciliation.models import ReconciliationRun

    day = CYCLE_START.replace(day=20)
    ReconciliationRun.objects.filter(run_date=day).delete()
    member = BillingAccount.objects.filter(cohort=migratable).first()
    other = factories.CohortMembershipFactory(cohort=factories.CohortFactory(number=2)).account
    from .factories import ReconciliationResultFactory

    wide = ReconciliationRunFactory(
        run_date=day, scope_key="all", cohort_number=None, status="drift"
    )
    ReconciliationResultFactory(run=wide, account=member, cohort_number=1)
    ReconciliationResultFactory(run=wide, account=other, cohort_number=2, status="drift")
    assert (
        cohort_mark_migrated(cohort=migratable, by=operator, today=AFTER_CYCLE).status == "migrated"
    )


@pytest.mark.django_db
def test_migrated_is_refused_before_the_cycle_is_over(migratable, operator):
    message = _refusal(cohort_mark_migrated, cohort=migratable, by=operator, today=CYCLE_END)
    assert "the cycle runs until 2026-01-31: it is not over" in message


@pytest.mark.django_db
def test_migrated_is_refused_without_a_cycle(operator, operator2):
    cohort = _in_parallel_run()
    Cohort.objects.filter(pk=cohort.pk).update(cycle_start=None, cycle_end=None)
    cohort.refresh_from_db()
    pass_items(cohort, checklist.POST)
    sign(cohort, operator, operator2)
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert "the cohort has no billing cycle under parallel run" in message


@pytest.mark.django_db
def test_migrated_needs_two_sign_offs_by_two_different_users(operator, operator2):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort)
    assert "0 of 2 sign-offs" in _refusal(
        cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE
    )
    _, first = cohort_sign_off(cohort=cohort, by=operator)
    _, again = cohort_sign_off(cohort=cohort, by=operator, note="signing again")
    assert (first, again) == (True, False)
    assert "1 of 2 sign-offs by different staff users" in _refusal(
        cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE
    )
    cohort_sign_off(cohort=cohort, by=operator2)
    assert cohort_mark_migrated(cohort=cohort, by=operator2, today=AFTER_CYCLE).status == "migrated"
    assert AuditEntry.objects.filter(cohort=cohort, action="sign_off").count() == 2


@pytest.mark.django_db
def test_migrated_is_refused_from_any_state_but_parallel_run(operator, operator2):
    cohort = _in_parallel_run()
    pass_items(cohort, checklist.POST)
    clean_cycle(cohort)
    sign(cohort, operator, operator2)
    Cohort.objects.filter(pk=cohort.pk).update(status="ready")
    cohort.refresh_from_db()
    message = _refusal(cohort_mark_migrated, cohort=cohort, by=operator, today=AFTER_CYCLE)
    assert "it is ready; only parallel run can move there" in message
