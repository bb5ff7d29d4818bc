"""Demo data: a legacy billing database with accounts, plans and months of invoices.

Every value derives from the demo seed, the account id and the service month, so a rerun
writes the same rows; each demo account's rows are replaced in one transaction. Line amounts
follow the legacy rules in `metering.legacy_pricing`; invoice totals are sums of lines.
"""

import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from django.db import transaction

from billing_project.classifier import USAGE_KINDS, LineKind
from billing_project.demo import DemoContext, demo_step
from billing_project.money import minor_to_major
from metering.legacy_pricing import UsageTier, legacy_usage_amount_minor, legacy_usage_rate

from .legacy import (
    LEGACY_ALIAS,
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
    legacy_schema_create,
)
from .routers import legacy_writes_allowed

CURRENCY = "usd"
ACCT_ID_BASE = 1000
MAX_DEMO_ACCOUNTS = 5000
FIRST_MONTH = date(2000, 1, 1)
LAST_MONTH = date(2083, 4, 1)
# The legacy system billed this account's usage one cent above its own tiers every month (a
# rounding quirk), so plan backtests and the parallel run have exactly one drift to find.
ROUNDING_DRIFT_ACCT_ID = ACCT_ID_BASE + 2
ROUNDING_DRIFT_MINOR = 1
INVOICE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "legacy-invoices.billing-demo.adventive.com")
ALPHANUMERIC = string.ascii_letters + string.digits


class DemoPlan(StrEnum):
    FLAT = "flat"
    TIERED = "tiered"
    MANAGED = "managed"


# Per six accounts: two flat-only, three flat + tiered, one managed-services heavy.
PLAN_PATTERN = (
    DemoPlan.FLAT,
    DemoPlan.TIERED,
    DemoPlan.MANAGED,
    DemoPlan.TIERED,
    DemoPlan.FLAT,
    DemoPlan.TIERED,
)

NAME_STEMS = (
    "Northwind", "Bluefin", "Summit Ridge", "Harbor Lane", "Copperleaf", "Redwood", "Silverline",
    "Lakeshore", "Granite Peak", "Brightwater", "Ironbridge", "Maple Street", "Pinecrest",
    "Evergreen", "Crescent Bay", "Foxglove", "Highland", "Juniper", "Keystone", "Lighthouse",
    "Meridian", "Oakmont", "Peregrine", "Quarry Hill", "Riverbend", "Starling", "Tidewater",
    "Union Square", "Westbrook", "Willow Creek",
)  # fmt: skip
NAME_SUFFIXES = (
    "Media", "Digital", "Publishing", "Interactive", "Marketing Group", "Automotive", "Health",
    "Outdoor Co.", "Partners", "Studios", "Brands", "Networks",
)  # fmt: skip
EMAIL_MAILBOXES = ("billing", "ap", "accounts.payable", "finance", "invoices")
STREETS = (
    "Market Street", "Main Street", "Broadway", "Harbor Boulevard", "Elm Avenue",
    "Commerce Drive", "Park Avenue South", "Madison Avenue", "Peachtree Street NE",
    "Congress Avenue", "Michigan Avenue", "Pearl Street", "Boylston Street", "Pine Street",
)  # fmt: skip
CITIES = (
    ("New York", "NY", "10001"), ("Chicago", "IL", "60601"), ("Austin", "TX", "78701"),
    ("Boston", "MA", "02116"), ("Atlanta", "GA", "30303"), ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"), ("San Francisco", "CA", "94105"), ("Portland", "OR", "97204"),
    ("Minneapolis", "MN", "55402"), ("Raleigh", "NC", "27601"), ("Columbus", "OH", "43215"),
)  # fmt: skip

# (plan name, monthly fee in cents)
FLAT_PLANS = (
    ("Essentials", 149_00),
    ("Essentials", 249_00),
    ("Professional", 299_00),
    ("Professional", 499_00),
    ("Business", 750_00),
    ("Business", 1_200_00),
    ("Enterprise", 1_950_00),
    ("Enterprise", 2_500_00),
)
# Exclusive ceilings; None is the open top tier.
CEILING_LADDERS = (
    (1_000_000, 5_000_000, 20_000_000, None),
    (5_000_000, 20_000_000, None),
    (2_000_000, 10_000_000, 50_000_000, None),
    (1_000_000, 10_000_000, None),
)
# Dollars per 1,000 impressions, decreasing with volume.
RATE_LADDERS = {
    LineKind.ST: (("2.50", "2.00", "1.50", "1.10"), ("3.00", "2.40", "1.80", "1.25")),
    LineKind.RM: (("1.25", "0.95", "0.875", "0.60"), ("1.50", "1.20", "0.875", "0.70")),
    LineKind.CV: (("0.40", "0.30", "0.25", "0.20"), ("0.35", "0.275", "0.2125", "0.15")),
}
# Typical monthly impressions per account (inclusive bounds).
VOLUME_RANGES = {
    LineKind.ST: (50_000, 4_000_000),
    LineKind.RM: (20_000, 2_500_000),
    LineKind.CV: (5_000, 1_000_000),
}
# (service, hourly rate in cents); jobs are billed in quarter hours.
MANAGED_SERVICES = (
    ("Creative production: HTML5 rich media", 150_00),
    ("Campaign setup and trafficking", 125_00),
    ("Landing page build", 140_00),
    ("Ad operations QA", 95_00),
    ("Custom reporting", 110_00),
    ("Video encoding and versioning", 135_00),
)


class _Charge(NamedTuple):
    kind: LineKind
    description: str
    quantity: int
    rate: Decimal
    amount_minor: int


@dataclass
class LegacyDemoData:
    """Unsaved legacy rows, in insertion order, plus counts for the summary."""

    accounts: list[LegacyAccount] = field(default_factory=list)
    plan_subs: list[LegacyPlanSub] = field(default_factory=list)
    plan_usages: list[LegacyPlanUsage] = field(default_factory=list)
    managed_jobs: list[LegacyManagedServiceJob] = field(default_factory=list)
    invoices: list[LegacyInvoice] = field(default_factory=list)
    lines: list[LegacyInvoiceLine] = field(default_factory=list)
    plans: dict[int, DemoPlan] = field(default_factory=dict)
    months: list[date] = field(default_factory=list)
    lines_at_ceiling: int = 0


def demo_months(*, today: date, months: int) -> list[date]:
    """First days of the `months` full months before `today`, oldest first."""
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    ordinal = today.year * 12 + today.month - 1
    return [
        date((ordinal - back) // 12, (ordinal - back) % 12 + 1, 1) for back in range(months, 0, -1)
    ]


def _month_ordinal(month: date) -> int:
    return (month.year - FIRST_MONTH.year) * 12 + month.month - 1


def _at(day: date, rng: random.Random) -> datetime:
    return datetime(
        day.year, day.month, day.day, rng.randint(8, 17), rng.randint(0, 59), tzinfo=UTC
    )


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ALPHANUMERIC) for _ in range(length))


def _company_names(seed: int, count: int) -> list[str]:
    names = [f"{stem} {suffix}" for stem in NAME_STEMS for suffix in NAME_SUFFIXES]
    random.Random(f"{seed}:names").shuffle(names)
    return [
        names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        for i in range(count)
    ]


def _email(rng: random.Random, name: str) -> str:
    domain = "-".join(re.findall(r"[a-z0-9]+", name.lower()))
    return f"{rng.choice(EMAIL_MAILBOXES)}@{domain}.example"


def _address(rng: random.Random) -> str:
    city, state, postcode = rng.choice(CITIES)
    suite = f", Suite {rng.randint(1, 30) * 100}" if rng.random() < 0.5 else ""
    return f"{rng.randint(10, 9899)} {rng.choice(STREETS)}{suite}\n{city}, {state} {postcode}"


def _usage_tiers(rng: random.Random) -> dict[LineKind, list[UsageTier]]:
    tiers = {}
    for kind in USAGE_KINDS:
        ceilings = rng.choice(CEILING_LADDERS)
        rates = rng.choice(RATE_LADDERS[kind])
        tiers[kind] = [
            UsageTier(usage_max=ceiling, usage_rate=Decimal(rate))
            for ceiling, rate in zip(ceilings, rates, strict=False)
        ]
    return tiers


def _impressions(rng: random.Random, tiers: list[UsageTier], typical: int) -> tuple[int, bool]:
    """A month's impressions: usually near `typical`, sometimes zero or exactly at a ceiling."""
    roll = rng.random()
    if roll < 0.05:
        return 0, False
    ceilings = sorted(tier.usage_max for tier in tiers if tier.usage_max is not None)[:2]
    if roll < 0.13 and ceilings:
        return rng.choice(ceilings), True
    return rng.randint(typical * 7 // 10, typical * 13 // 10), False


def _status(rng: random.Random, months_ago: int) -> str:
    roll = rng.random()
    unpaid, failed = {0: (0.15, 0.20), 1: (0.05, 0.08)}.get(months_ago, (0.0, 0.0))
    if roll < unpaid:
        return LegacyInvoice.Status.UNPAID
    if roll < failed:
        return LegacyInvoice.Status.FAILED
    return LegacyInvoice.Status.PAID


def legacy_demo_build(ctx: DemoContext) -> LegacyDemoData:
    """The demo's legacy rows, unsaved; the same context always builds the same rows."""
    if not 1 <= ctx.accounts <= MAX_DEMO_ACCOUNTS:
        raise ValueError(f"accounts must be between 1 and {MAX_DEMO_ACCOUNTS}, not {ctx.accounts}")
    data = LegacyDemoData(months=demo_months(today=ctx.today, months=ctx.months))
    if data.months[0] < FIRST_MONTH or data.months[-1] > LAST_MONTH:
        raise ValueError(f"demo months must lie between {FIRST_MONTH} and {LAST_MONTH}")
    names = _company_names(ctx.seed, ctx.accounts)
    for index, name in enumerate(names):
        acct_id = ACCT_ID_BASE + index + 1
        plan = PLAN_PATTERN[index % len(PLAN_PATTERN)]
        data.plans[acct_id] = plan
        _build_account(ctx, data, acct_id=acct_id, name=name, plan=plan)
    return data


def _build_account(
    ctx: DemoContext, data: LegacyDemoData, *, acct_id: int, name: str, plan: DemoPlan
) -> None:
    rng = random.Random(f"{ctx.seed}:account:{acct_id}")
    account = LegacyAccount(
        acct_id=acct_id,
        acct_name=name,
        billing_email=_email(rng, name),
        billing_address=_address(rng),
        payment_customer_id=f"cus_{_token(rng, 14)}",
        status="active",
        created=_at(ctx.today - timedelta(days=rng.randint(400, 3650)), rng),
    )
    data.accounts.append(account)

    plan_name, fee_minor = rng.choice(FLAT_PLANS)
    sub = LegacyPlanSub(
        sub_id=acct_id * 10 + 1,
        account=account,
        sub_name=f"{plan_name} platform",
        sub_invoice_line=f"Adventive platform subscription: {plan_name}",
        sub_rate=minor_to_major(fee_minor, CURRENCY),
    )
    data.plan_subs.append(sub)

    has_tiers = plan == DemoPlan.TIERED or (plan == DemoPlan.MANAGED and rng.random() < 0.5)
    tiers = _usage_tiers(rng) if has_tiers else {}
    typical = {kind: rng.randint(*VOLUME_RANGES[kind]) for kind in tiers}
    for type_index, (kind, kind_tiers) in enumerate(tiers.items()):
        data.plan_usages.extend(
            LegacyPlanUsage(
                usage_id=acct_id * 100 + type_index * 10 + tier_index,
                account=account,
                usage_type=kind.value,
                usage_max=tier.usage_max,
                usage_rate=tier.usage_rate,
            )
            for tier_index, tier in enumerate(kind_tiers)
        )

    for months_ago, month in enumerate(reversed(data.months)):
        month_rng = random.Random(f"{ctx.seed}:invoice:{acct_id}:{month:%Y-%m}")
        _build_invoice(
            data,
            rng=month_rng,
            account=account,
            sub=sub,
            tiers=tiers,
            typical=typical,
            managed=plan == DemoPlan.MANAGED,
            month=month,
            months_ago=months_ago,
        )


def _build_invoice(
    data: LegacyDemoData,
    *,
    rng: random.Random,
    account: LegacyAccount,
    sub: LegacyPlanSub,
    tiers: dict[LineKind, list[UsageTier]],
    typical: dict[LineKind, int],
    managed: bool,
    month: date,
    months_ago: int,
) -> None:
    ordinal = _month_ordinal(month)
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    invoice = LegacyInvoice(
        inv_uuid=str(uuid.uuid5(INVOICE_NAMESPACE, f"{account.acct_id}:{month:%Y-%m}")),
        account=account,
        payment_customer_id=account.payment_customer_id,
        stripe_invoice_id=f"in_1{_token(rng, 23)}" if rng.random() < 0.92 else None,
        service_month=month,
        currency=CURRENCY,
        status=_status(rng, months_ago),
        created=_at(next_month.replace(day=rng.randint(1, 3)), rng),
    )
    charges = [_Charge(LineKind.FLAT, sub.sub_invoice_line, 1, sub.sub_rate, sub.sub_rate_minor)]
    for kind, kind_tiers in tiers.items():
        quantity, at_ceiling = _impressions(rng, kind_tiers, typical[kind])
        data.lines_at_ceiling += at_ceiling
        charges.append(
            _Charge(
                kind=kind,
                description=f"{kind.value} impressions, {month:%B %Y}",
                quantity=quantity,
                rate=legacy_usage_rate(kind_tiers, quantity),
                amount_minor=legacy_usage_amount_minor(kind_tiers, quantity, CURRENCY),
            )
        )
    if account.acct_id == ROUNDING_DRIFT_ACCT_ID:
        _add_rounding_quirk(charges)
    if managed:
        for job_index in range(rng.randint(1, 3)):
            service, hourly_minor = rng.choice(MANAGED_SERVICES)
            quarter_hours = rng.randint(8, 96)
            amount_minor = quarter_hours * hourly_minor // 4
            job = LegacyManagedServiceJob(
                job_id=account.acct_id * 100_000 + ordinal * 10 + job_index,
                account=account,
                job_name=f"{service} ({Decimal(quarter_hours) / 4:f} h)",
                service_month=month,
                amount=minor_to_major(amount_minor, CURRENCY),
                created=_at(month.replace(day=rng.randint(1, 28)), rng),
            )
            data.managed_jobs.append(job)
            charges.append(_Charge(LineKind.MANAGED, job.job_name, 1, job.amount, amount_minor))

    data.lines.extend(
        LegacyInvoiceLine(
            line_id=account.acct_id * 100_000 + ordinal * 100 + line_no,
            invoice=invoice,
            line_kind=charge.kind.value,
            description=charge.description,
            quantity=charge.quantity,
            rate=charge.rate,
            amount=minor_to_major(charge.amount_minor, CURRENCY),
        )
        for line_no, charge in enumerate(charges)
    )
    invoice.total = minor_to_major(sum(charge.amount_minor for charge in charges), CURRENCY)
    data.invoices.append(invoice)


def _add_rounding_quirk(charges: list[_Charge]) -> None:
    """Bill the first non-zero usage line one cent above what its tier gives."""
    for index, charge in enumerate(charges):
        if charge.kind in USAGE_KINDS and charge.quantity:
            amount_minor = charge.amount_minor + ROUNDING_DRIFT_MINOR
            charges[index] = charge._replace(amount_minor=amount_minor)
            return


def legacy_demo_write(data: LegacyDemoData) -> None:
    """Replace the demo accounts' legacy rows with `data` in one transaction (idempotent)."""
    acct_ids = [account.acct_id for account in data.accounts]
    with transaction.atomic(using=LEGACY_ALIAS):
        LegacyInvoiceLine.objects.filter(invoice__account_id__in=acct_ids).delete()
        for model in (LegacyInvoice, LegacyManagedServiceJob, LegacyPlanUsage, LegacyPlanSub):
            model.objects.filter(account_id__in=acct_ids).delete()
        LegacyAccount.objects.filter(acct_id__in=acct_ids).delete()
        for rows in (
            data.accounts,
            data.plan_subs,
            data.plan_usages,
            data.managed_jobs,
            data.invoices,
            data.lines,
        ):
            if rows:
                type(rows[0]).objects.bulk_create(rows, batch_size=500)


@demo_step(20, "legacy billing database")
def legacy_demo(ctx: DemoContext) -> str:
    """Create the legacy schema if missing and (re)load the demo accounts, plans and invoices."""
    data = legacy_demo_build(ctx)
    with legacy_writes_allowed():
        legacy_schema_create()
        legacy_demo_write(data)
    counts = {plan: list(data.plans.values()).count(plan) for plan in DemoPlan}
    return (
        f"{len(data.accounts)} legacy accounts ({counts[DemoPlan.FLAT]} flat-only, "
        f"{counts[DemoPlan.TIERED]} tiered, {counts[DemoPlan.MANAGED]} managed services), "
        f"{len(data.invoices)} invoices {data.months[0]:%Y-%m}..{data.months[-1]:%Y-%m} "
        f"with {len(data.lines)} lines ({data.lines_at_ceiling} usage lines at a tier ceiling), "
        f"{len(data.managed_jobs)} managed jobs"
    )


from . import demo_runs  # noqa: E402, F401  (registers the reconciliation runs step, order 60)
