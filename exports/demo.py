"""Demo step: the demo's legacy history exported and verified, and its last month's report."""

import io

from django.conf import settings
from openpyxl import load_workbook

from billing_project.demo import DemoContext, demo_step
from billing_project.errors import ExternalServiceError
from reconciliation.demo import demo_months

from .history import history_export, history_verify
from .objects import object_read
from .reports import month_end_report_write


@demo_step(70, "exports")
def exports_demo(ctx: DemoContext) -> str:
    """Export every demo month's invoices (idempotent: unchanged months are not rewritten),
    verify them from storage, and store the month-end workbook of the last demo month."""
    months = demo_months(today=ctx.today, months=ctx.months)
    exported = history_export(first=months[0], last=months[-1])
    verified = history_verify(first=months[0], last=months[-1])
    if exported.problems or verified.problems:
        raise RuntimeError("; ".join(exported.problems + verified.problems))
    with_stripe = bool(settings.STRIPE_API_BASE) and not settings.STRIPE_LIVE_MODE
    try:
        written = month_end_report_write(month=months[-1], fmt="xlsx", include_stripe=with_stripe)
    except ExternalServiceError:
        written = month_end_report_write(month=months[-1], fmt="xlsx", include_stripe=False)
    sheet = load_workbook(io.BytesIO(object_read(written.where))).active
    return (
        f"{len(exported.written)} history files written, {len(exported.unchanged)} unchanged "
        f"({exported.invoices:,} invoices), {len(verified.unchanged)} verified; "
        f"month-end report {written.where} ({len(written.report.rows)} accounts, "
        f"{sheet.max_row} sheet rows"
        f"{'' if written.report.stripe_included else ', without Stripe'})"
    )
