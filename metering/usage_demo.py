"""Demo data: this month's usage so far for cohort 2, posted to the ledger and sent to the
Stripe-compatible server's meters (registered from `metering/demo.py`)."""

import calendar
from collections import Counter
from datetime import date, timedelta

from django.conf import settings

from billing_project.classifier import USAGE_KINDS
from billing_project.demo import DemoContext
from reconciliation.legacy import LegacyInvoiceLine

from .models import BillingAccount
from .usage_outbox import usage_outbox_send
from .usage_services import ItemStatus, UsageItem, usage_record_batch

DEMO_USAGE_COHORT = 2


def _days_so_far(today: date) -> list[date]:
    """The days of this month before today (all of last month on the 1st)."""
    if today.day == 1:
        last = today - timedelta(days=1)
        return [last.replace(day=day) for day in range(1, last.day + 1)]
    return [today.replace(day=day) for day in range(1, today.day)]


def _monthly_volumes(acct_ids: list[int]) -> dict[tuple[int, str], int]:
    """Each account's latest legacy monthly quantity per usage type (the demo's typical month)."""
    volumes: dict[tuple[int, str], int] = {}
    lines = (
        LegacyInvoiceLine.objects.filter(
            invoice__account_id__in=acct_ids, line_kind__in=[kind.value for kind in USAGE_KINDS]
        )
        .order_by("invoice__service_month")
        .values_list("invoice__account_id", "line_kind", "quantity")
    )
    for acct_id, kind, quantity in lines:
        volumes[(acct_id, kind)] = int(quantity)
    return volumes


def usage_demo(ctx: DemoContext) -> str:
    """Post this month's daily usage for cohort 2's accounts and send it to Stripe's meters."""
    if not settings.STRIPE_API_BASE or settings.STRIPE_LIVE_MODE:
        return "skipped: STRIPE_API_BASE does not point at a Stripe-compatible test server"
    acct_ids = list(
        BillingAccount.objects.filter(cohort__number=DEMO_USAGE_COHORT)
        .exclude(stripe_customer_id=None)
        .values_list("acct_id", flat=True)
    )
    days = _days_so_far(ctx.today)
    items = []
    for (acct_id, kind), monthly in sorted(_monthly_volumes(acct_ids).items()):
        days_in_month = calendar.monthrange(days[0].year, days[0].month)[1]
        for day in days:
            items.append(
                UsageItem(
                    index=len(items),
                    acct_id=acct_id,
                    period=day,
                    usage_type=kind,
                    quantity=monthly // days_in_month,
                )
            )
    if not items:
        return f"no cohort {DEMO_USAGE_COHORT} account has usage tiers"
    statuses = Counter(result.status for result in usage_record_batch(items=items))
    report = usage_outbox_send(workers=1)  # the demo's few lanes, in this connection
    return (
        f"{len(items)} usage records for {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} "
        f"({statuses[ItemStatus.CREATED]} new, {statuses[ItemStatus.DUPLICATE]} already "
        f"recorded); outbox: {report.summary()}"
    )
