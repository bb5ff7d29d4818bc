"""An export killed mid-way (a real process, SIGKILL) resumes without losing or doubling a month."""

import json
import os
import signal
import subprocess
import sys

import pytest
from django.db import transaction

from exports.history import history_export, history_verify
from exports.models import ExportRun
from reconciliation.legacy import (
    LEGACY_ALIAS,
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
)
from tests.harness.qcluster import ROOT, database_url

from .conftest import bucket_get, bucket_keys, db_month_totals, legacy_load

pytestmark = pytest.mark.django_db(databases=["default", "legacy"], transaction=True)


@pytest.fixture
def committed_history(s3_bucket):
    """24 months of 30 accounts, committed (the exporting process must see them)."""
    data = legacy_load(accounts=30, months=24)
    yield data
    acct_ids = [account.acct_id for account in data.accounts]
    with transaction.atomic(using=LEGACY_ALIAS):
        LegacyInvoiceLine.objects.filter(invoice__account_id__in=acct_ids).delete()
        for model in (LegacyInvoice, LegacyManagedServiceJob, LegacyPlanUsage, LegacyPlanSub):
            model.objects.filter(account_id__in=acct_ids).delete()
        LegacyAccount.objects.filter(acct_id__in=acct_ids).delete()


def _export_killed_after_first_month() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url("default"),
        "LEGACY_DATABASE_URL": database_url("legacy"),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "export_invoice_history"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("2024-03:"):  # the first month is in place
                process.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail("the export finished before it could be killed")
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def test_export_killed_mid_way_resumes_without_duplicating_or_losing_a_month(
    committed_history, s3_bucket
):
    months = [f"{m:%Y-%m}" for m in committed_history.months]
    assert (months[0], months[-1]) == ("2024-03", "2026-02")

    _export_killed_after_first_month()

    partial = [key for key in bucket_keys(s3_bucket) if key.endswith(".csv.gz")]
    assert 1 <= len(partial) < len(months)
    killed = ExportRun.objects.get()
    assert killed.status == ExportRun.Status.RUNNING

    outcome = history_export()

    killed.refresh_from_db()
    assert killed.status == ExportRun.Status.INTERRUPTED
    # Months already in place are not written again; every month is exported exactly once.
    assert not set(outcome.written) & set(partial)
    assert sorted(outcome.written + outcome.unchanged) == [
        f"history/{label[:4]}/{label}.csv.gz" for label in months
    ]
    files = [key for key in bucket_keys(s3_bucket) if key.endswith(".csv.gz")]
    assert files == sorted(f"history/{label[:4]}/{label}.csv.gz" for label in months)
    for label in months:
        entry = json.loads(bucket_get(s3_bucket, f"history/{label[:4]}/manifest.json"))["entries"][
            label
        ]
        invoices, total_minor = db_month_totals(
            LegacyInvoice.objects.filter(
                service_month__year=int(label[:4]), service_month__month=int(label[5:])
            )[0].service_month
        )
        assert (entry["invoices"], entry["totals_minor"]) == (invoices, {"usd": total_minor})
    assert history_verify().problems == []
