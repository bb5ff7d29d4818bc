"""The month-end report's rows: per account, what the legacy system billed for a service month
(impressions, the tier each landed in and its rate, subscription, managed-service jobs) beside
what Stripe billed for the same service month, and the difference.

Impressions are the quantities of the legacy invoice's ST/RM/CV lines; the tier and rate come
from the account's `account_plan_usage` through `metering.legacy_pricing`. Stripe's total is the
sum of the account's Stripe invoice lines whose service period starts in the month (the rule the
reconciliation uses). Money is integer minor units; formatting happens in the file writers.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing_project.classifier import USAGE_KINDS, LineKind
from billing_project.money import major_to_minor
from metering.legacy_pricing import UsageTier, legacy_tiers_ordered, legacy_usage_tier
from metering.models import BillingAccount
from metering.selectors import catalog_kinds, legacy_plans_get
from reconciliation.comparison import stripe_month_sides
from reconciliation.gateways import stripe_invoices_in_window
from reconciliation.legacy import (
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
)
from reconciliation.periods import next_month, run_period


@dataclass
class UsageCell:
    impressions: int = 0
    tier: str = ""
    rate: Decimal | None = None
    amount_minor: int = 0


@dataclass
class ReportRow:
    acct_id: int
    account: str
    cohort: int | None
    billing_owner: str
    currency: str
    usage: dict[str, UsageCell] = field(
        default_factory=lambda: {kind.value: UsageCell() for kind in USAGE_KINDS}
    )
    subscription: str = ""
    subscription_rate_minor: int = 0
    managed_jobs: int = 0
    managed_minor: int = 0
    legacy_total_minor: int | None = None
    stripe_total_minor: int | None = None

    difference_total_minor: int | None = None  # set on totals rows: the sum of the rows'

    @property
    def difference_minor(self) -> int | None:
        """Stripe minus legacy, when both billed the month (else empty: nothing to compare)."""
        if self.difference_total_minor is not None:
            return self.difference_total_minor
        if self.legacy_total_minor is None or self.stripe_total_minor is None:
            return None
        return self.stripe_total_minor - self.legacy_total_minor


@dataclass
class MonthEndReport:
    month: date
    rows: list[ReportRow]
    stripe_included: bool

    def totals(self) -> dict[str, ReportRow]:
        """One totals row per currency: every number column summed over the rows."""
        totals: dict[str, ReportRow] = {}
        for row in self.rows:
            total = totals.setdefault(
                row.currency,
                ReportRow(
                    acct_id=0, account="Total", cohort=None, billing_owner="", currency=row.currency
                ),
            )
            for kind, cell in row.usage.items():
                total.usage[kind].impressions += cell.impressions
                total.usage[kind].amount_minor += cell.amount_minor
            total.subscription_rate_minor += row.subscription_rate_minor
            total.managed_jobs += row.managed_jobs
            total.managed_minor += row.managed_minor
            if row.legacy_total_minor is not None:
                total.legacy_total_minor = (total.legacy_total_minor or 0) + row.legacy_total_minor
            if row.stripe_total_minor is not None:
                total.stripe_total_minor = (total.stripe_total_minor or 0) + row.stripe_total_minor
            if row.difference_minor is not None:
                total.difference_total_minor = (
                    total.difference_total_minor or 0
                ) + row.difference_minor
        return totals


def tier_label(tiers: list[UsageTier], chosen: UsageTier) -> str:
    """`tier 2 (< 5,000,000)`; the open top tier reads `tier 4 (≥ 20,000,000)`."""
    ordered = legacy_tiers_ordered(tiers)
    index = ordered.index(chosen)
    if chosen.usage_max is not None:
        return f"tier {index + 1} (< {chosen.usage_max:,})"
    floor = ordered[index - 1].usage_max if index else 0
    return f"tier {index + 1} (≥ {floor:,})"


def _legacy_rows(month: date) -> dict[int, ReportRow]:
    invoices = LegacyInvoice.objects.filter(
        service_month__gte=month, service_month__lt=next_month(month)
    )
    rows: dict[int, ReportRow] = {}
    for acct_id, currency, total in invoices.values_list("account_id", "currency", "total"):
        row = rows.setdefault(
            acct_id,
            ReportRow(
                acct_id=acct_id, account="", cohort=None, billing_owner="", currency=currency
            ),
        )
        row.legacy_total_minor = (row.legacy_total_minor or 0) + major_to_minor(total, currency)
    usage_lines = LegacyInvoiceLine.objects.filter(
        invoice__in=invoices, line_kind__in=[kind.value for kind in USAGE_KINDS]
    ).values_list("invoice__account_id", "invoice__currency", "line_kind", "quantity", "amount")
    for acct_id, currency, kind, quantity, amount in usage_lines:
        cell = rows[acct_id].usage[kind]
        cell.impressions += quantity
        cell.amount_minor += major_to_minor(amount, currency)
    return rows


def month_end_report_build(*, month: date, include_stripe: bool = True) -> MonthEndReport:
    """The report for a service month. Raises ExternalServiceError if Stripe cannot be read."""
    rows = _legacy_rows(month)
    accounts = {
        account.acct_id: account
        for account in BillingAccount.objects.select_related("cohort").filter(
            acct_id__in=list(rows)
        )
    }
    if include_stripe:
        billed = list(
            BillingAccount.objects.select_related("cohort").exclude(stripe_customer_id=None)
        )
        period = run_period(next_month(month))
        kinds = catalog_kinds()
        snapshot = stripe_invoices_in_window(
            created_gte=period.window_start, created_lt=period.window_end, kinds=kinds
        )
        sides = stripe_month_sides(
            invoices=snapshot.invoices,
            accounts_by_customer={a.stripe_customer_id: a for a in billed},
            month=month,
            prices=snapshot.prices,
            products=snapshot.products,
            kinds=kinds,
            credit_notes=snapshot.credit_notes,
        )
        for account in billed:
            side = sides.get(account.acct_id)
            if side is None:
                continue
            accounts[account.acct_id] = account
            row = rows.setdefault(
                account.acct_id,
                ReportRow(
                    acct_id=account.acct_id,
                    account="",
                    cohort=None,
                    billing_owner="",
                    currency=side.currency,
                ),
            )
            row.stripe_total_minor = side.total_minor
    names = dict(
        LegacyAccount.objects.filter(acct_id__in=list(rows)).values_list("acct_id", "acct_name")
    )
    plans = legacy_plans_get(list(rows))
    managed: dict[int, list[int]] = defaultdict(list)
    for acct_id, amount in LegacyManagedServiceJob.objects.filter(
        account_id__in=list(rows), service_month__gte=month, service_month__lt=next_month(month)
    ).values_list("account_id", "amount"):
        managed[acct_id].append(major_to_minor(amount, rows[acct_id].currency))
    for acct_id, row in rows.items():
        account = accounts.get(acct_id)
        row.account = names.get(acct_id) or (account.name if account else "")
        if account is not None:
            row.cohort = account.cohort.number if account.cohort else None
            row.billing_owner = account.get_billing_owner_display()
        plan = plans[acct_id]
        if plan.flat_fees:
            row.subscription = ", ".join(fee.name for fee in plan.flat_fees)
            row.subscription_rate_minor = sum(fee.amount_minor for fee in plan.flat_fees)
        for kind, tiers in plan.tiers.items():
            cell = row.usage[LineKind(kind).value]
            try:
                chosen = legacy_usage_tier(list(tiers), cell.impressions)
            except ValueError as exc:
                cell.tier = f"no tier: {exc}"
                continue
            cell.tier = tier_label(list(tiers), chosen)
            cell.rate = chosen.usage_rate
        row.managed_jobs = len(managed[acct_id])
        row.managed_minor = sum(managed[acct_id])
    return MonthEndReport(
        month=month,
        rows=[rows[acct_id] for acct_id in sorted(rows)],
        stripe_included=include_stripe,
    )
