"""Parallel run provisions on the Stripe-compatible server; rollback pauses or cancels there."""

from datetime import UTC, date, datetime

import pytest
import stripe as stripe_lib

from billing_project.errors import BillingError, ConflictError
from cohorts import checklist
from cohorts.checklist_models import AuditEntry, Rollback
from cohorts.gates import TransitionRefused
from cohorts.models import Cohort
from cohorts.transitions import cohort_replan, cohort_rollback, cohort_start_parallel_run
from metering.catalog_import import catalog_import
from metering.models import BillingAccount, SubscriptionRecord
from tests import factories

from .conftest import both_databases, pass_items, plan_member

# The gates judge a move as of today.
pytestmark = pytest.mark.calendar

JAN_1 = date(2026, 1, 1)
LADDER = [(1_000_000, "2.50"), (None, "1.10")]


@pytest.fixture
def clock(stripe):
    frozen = int(datetime(2025, 12, 20, tzinfo=UTC).timestamp())
    return stripe_lib.test_helpers.TestClock.create(frozen_time=frozen).id


@pytest.fixture
def ready_cohort(stripe, clock):
    cohort = factories.CohortFactory(number=2, ready=True, pricing_model=2)
    plan_member(stripe, cohort, 801, clock=clock, sub_rates=("249.00",), tiers={"ST": LADDER})
    plan_member(stripe, cohort, 802, clock=clock, sub_rates=("149.00",))
    report = catalog_import(cohort=2)
    assert not report.errors
    pass_items(cohort, checklist.PRE)
    return cohort


def _owners(cohort) -> set[str]:
    return set(BillingAccount.objects.filter(cohort=cohort).values_list("billing_owner", flat=True))


@both_databases
def test_parallel_run_provisions_subscriptions_and_makes_members_parallel(
    stripe, ready_cohort, operator
):
    moved = cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    assert moved.status == "parallel_run"
    assert (moved.cycle_start, moved.cycle_end) == (JAN_1, date(2026, 1, 31))
    assert _owners(ready_cohort) == {"parallel"}
    subscriptions = stripe.store.all("subscription")
    assert sorted(s["metadata"]["acct_id"] for s in subscriptions) == ["801", "802"]
    assert {s["billing_cycle_anchor"] for s in subscriptions} == {
        int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    }
    assert SubscriptionRecord.objects.filter(account__cohort=ready_cohort).count() == 2
    transition = AuditEntry.objects.get(cohort=ready_cohort, action="transition")
    assert "2 created" in transition.message
    assert AuditEntry.objects.filter(cohort=ready_cohort, action="owner_change").count() == 2


@both_databases
def test_parallel_run_is_refused_when_provisioning_fails_and_nothing_moves(
    stripe, ready_cohort, operator
):
    stranger = factories.BillingAccountFactory(acct_id=809, cohort=ready_cohort)  # no legacy plan
    factories.CohortMembershipFactory(cohort=ready_cohort, account=stranger)
    with pytest.raises(TransitionRefused) as refused:
        cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    assert "provisioning: " in refused.value.message and "809" in refused.value.message
    ready_cohort.refresh_from_db()
    assert ready_cohort.status == "ready" and ready_cohort.cycle_start is None
    assert _owners(ready_cohort) == {"legacy"}


@both_databases
def test_parallel_run_is_refused_when_a_pre_item_fails_since(stripe, ready_cohort, operator):
    from .factories import ChecklistResultFactory

    ChecklistResultFactory(
        cohort=ready_cohort, item="rollback_plan", passed=False, at=datetime(2027, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(TransitionRefused, match="Rollback plan confirmed"):
        cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    assert stripe.store.all("subscription") == []


@both_databases
def test_parallel_run_is_refused_unless_ready(stripe, ready_cohort, operator):
    Cohort.objects.filter(pk=ready_cohort.pk).update(status="planned")
    with pytest.raises(TransitionRefused, match="it is planned; only ready can move there"):
        cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)


@both_databases
def test_rollback_from_parallel_run_pauses_the_subscriptions_and_resets_owners(
    stripe, ready_cohort, operator
):
    cohort = cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    rollback = cohort_rollback(cohort=cohort, by=operator, reason="drift on account 801")
    cohort.refresh_from_db()
    assert cohort.status == "rolled_back"
    assert _owners(cohort) == {"legacy"}
    for subscription in stripe.store.all("subscription"):
        assert subscription["pause_collection"]["behavior"] == "void"
        assert subscription["status"] == "active"
    assert rollback.completed_at is not None
    assert rollback.reason == "drift on account 801" and rollback.from_status == "parallel_run"
    assert sorted(r["acct_id"] for r in rollback.subscriptions) == [801, 802]
    assert {r["result"] for r in rollback.subscriptions} == {"paused (void)"}
    pauses = [
        r
        for r in stripe.store.requests
        if r["method"] == "POST" and "/v1/subscriptions/" in r["path"]
    ]
    assert len(pauses) == 2
    entry = AuditEntry.objects.get(cohort=cohort, action="rollback")
    assert entry.message == "drift on account 801" and entry.by == operator
    owner_changes = AuditEntry.objects.filter(cohort=cohort, action="owner_change")
    assert {(e.before["billing_owner"], e.after["billing_owner"]) for e in owner_changes} >= {
        ("parallel", "legacy")
    }


@both_databases
def test_rollback_can_cancel_instead(stripe, ready_cohort, operator):
    cohort = cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    cohort_rollback(cohort=cohort, by=operator, reason="customer objects", action="cancel")
    assert {s["status"] for s in stripe.store.all("subscription")} == {"canceled"}


@both_databases
def test_a_rollback_stripe_refuses_stays_open_and_a_retry_finishes_it(
    stripe, ready_cohort, operator
):
    cohort = cohort_start_parallel_run(cohort=ready_cohort, by=operator, cycle_start=JAN_1)
    stripe.fail_next(10, status=400, path="/v1/subscriptions/")
    with pytest.raises(ConflictError, match="rollback of cohort 2 incomplete: 2 subscription"):
        cohort_rollback(cohort=cohort, by=operator, reason="drift")
    cohort.refresh_from_db()
    assert cohort.status == "parallel_run" and _owners(cohort) == {"parallel"}
    assert Rollback.objects.get(cohort=cohort).completed_at is None
    with stripe._faults_lock:
        stripe._faults.clear()
    cohort_rollback(cohort=cohort, by=operator, reason="drift")
    cohort.refresh_from_db()
    assert cohort.status == "rolled_back" and Rollback.objects.count() == 1


@pytest.mark.django_db
def test_rollback_needs_a_reason_and_a_cohort_that_is_ready_or_in_parallel_run(operator):
    cohort = factories.CohortFactory(number=5)
    with pytest.raises(TransitionRefused) as refused:
        cohort_rollback(cohort=cohort, by=operator, reason="  ")
    assert "it is planned; only ready or parallel run can move there" in refused.value.message
    assert "a reason is required" in refused.value.message
    Cohort.objects.filter(pk=cohort.pk).update(status="ready")
    with pytest.raises(TransitionRefused, match="a reason is required"):
        cohort_rollback(cohort=cohort, by=operator, reason="")
    with pytest.raises(BillingError, match="unknown rollback action"):
        cohort_rollback(cohort=cohort, by=operator, reason="x", action="delete")


@pytest.mark.django_db
def test_a_ready_cohort_without_subscriptions_rolls_back_and_can_be_re_planned(operator):
    cohort = factories.CohortFactory(number=5, ready=True)
    factories.CohortMembershipFactory(cohort=cohort)
    cohort_rollback(cohort=cohort, by=operator, reason="plan changed")
    cohort.refresh_from_db()
    assert cohort.status == "rolled_back"
    replanned = cohort_replan(cohort=cohort, by=operator)
    assert (replanned.status, replanned.round) == ("planned", 2)
