"""`forecast_drift` (read-only backtest): would Stripe have billed what the legacy system did?

For each account of a cohort and each legacy invoice of the last `months` full months, every
line is recomputed three ways: as the legacy invoice states it, by our legacy engine from the
account's plan (`metering.pricing`), and by Stripe's documented rule (volume tiers, inclusive
`up_to`, one rounding per line) on the price the import creates for that plan. Any
difference, per invoice and line kind, is a drift the parallel run would report.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from billing_project.classifier import USAGE_KINDS, LineKind
from reconciliation.legacy import LegacyInvoice, LegacyManagedServiceJob

from .catalog import usage_price_spec
from .legacy_pricing import legacy_usage_amount_minor
from .pricing import PlanError, stripe_volume_amount_minor
from .selectors import account_list, legacy_plans_get


@dataclass(frozen=True)
class Drift:
    acct_id: int
    service_month: date
    kind: str
    legacy_minor: int
    engine_minor: int | None
    stripe_minor: int | None
    detail: str = ""


@dataclass
class ForecastReport:
    cohort: int
    months: list[date] = field(default_factory=list)
    accounts: int = 0
    invoices: int = 0
    lines: int = 0
    drifts: list[Drift] = field(default_factory=list)

    @property
    def drifting_accounts(self) -> list[int]:
        return sorted({drift.acct_id for drift in self.drifts})


def backtest_months(*, today: date, months: int) -> list[date]:
    """First days of the `months` full months before `today`, oldest first."""
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    ordinal = today.year * 12 + today.month - 1
    return [
        date((ordinal - back) // 12, (ordinal - back) % 12 + 1, 1) for back in range(months, 0, -1)
    ]


def forecast_drift(
    *,
    cohort: int,
    months: int = 12,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> ForecastReport:
    """Recompute the cohort's legacy invoices; list every line kind that would drift."""
    say = progress or (lambda _message: None)
    report = ForecastReport(
        cohort=cohort,
        months=backtest_months(today=today or datetime.now(UTC).date(), months=months),
    )
    acct_ids = list(account_list(cohort=cohort).values_list("acct_id", flat=True))
    report.accounts = len(acct_ids)
    plans = legacy_plans_get(acct_ids)
    managed: dict[tuple[int, date], list[int]] = defaultdict(list)
    for job in LegacyManagedServiceJob.objects.filter(
        account_id__in=acct_ids, service_month__in=report.months
    ):
        managed[(job.account_id, job.service_month)].append(job.amount_minor)
    invoices = (
        LegacyInvoice.objects.filter(account_id__in=acct_ids, service_month__in=report.months)
        .prefetch_related("lines")
        .order_by("account_id", "service_month")
    )
    last_account = None
    for invoice in invoices:
        report.invoices += 1
        plan = plans[invoice.account_id]
        lines = list(invoice.lines.all())
        report.lines += len(lines)
        legacy: dict[str, int] = defaultdict(int)
        engine: dict[str, int | None] = defaultdict(int)
        stripe: dict[str, int | None] = defaultdict(int)
        details: dict[str, str] = {}
        for line in lines:
            amount = line.amount_minor
            legacy[line.line_kind] += amount
            if line.line_kind in {kind.value for kind in USAGE_KINDS}:
                kind = LineKind(line.line_kind)
                tiers = plan.tiers.get(kind)
                try:
                    if not tiers:
                        raise PlanError(f"no {kind.value} tiers in the plan")
                    engine_amount = legacy_usage_amount_minor(tiers, line.quantity, plan.currency)
                    spec = usage_price_spec(kind, tiers, plan.currency)
                    stripe_amount = stripe_volume_amount_minor(spec.stripe_tiers(), line.quantity)
                except (PlanError, ValueError) as exc:
                    engine[kind.value] = stripe[kind.value] = None
                    details[kind.value] = str(exc)
                    continue
                if engine[kind.value] is not None:
                    engine[kind.value] += engine_amount
                    stripe[kind.value] += stripe_amount
                details[kind.value] = f"{line.quantity:,} impressions"
        flat = sum(fee.amount_minor for fee in plan.flat_fees)
        engine["flat"] = stripe["flat"] = flat
        jobs = managed.get((invoice.account_id, invoice.service_month), [])
        if jobs or legacy.get("managed"):
            engine["managed"] = stripe["managed"] = sum(jobs)
        for kind in sorted(set(legacy) | set(engine)):
            values = (legacy.get(kind, 0), engine.get(kind, 0), stripe.get(kind, 0))
            if len(set(values)) > 1:
                report.drifts.append(
                    Drift(
                        acct_id=invoice.account_id,
                        service_month=invoice.service_month,
                        kind=kind,
                        legacy_minor=values[0],
                        engine_minor=values[1],
                        stripe_minor=values[2],
                        detail=details.get(kind, ""),
                    )
                )
        if invoice.account_id != last_account:
            last_account = invoice.account_id
            say(f"account {invoice.account_id}")
    return report
