"""Runs over time: once per day unless forced, the command, re-detection and the follow-up of
drift records, and a query count that does not grow with the number of accounts."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from billing_project.classifier import LineKind
from billing_project.errors import BillingError, ConflictError
from billing_project.models import BillingEvent
from reconciliation.drift import drift_record_note, drift_record_transition
from reconciliation.legacy import LEGACY_ALIAS
from reconciliation.models import DriftRecord, ReconciliationRun
from reconciliation.services import AlreadyRan, reconcile_run

from .conftest import (
    AFTER_DEADLINE,
    BEFORE_DEADLINE,
    feb_lines,
    legacy_invoice,
    member,
    stripe_invoice,
    ts,
)

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

MAR_1 = ts(2026, 3, 1, 2)


@pytest.fixture
def drifting(server, cohort):
    account = member(cohort, 5301)
    legacy_invoice(5301, {LineKind.FLAT: 49_900, LineKind.ST: 4_000})
    stripe_invoice(server, account, feb_lines(49_900, 4_001), created=MAR_1)
    return account


def test_a_second_run_for_the_same_date_needs_force_and_is_a_new_attempt(drifting):
    first = reconcile_run(run_date=AFTER_DEADLINE).run
    with pytest.raises(AlreadyRan):
        reconcile_run(run_date=AFTER_DEADLINE)
    second = reconcile_run(run_date=AFTER_DEADLINE, force=True).run

    assert (first.attempt, second.attempt) == (1, 2)
    assert second.forced and second.status == ReconciliationRun.Status.DRIFT
    assert ReconciliationRun.objects.count() == 2
    # Another scope (one cohort) is its own run for the same date.
    assert reconcile_run(run_date=AFTER_DEADLINE, cohort_number=2).run.attempt == 1


def test_redetection_updates_the_one_record_and_its_history(drifting, django_user_model):
    reconcile_run(run_date=AFTER_DEADLINE)
    record = DriftRecord.objects.get()
    user = django_user_model.objects.create_user("patrick")
    drift_record_transition(record_id=record.pk, to_status="investigating", by=user)
    drift_record_transition(
        record_id=record.pk, to_status="resolved", note="tier rounding fixed", by=user
    )

    reconcile_run(run_date=date_after(AFTER_DEADLINE, 1))

    record.refresh_from_db()
    assert DriftRecord.objects.count() == 1
    assert record.detections == 2
    assert record.status == DriftRecord.Status.OPEN  # resolved, yet still there: reopened
    history = [(e.action, e.from_status, e.to_status, e.by_name) for e in record.events.all()]
    assert history == [
        ("detected", "", "open", ""),
        ("status_changed", "open", "investigating", "patrick"),
        ("status_changed", "investigating", "resolved", "patrick"),
        ("redetected", "resolved", "open", ""),
    ]


def test_an_explained_record_stays_explained_while_the_delta_is_the_same(drifting):
    reconcile_run(run_date=AFTER_DEADLINE)
    record = DriftRecord.objects.get()
    drift_record_transition(record_id=record.pk, to_status="explained", note="legacy rounding")

    reconcile_run(run_date=date_after(AFTER_DEADLINE, 1))

    record.refresh_from_db()
    assert record.status == DriftRecord.Status.EXPLAINED
    assert record.note == "legacy rounding"
    assert record.events.last().action == "redetected"


def test_status_changes_are_checked(drifting):
    reconcile_run(run_date=AFTER_DEADLINE)
    record = DriftRecord.objects.get()
    with pytest.raises(BillingError) as missing_note:
        drift_record_transition(record_id=record.pk, to_status="resolved")
    assert missing_note.value.field == "note"
    with pytest.raises(BillingError):
        drift_record_transition(record_id=record.pk, to_status="deleted")
    drift_record_transition(record_id=record.pk, to_status="explained", note="known")
    with pytest.raises(ConflictError):
        drift_record_transition(record_id=record.pk, to_status="investigating")
    drift_record_note(record_id=record.pk, note="confirmed with finance")
    record.refresh_from_db()
    assert record.note == "confirmed with finance"
    assert record.status == "explained"


def test_drift_records_are_never_deleted(drifting):
    from django.db.models import ProtectedError

    reconcile_run(run_date=AFTER_DEADLINE)
    with pytest.raises(ProtectedError):
        DriftRecord.objects.get().account.delete()


def date_after(day, days):
    from datetime import timedelta

    return day + timedelta(days=days)


def test_command_prints_progress_and_a_summary_and_refuses_a_second_run(drifting):
    out, err = StringIO(), StringIO()
    call_command("reconcile", "--date", "2026-03-15", stdout=out, stderr=err)
    assert "DRIFT" in out.getvalue()
    assert "5301" in out.getvalue() and "+1" in out.getvalue()
    assert "invoices read" in err.getvalue()
    with pytest.raises(CommandError, match="--force"):
        call_command("reconcile", "--date", "2026-03-15", stdout=StringIO(), stderr=StringIO())
    call_command("reconcile", "--date", "2026-03-15", "--force", stdout=out, stderr=StringIO())
    run = ReconciliationRun.objects.order_by("attempt").last()
    assert (run.attempt, run.trigger) == (2, "command")


def test_command_dry_run_records_nothing(drifting):
    out = StringIO()
    call_command("reconcile", "--date", "2026-03-15", "--dry-run", stdout=out, stderr=StringIO())
    assert "dry run, nothing recorded" in out.getvalue()
    assert not ReconciliationRun.objects.exists()
    assert not DriftRecord.objects.exists()
    assert not BillingEvent.objects.exists()


def test_command_rejects_bad_input_and_fails_on_error(server, cohort):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("reconcile", "--date", "15/03/2026", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="cohort"):
        call_command(
            "reconcile",
            "--date",
            "2026-03-15",
            "--cohort",
            "two",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    with pytest.raises(CommandError, match="no cohort 9"):
        call_command(
            "reconcile",
            "--date",
            "2026-03-15",
            "--cohort",
            "9",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    member(cohort, 5302)
    server.fail_next(10, status=500, path="/v1/invoices")
    with pytest.raises(CommandError, match="Stripe could not be read"):
        call_command("reconcile", "--date", "2026-03-15", stdout=StringIO(), stderr=StringIO())


def _accounts(server, cohort, first: int, count: int) -> None:
    for acct_id in range(first, first + count):
        account = member(cohort, acct_id)
        legacy_invoice(acct_id, {LineKind.FLAT: 10_000, LineKind.ST: 1_000})
        stripe_invoice(server, account, feb_lines(10_000, 1_000), created=MAR_1)


def _queries(run_date) -> tuple[int, int]:
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections[LEGACY_ALIAS]) as legacy,
    ):
        run = reconcile_run(run_date=run_date).run
    assert run.status in ("clean", "drift")
    return len(default.captured_queries), len(legacy.captured_queries)


def test_query_count_does_not_grow_with_the_number_of_accounts(
    server, cohort, django_assert_max_num_queries
):
    _accounts(server, cohort, 6000, 3)
    few = _queries(AFTER_DEADLINE)
    _accounts(server, cohort, 7000, 27)
    with django_assert_max_num_queries(25):
        many = _queries(date_after(AFTER_DEADLINE, 1))
    assert few == many
    assert many[1] == 2  # legacy: invoices, then lines per kind


def test_pending_run_then_final_run(server, cohort):
    member(cohort, 5303)
    legacy_invoice(5303, {LineKind.FLAT: 100})
    assert reconcile_run(run_date=BEFORE_DEADLINE).run.status == "pending"
    assert reconcile_run(run_date=AFTER_DEADLINE).run.status == "drift"


# Instants where "today" and "tomorrow" are in different months or years (UTC).
FUTURE_EDGES = {
    "new-years-eve-2350": datetime(2026, 12, 31, 23, 50, tzinfo=UTC),
    "new-year-0030": datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
    "last-of-month-2350": datetime(2027, 4, 30, 23, 50, tzinfo=UTC),
}


@pytest.mark.parametrize("instant", list(FUTURE_EDGES.values()), ids=list(FUTURE_EDGES))
def test_a_day_that_has_not_begun_is_refused_and_nothing_is_recorded(server, cohort, instant):
    member(cohort, 5310)
    with time_machine.travel(instant, tick=False):
        today = instant.date()
        with pytest.raises(BillingError, match="in the future") as refused:
            reconcile_run(run_date=today + timedelta(days=1))
        assert refused.value.field == "date"
        assert f"today is {today} UTC" in refused.value.message
        assert not ReconciliationRun.objects.exists()
        # Today itself has begun: its run is recorded (pending, its month not invoiced yet).
        assert reconcile_run(run_date=today).run.run_date == today


def test_command_refuses_a_future_date_with_a_clear_message(server, cohort):
    refused = pytest.raises(
        CommandError, match=r"2099-01-05 is in the future \(today is 2026-12-04"
    )
    with time_machine.travel(datetime(2026, 12, 4, 18, 0, tzinfo=UTC), tick=False), refused:
        call_command("reconcile", "--date", "2099-01-05", stdout=StringIO(), stderr=StringIO())
    assert not ReconciliationRun.objects.exists()
