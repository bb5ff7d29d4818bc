"""The month-end report as a file: `.xlsx` (openpyxl) for people, `.csv` for tools.

The same columns in both. In CSV, money is integer minor units (`*_minor`) plus `currency`;
in the workbook it is shown in major units with a money format. A totals row ends each.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from billing_project.classifier import USAGE_KINDS
from billing_project.money import minor_to_major

from .month_end import MonthEndReport, ReportRow


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str  # text | int | money | rate
    value: Callable[[ReportRow], object]
    width: int


def _usage_columns(kind: str) -> list[Column]:
    return [
        Column(
            f"{kind.lower()}_impressions",
            f"{kind} impressions",
            "int",
            lambda r: r.usage[kind].impressions,
            14,
        ),
        Column(f"{kind.lower()}_tier", f"{kind} tier", "text", lambda r: r.usage[kind].tier, 24),
        Column(
            f"{kind.lower()}_rate_per_1000",
            f"{kind} rate / 1,000",
            "rate",
            lambda r: r.usage[kind].rate,
            12,
        ),
        Column(
            f"{kind.lower()}_amount_minor",
            f"{kind} amount",
            "money",
            lambda r: r.usage[kind].amount_minor,
            13,
        ),
    ]


COLUMNS: list[Column] = [
    Column("acct_id", "Account id", "int", lambda r: r.acct_id or None, 11),
    Column("account", "Account", "text", lambda r: r.account, 32),
    Column("cohort", "Cohort", "int", lambda r: r.cohort, 8),
    Column("billing_owner", "Billed by", "text", lambda r: r.billing_owner, 13),
    Column("currency", "Currency", "text", lambda r: r.currency, 9),
    *[column for kind in USAGE_KINDS for column in _usage_columns(kind.value)],
    Column("subscription", "Subscription", "text", lambda r: r.subscription, 24),
    Column(
        "subscription_rate_minor",
        "Subscription rate",
        "money",
        lambda r: r.subscription_rate_minor,
        15,
    ),
    Column("managed_jobs", "Managed jobs", "int", lambda r: r.managed_jobs, 12),
    Column("managed_amount_minor", "Managed amount", "money", lambda r: r.managed_minor, 15),
    Column("legacy_total_minor", "Legacy total", "money", lambda r: r.legacy_total_minor, 15),
    Column("stripe_total_minor", "Stripe total", "money", lambda r: r.stripe_total_minor, 15),
    Column(
        "difference_minor",
        "Difference (Stripe - legacy)",
        "money",
        lambda r: r.difference_minor,
        17,
    ),
]
MONEY_FORMAT = '"$"#,##0.00;[Red]-"$"#,##0.00'
RATE_FORMAT = '"$"#,##0.000###'
INT_FORMAT = "#,##0"


def _all_rows(report: MonthEndReport) -> list[ReportRow]:
    return [*report.rows, *report.totals().values()]


def month_end_csv(report: MonthEndReport) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([column.key for column in COLUMNS])
    for row in _all_rows(report):
        writer.writerow(["" if (v := column.value(row)) is None else v for column in COLUMNS])
    return buffer.getvalue().encode()


def _cell_value(column: Column, row: ReportRow):
    value = column.value(row)
    if column.kind == "money" and value is not None:
        return minor_to_major(value, row.currency)
    if column.kind == "rate" and value is not None:
        return Decimal(value)
    return value


def month_end_xlsx(report: MonthEndReport) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = f"{report.month:%Y-%m}"
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor="1F3A5F")
    sheet.append([column.header for column in COLUMNS])
    for cell in sheet[1]:
        cell.font = header_font
        cell.fill = header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    sheet.row_dimensions[1].height = 32
    for row in report.rows:
        sheet.append([_cell_value(column, row) for column in COLUMNS])
    total_border = Border(top=Side(style="thin"), bottom=Side(style="double"))
    for total in report.totals().values():
        sheet.append([_cell_value(column, total) for column in COLUMNS])
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
            cell.border = total_border
    formats = {"money": MONEY_FORMAT, "rate": RATE_FORMAT, "int": INT_FORMAT}
    for index, column in enumerate(COLUMNS, 1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = column.width
        number_format = formats.get(column.kind)
        if number_format and column.key not in ("acct_id", "cohort"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(report.rows) + 1}"
    if not report.stripe_included:
        sheet.cell(row=sheet.max_row + 2, column=1, value="Stripe totals not included.")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def month_end_file(report: MonthEndReport, *, fmt: str) -> tuple[bytes, str, str]:
    """(content, file name, content type) for `fmt` in xlsx | csv."""
    name = f"month-end-{report.month:%Y-%m}.{fmt}"
    if fmt == "csv":
        return month_end_csv(report), name, "text/csv"
    if fmt == "xlsx":
        return (
            month_end_xlsx(report),
            name,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    raise ValueError(f"format must be xlsx or csv, not {fmt!r}")
