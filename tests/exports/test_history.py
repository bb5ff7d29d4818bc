import csv
import gzip
import io
import json
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exports.history import history_export, history_verify
from exports.history_rows import COLUMNS
from exports.models import ExportRun, HistoryMonth
from reconciliation.legacy import LegacyInvoice

from .conftest import LEGACY_DB, bucket_get, bucket_keys, bucket_put, db_month_totals

pytestmark = LEGACY_DB
MONTHS = ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_export_writes_one_file_per_month_and_a_manifest_per_year(legacy_history, s3_bucket):
    outcome = history_export()

    assert outcome.problems == []
    assert bucket_keys(s3_bucket) == [
        "history/2025/2025-11.csv.gz",
        "history/2025/2025-12.csv.gz",
        "history/2025/manifest.json",
        "history/2026/2026-01.csv.gz",
        "history/2026/2026-02.csv.gz",
        "history/2026/manifest.json",
    ]
    rows = list(
        csv.reader(
            io.StringIO(
                gzip.decompress(bucket_get(s3_bucket, "history/2026/2026-01.csv.gz")).decode()
            )
        )
    )
    assert rows[0] == list(COLUMNS)
    invoice = LegacyInvoice.objects.filter(service_month=date(2026, 1, 1)).order_by("inv_uuid")[0]
    first = rows[1]
    assert first[0] == invoice.inv_uuid
    assert first[6] == str(invoice.total_minor) and first[5] == "usd"
    assert first[14] == str(invoice.lines.order_by("line_id")[0].amount_minor)
    assert HistoryMonth.objects.filter(verified_at__isnull=False).count() == 4
    run = ExportRun.objects.get(kind=ExportRun.Kind.HISTORY)
    assert (run.status, run.files_written) == (ExportRun.Status.SUCCEEDED, 4)


def test_manifest_counts_and_sums_equal_the_legacy_database_for_every_month(
    legacy_history, s3_bucket
):
    history_export()

    for label in MONTHS:
        manifest = json.loads(bucket_get(s3_bucket, f"history/{label[:4]}/manifest.json"))
        entry = manifest["entries"][label]
        month = date(int(label[:4]), int(label[5:]), 1)
        count, total_minor = db_month_totals(month)
        assert count > 0
        assert entry["invoices"] == count
        assert entry["totals_minor"] == {"usd": total_minor}
        invoices = LegacyInvoice.objects.filter(service_month=month).order_by("inv_uuid")
        assert entry["first_invoice"] == invoices.first().inv_uuid
        assert entry["last_invoice"] == invoices.last().inv_uuid
        assert entry["command_version"] == "export_invoice_history/1"
        assert entry["exported_at"]
        body = bucket_get(s3_bucket, entry["key"])
        import hashlib

        assert entry["sha256"] == hashlib.sha256(body).hexdigest()


def test_verify_after_export_is_clean(legacy_history):
    history_export()

    outcome = history_verify()

    assert outcome.problems == []
    assert len(outcome.unchanged) == 4


def test_second_run_with_nothing_changed_writes_nothing(legacy_history, s3_bucket):
    history_export()
    before = {key: bucket_get(s3_bucket, key) for key in bucket_keys(s3_bucket)}
    stamps = {
        key: s3_bucket.head_object(Bucket="invoices-test", Key=key)["LastModified"]
        for key in before
    }

    outcome = history_export()

    assert outcome.written == [] and len(outcome.unchanged) == 4
    assert {key: bucket_get(s3_bucket, key) for key in bucket_keys(s3_bucket)} == before
    assert {
        key: s3_bucket.head_object(Bucket="invoices-test", Key=key)["LastModified"]
        for key in before
    } == stamps


def test_deleted_file_is_named_by_verify_and_repaired_by_a_rerun(legacy_history, s3_bucket):
    history_export()
    original = bucket_get(s3_bucket, "history/2025/2025-12.csv.gz")
    s3_bucket.delete_object(Bucket="invoices-test", Key="history/2025/2025-12.csv.gz")

    problems = history_verify().problems

    assert problems == ["history/2025/2025-12.csv.gz: missing from storage"]
    assert HistoryMonth.objects.get(month=date(2025, 12, 1)).verified_at is None
    outcome = history_export()
    assert outcome.written == ["history/2025/2025-12.csv.gz"]
    assert bucket_get(s3_bucket, "history/2025/2025-12.csv.gz") == original
    assert history_verify().problems == []


def test_flipped_byte_is_named_by_verify_and_repaired_by_a_rerun(legacy_history, s3_bucket):
    history_export()
    key = "history/2026/2026-01.csv.gz"
    original = bucket_get(s3_bucket, key)
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    bucket_put(s3_bucket, key, bytes(damaged))

    with pytest.raises(CommandError) as failure:
        call_command(
            "export_invoice_history",
            "--verify",
            stdout=io.StringIO(),
            stderr=(err := io.StringIO()),
        )

    assert "1 problems" in str(failure.value)
    assert key in err.getvalue() and "2025-11" not in err.getvalue()
    call_command("export_invoice_history", stdout=io.StringIO())
    assert bucket_get(s3_bucket, key) == original
    call_command("export_invoice_history", "--verify", stdout=io.StringIO())


def test_changed_legacy_invoice_redoes_only_its_month(legacy_history, s3_bucket):
    history_export()
    invoice = LegacyInvoice.objects.filter(service_month=date(2026, 2, 1)).first()
    invoice.status = "failed" if invoice.status != "failed" else "paid"
    invoice.save(update_fields=["status"])

    problems = history_verify().problems
    outcome = history_export()

    assert problems and all("2026-02" in problem for problem in problems)
    assert outcome.written == ["history/2026/2026-02.csv.gz"]
    assert history_verify().problems == []


def test_account_subset_goes_to_an_extract_and_never_replaces_a_full_month(
    legacy_history, s3_bucket
):
    history_export()
    full = {key: bucket_get(s3_bucket, key) for key in bucket_keys(s3_bucket)}

    call_command(
        "export_invoice_history", "--account", "1001", "--from", "2026-01", stdout=io.StringIO()
    )

    keys = bucket_keys(s3_bucket)
    assert {key: bucket_get(s3_bucket, key) for key in full} == full
    extracts = [key for key in keys if key.startswith("history/extracts/accounts-1001/")]
    assert extracts == [
        "history/extracts/accounts-1001/2026-01.csv.gz",
        "history/extracts/accounts-1001/2026-02.csv.gz",
        "history/extracts/accounts-1001/manifest.json",
    ]
    rows = list(
        csv.reader(io.StringIO(gzip.decompress(bucket_get(s3_bucket, extracts[0])).decode()))
    )
    assert {row[1] for row in rows[1:]} == {"1001"}


def test_verify_narrowed_to_an_account_checks_only_its_rows(legacy_history, s3_bucket):
    history_export()

    outcome = history_verify(acct_ids=[1002])

    assert outcome.problems == []
    assert ExportRun.objects.get(kind=ExportRun.Kind.HISTORY_VERIFY).options == {"acct_ids": [1002]}


def test_dry_run_lists_files_and_writes_nothing(legacy_history, s3_bucket):
    out = io.StringIO()
    call_command("export_invoice_history", "--dry-run", "--to", "2025-12", stdout=out)

    assert bucket_keys(s3_bucket) == []
    assert "would write history/2025/2025-11.csv.gz" in out.getvalue()
    assert "would write history/2026" not in out.getvalue()
    assert not ExportRun.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-13"], "--from: expected a month as YYYY-MM"),
        (["--from", "2026-02", "--to", "2025-01"], "--from/--to: the start"),
        (["--cohort", "99"], "--cohort: cohort 99 has no accounts"),
        (["--account", "1", "--cohort", "1"], "--account and --cohort"),
    ],
)
def test_bad_options_fail_with_a_message_naming_them(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_invoice_history", *args, stdout=io.StringIO())
