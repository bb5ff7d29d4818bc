"""The daily schedule under a real worker, and one run per day even when triggers collide."""

import threading

import pytest
from django.db import connections
from django.utils import timezone
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from billing_project.classifier import LineKind
from billing_project.models import BillingEvent
from billing_project.schedules import schedule_specs, schedules_install
from reconciliation.models import ReconciliationRun
from reconciliation.services import AlreadyRan, reconcile_run
from tests.harness.qcluster import QCluster

from .conftest import AFTER_DEADLINE, feb_lines, legacy_invoice, member, stripe_invoice, ts

TASK = "reconciliation.tasks.reconcile_daily_task"


@pytest.fixture
def clean_account(server, cohort):
    account = member(cohort, 5401)
    legacy_invoice(5401, {LineKind.FLAT: 49_900})
    stripe_invoice(server, account, feb_lines(49_900), created=ts(2026, 3, 1, 2))
    return account


def test_the_schedule_is_daily_at_six_utc():
    spec = next(spec for spec in schedule_specs() if spec.name == "reconciliation-daily")
    assert (spec.func, spec.cron) == (TASK, "0 6 * * *")


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_two_triggers_at_once_give_one_run(legacy_truncated, clean_account):
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def trigger() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(reconcile_run(run_date=AFTER_DEADLINE, trigger="schedule").run)
        except AlreadyRan as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    runs = [o for o in outcomes if isinstance(o, ReconciliationRun)]
    refused = [o for o in outcomes if isinstance(o, AlreadyRan)]
    assert (len(runs), len(refused)) == (1, 1), outcomes
    assert ReconciliationRun.objects.count() == 1
    assert ReconciliationRun.objects.get().status == "clean"
    assert BillingEvent.objects.filter(name="reconcile_clean").count() == 1


@pytest.mark.calendar
@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_scheduled_run_under_a_real_worker_runs_once_per_day(
    legacy_truncated, clean_account, tmp_path
):
    schedules_install(now=timezone.now())
    # A controlled clock: the installed daily schedule, due now, for a fixed run date.
    Schedule.objects.filter(name="reconciliation-daily").update(
        kwargs=repr({"run_date": AFTER_DEADLINE.isoformat()}), next_run=timezone.now()
    )
    # A second trigger for the same date, queued for the same worker pool.
    async_task(TASK, run_date=AFTER_DEADLINE.isoformat(), sync=False)
    cluster = QCluster(log_path=tmp_path / "qcluster.log", extra_env={"Q_WORKERS": "2"}).start()
    try:
        cluster.wait_for(
            lambda: Task.objects.filter(func=TASK).count() >= 2,
            timeout=120,
            what="both reconciliation triggers to finish",
        )
    finally:
        cluster.stop()
    results = sorted(str(task.result) for task in Task.objects.filter(func=TASK))
    assert len(results) == 2
    assert results[0].startswith("run ") and "clean" in results[0], results
    assert results[1].startswith("skipped"), results
    run = ReconciliationRun.objects.get()
    assert (run.status, run.trigger, run.accounts_checked) == ("clean", "schedule", 1)
    schedule = Schedule.objects.get(name="reconciliation-daily")
    assert schedule.next_run > timezone.now()  # the cron moved on to the next 06:00
    assert schedule.next_run.hour == 6 and schedule.next_run.minute == 0
