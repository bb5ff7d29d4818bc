"""The demo's reconciliation step: a clean cohort, the one-cent drift, an error run."""

from datetime import date

import pytest

from billing_project.demo import DemoContext
from cohorts.demo import cohorts_demo
from metering.demo import accounts_demo
from reconciliation.demo import ROUNDING_DRIFT_ACCT_ID, legacy_demo
from reconciliation.demo_runs import reconciliation_demo
from reconciliation.models import DriftRecord, ReconciliationRun

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


def test_demo_gives_a_clean_cohort_one_drift_and_an_error_run(server):
    ctx = DemoContext(accounts=18, months=3, today=date(2026, 3, 20))
    for step in (cohorts_demo, legacy_demo, accounts_demo):
        step(ctx)

    summary = reconciliation_demo(ctx)

    runs = {run.cohort_number: run for run in ReconciliationRun.objects.all()}
    assert {n: r.status for n, r in runs.items()} == {1: "clean", 2: "drift", 3: "error"}, summary
    assert runs[1].accounts_checked > 0 and runs[2].accounts_checked > 0
    assert runs[1].service_month == date(2026, 2, 1)
    record = DriftRecord.objects.get()
    assert (record.acct_id, record.delta_minor, record.reason) == (
        ROUNDING_DRIFT_ACCT_ID,
        -1,
        "amounts_differ",
    )
    assert len(record.kinds) == 1 and record.kinds[0] in ("ST", "RM", "CV")
    assert "no account to check" in runs[3].error

    again = reconciliation_demo(ctx)
    assert "0 more accounts" in again and "kept" in again
    assert ReconciliationRun.objects.count() == 3
