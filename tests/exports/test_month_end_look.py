"""The month-end workbook as a person sees it: its cells, with their number formats, rendered in
headless Chromium to a PNG kept under TEST_ARTEFACTS_DIR (exports/month-end.png)."""

import html
import io
import os
from pathlib import Path

from django.core.management import call_command
from openpyxl import load_workbook
from playwright.sync_api import sync_playwright

from tests.exports.test_month_end import stripe_side  # noqa: F401  (fixture)

from .conftest import LEGACY_DB

pytestmark = LEGACY_DB

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _shown(cell) -> str:
    """The cell as a spreadsheet shows it: money in dollars, counts with separators."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, int | float) and "$" in cell.number_format:
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.2f}"
    if isinstance(value, int) and "#,##0" in cell.number_format:
        return f"{value:,}"
    return str(value)


def workbook_html(sheet) -> str:
    rows = []
    for index, row in enumerate(sheet.iter_rows()):
        tag = "th" if index == 0 else "td"
        cells = "".join(
            f'<{tag} class="{"num" if isinstance(c.value, int | float) else ""}'
            f'{" bold" if c.font.bold else ""}">{html.escape(_shown(c))}</{tag}>'
            for c in row
        )
        rows.append(f"<tr>{cells}</tr>")
    style = (
        "body{font:12px Calibri,Arial,sans-serif;margin:8px}"
        "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 6px;"
        "white-space:nowrap}th{background:#1f3864;color:#fff;text-align:left}"
        ".num{text-align:right}.bold{font-weight:700}tr:last-child td{border-top:2px solid #333}"
    )
    return f"<html><style>{style}</style><table>{''.join(rows)}</table></html>"


def test_the_workbook_renders_as_a_readable_sheet(stripe_side, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "feb.xlsx"
    call_command(
        "month_end_report", "--month", "2026-02", "--output", str(path), stdout=io.StringIO()
    )
    sheet = load_workbook(path).active
    page_html = workbook_html(sheet)
    out = Path(os.environ.get("TEST_ARTEFACTS_DIR", "var/test-artefacts")) / "exports"
    out.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1900, "height": 400})
        page.set_content(page_html)
        shown_rows = page.locator("tr").count()
        page.screenshot(path=str(out / "month-end.png"), full_page=True)
        browser.close()
    assert shown_rows == sheet.max_row
    assert (out / "month-end.png").stat().st_size > 10_000
    assert "$" in page_html and "Total" in page_html
