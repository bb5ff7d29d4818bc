from billing_project.demo import DemoContext, demo_steps
from exports.demo import exports_demo
from exports.models import ExportRun

from .conftest import LEGACY_DB, TODAY, bucket_keys

pytestmark = LEGACY_DB


def test_demo_data_exports_cleanly_and_the_report_opens_and_a_rerun_writes_nothing(
    legacy_history, s3_bucket, stripe
):
    ctx = DemoContext(accounts=6, months=4, today=TODAY)
    assert any(step.name == "exports" and step.order == 70 for step in demo_steps())

    first = exports_demo(ctx)
    again = exports_demo(ctx)

    assert first.startswith("4 history files written, 0 unchanged")
    assert "4 verified" in first and "reports/month-end-2026-02.xlsx (6 accounts" in first
    assert again.startswith("0 history files written, 4 unchanged")
    assert "reports/month-end-2026-02.xlsx" in bucket_keys(s3_bucket)
    assert not ExportRun.objects.exclude(status=ExportRun.Status.SUCCEEDED).exists()
