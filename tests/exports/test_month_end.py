import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from billing_project.classifier import LineKind
from exports.month_end_files import COLUMNS
from metering.legacy_pricing import legacy_usage_tier
from metering.selectors import legacy_plans_get
from reconciliation.legacy import LegacyInvoice
from tests.factories import BillingAccountFactory, CohortFactory
from tests.reconciliation.conftest import Line, stripe_invoice, ts

from .conftest import LEGACY_DB

pytestmark = LEGACY_DB
FEB = date(2026, 2, 1)
HEADERS = [
    "Account id", "Account", "Cohort", "Billed by", "Currency",
    "ST impressions", "ST tier", "ST rate / 1,000", "ST amount",
    "RM impressions", "RM tier", "RM rate / 1,000", "RM amount",
    "CV impressions", "CV tier", "CV rate / 1,000", "CV amount",
    "Subscription", "Subscription rate", "Managed jobs", "Managed amount",
    "Legacy total", "Stripe total", "Difference (Stripe - legacy)",
]  # fmt: skip


@pytest.fixture
def stripe_side(legacy_history, stripe):
    """Account 1002 billed in Stripe for February, one dollar below its legacy invoice."""
    cohort = CohortFactory(number=2)
    account = BillingAccountFactory(acct_id=1002, cohort=cohort, parallel=True)
    legacy_minor = LegacyInvoice.objects.get(account_id=1002, service_month=FEB).total_minor
    stripe_invoice(
        stripe,
        account,
        [Line(LineKind.FLAT, legacy_minor - 100, ts(2026, 2, 1), ts(2026, 3, 1))],
        created=ts(2026, 3, 1, 6),
    )
    return legacy_minor


def test_workbook_has_the_documented_columns_tiers_and_totals_equal_to_the_rows(
    stripe_side, tmp_path
):
    path = tmp_path / "feb.xlsx"
    call_command(
        "month_end_report", "--month", "2026-02", "--output", str(path), stdout=io.StringIO()
    )

    sheet = load_workbook(path).active
    # Excel stores numbers as doubles: read them back as the decimals they print as.
    rows = [
        [Decimal(str(v)) if isinstance(v, float) else v for v in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert rows[0] == HEADERS == [column.header for column in COLUMNS]
    body, total = rows[1:7], rows[7]
    assert [row[0] for row in body] == [1001, 1002, 1003, 1004, 1005, 1006]
    assert total[1] == "Total"
    for index, header in enumerate(HEADERS):
        if (
            header.endswith(("impressions", "amount", "rate", "total", "jobs"))
            or "Difference" in header
        ):
            assert total[index] == sum(row[index] or 0 for row in body), header
    row_1002 = body[1]
    assert row_1002[2] == 2 and row_1002[3] == "Parallel run"
    legacy = Decimal(stripe_side) / 100
    assert (row_1002[21], row_1002[22], row_1002[23]) == (legacy, legacy - 1, Decimal(-1))
    plan = legacy_plans_get([1002])[1002]
    tier = legacy_usage_tier(list(plan.tiers[LineKind.ST]), row_1002[5])
    assert row_1002[7] == tier.usage_rate and row_1002[6].startswith("tier ")
    assert body[0][22] is None and body[0][23] is None  # legacy only: nothing to compare
    assert sheet.freeze_panes == "C2"
    assert sheet["V2"].number_format.startswith('"$"#,##0.00')
    assert sheet["A1"].font.bold and sheet.column_dimensions["B"].width == 32


def test_csv_has_minor_units_and_a_totals_row(stripe_side, tmp_path):
    path = tmp_path / "feb.csv"
    call_command(
        "month_end_report",
        "--month",
        "2026-02",
        "--format",
        "csv",
        "--output",
        str(path),
        stdout=io.StringIO(),
    )

    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == [column.key for column in COLUMNS]
    body, total = rows[:-1], rows[-1]
    assert len(body) == 6 and total["account"] == "Total"
    for key in ("legacy_total_minor", "st_impressions", "managed_amount_minor"):
        assert int(total[key]) == sum(int(row[key] or 0) for row in body)
    row = next(row for row in body if row["acct_id"] == "1002")
    assert int(row["stripe_total_minor"]) == stripe_side - 100
    assert row["difference_minor"] == "-100"


def test_report_refuses_a_bad_month_and_an_unreachable_folder(legacy_history, tmp_path):
    with pytest.raises(CommandError, match="--month: expected a month as YYYY-MM"):
        call_command("month_end_report", "--month", "Feb", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--output: folder"):
        call_command(
            "month_end_report",
            "--month",
            "2026-02",
            "--without-stripe",
            "--output",
            str(tmp_path / "nope" / "x.xlsx"),
            stdout=io.StringIO(),
        )
