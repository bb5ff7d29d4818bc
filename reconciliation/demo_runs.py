"""Demo step: reconciliation runs an operator can look at — a clean cohort, one drift and one
error run.

Cohorts 1 (flat-only) and 2 (flat + tiered) are reconciled for a finished service month. Their
Stripe side is built on the Stripe-compatible server from each account's plan: the flat fee,
usage priced by the account's tiers (as Stripe's volume prices bill it), managed jobs as they
were billed. The legacy demo billed account `ROUNDING_DRIFT_ACCT_ID` one cent above its own
tiers, so cohort 2's run finds exactly that drift. Cohort 3 is only planned (its accounts are
still billed by the legacy service): reconciling it finds members but no account to check, an
error. Runs only when `STRIPE_API_BASE` points at a Stripe-compatible test server; a rerun keeps
what exists (the Stripe invoices are keyed by account and month, the runs by date and scope).
"""

from datetime import UTC, date, datetime, timedelta

import stripe
from django.conf import settings

from billing_project.classifier import USAGE_KINDS, LineKind
from billing_project.demo import DemoContext, demo_step
from billing_project.money import major_to_minor
from cohorts.models import Cohort
from invoices.demo import _seed_customer as seed_customer_on_clock
from metering.legacy_pricing import UsageTier, legacy_usage_amount_minor
from metering.models import BillingAccount

from .legacy import LegacyInvoiceLine, LegacyPlanUsage
from .models import ReconciliationRun
from .periods import legacy_deadline_days, month_start, next_month, previous_month, run_period
from .services import AlreadyRan, reconcile_run

DEMO_KEY = "reconciliation_demo"


def _run_date(today: date) -> date:
    """The latest day whose service month is past its deadline by `today`."""
    day = month_start(today) + timedelta(days=legacy_deadline_days())
    return (
        day
        if day <= today
        else previous_month(month_start(today)) + timedelta(days=legacy_deadline_days())
    )


def _timestamp(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


def _stripe_charges(acct_id: int, month: date) -> list[tuple[str, str, int]]:
    """(kind, description, cents) as Stripe bills the account's month from its plan."""
    tiers: dict[str, list[UsageTier]] = {}
    for usage in LegacyPlanUsage.objects.filter(account_id=acct_id):
        tiers.setdefault(usage.usage_type, []).append(
            UsageTier(usage_max=usage.usage_max, usage_rate=usage.usage_rate)
        )
    charges = []
    lines = LegacyInvoiceLine.objects.filter(
        invoice__account_id=acct_id, invoice__service_month=month
    ).select_related("invoice")
    for line in lines:
        kind = LineKind(line.line_kind)
        if kind in USAGE_KINDS:
            amount = legacy_usage_amount_minor(tiers[kind.value], line.quantity, "usd")
        else:
            amount = major_to_minor(line.amount, line.invoice.currency)
        charges.append((kind.value, line.description, amount))
    return charges


def _bill_month(account: BillingAccount, month: date, clock_id: str) -> bool:
    """One paid Stripe invoice with the account's month as invoice items; False if none."""
    charges = _stripe_charges(account.acct_id, month)
    if not charges:
        return False
    seed_customer_on_clock(account, clock_id)
    start, end = _timestamp(month), _timestamp(next_month(month))
    for kind, description, amount in charges:
        stripe.InvoiceItem.create(
            customer=account.stripe_customer_id,
            amount=amount,
            currency="usd",
            description=description,
            period={"start": start, "end": end},
            metadata={"kind": kind, "acct_id": str(account.acct_id)},
        )
    invoice = stripe.Invoice.create(
        customer=account.stripe_customer_id,
        pending_invoice_items_behavior="include",
        collection_method="send_invoice",
        days_until_due=30,
        metadata={DEMO_KEY: f"{account.acct_id}:{month:%Y-%m}", "acct_id": str(account.acct_id)},
    )
    stripe.Invoice.finalize_invoice(invoice.id)
    stripe.Invoice.pay(invoice.id, paid_out_of_band=True)
    return True


def _reconcile(run_date: date, cohort: int) -> str:
    try:
        run = reconcile_run(
            run_date=run_date, cohort_number=cohort, trigger=ReconciliationRun.Trigger.DEMO
        ).run
        verb = "ran"
    except AlreadyRan as exc:
        run, verb = exc.run, "kept"
    return f"cohort {cohort} {verb} {run.status}"


@demo_step(60, "reconciliation")
def reconciliation_demo(ctx: DemoContext) -> str:
    """Bill cohorts 1 and 2's finished month on the Stripe-compatible server, reconcile each,
    and reconcile cohort 3, which is not under parallel run (an error run)."""
    if not settings.STRIPE_API_BASE or settings.STRIPE_LIVE_MODE:
        return "skipped: STRIPE_API_BASE does not point at a Stripe-compatible test server"
    try:
        stripe.Account.retrieve()
    except stripe.StripeError as exc:
        return f"skipped: the Stripe-compatible server did not answer ({exc})"
    run_date = _run_date(ctx.today)
    period = run_period(run_date)
    month = period.service_month
    cohort_2 = Cohort.objects.filter(number=2).first()
    if cohort_2 is None:
        return "skipped: no cohort 2 (run the cohorts step)"
    if cohort_2.status != Cohort.Status.PARALLEL_RUN:
        cohort_2.status = Cohort.Status.PARALLEL_RUN
        cohort_2.cycle_start, cohort_2.cycle_end = month, next_month(month) - timedelta(days=1)
        cohort_2.save(update_fields=["status", "cycle_start", "cycle_end", "updated_at"])
    BillingAccount.objects.filter(cohort=cohort_2).update(
        billing_owner=BillingAccount.BillingOwner.PARALLEL
    )
    billed = {
        invoice.metadata.get(DEMO_KEY)
        for invoice in stripe.Invoice.list(
            created={"gte": period.window_start, "lt": period.window_end}, limit=100
        ).auto_paging_iter()
    }
    clock = stripe.test_helpers.TestClock.create(
        frozen_time=_timestamp(next_month(month), 2), name="reconciliation demo"
    )
    new = 0
    for account in BillingAccount.objects.filter(
        cohort__number__in=(1, 2), billing_owner=BillingAccount.BillingOwner.PARALLEL
    ).order_by("acct_id"):
        if account.stripe_customer_id and f"{account.acct_id}:{month:%Y-%m}" not in billed:
            new += _bill_month(account, month, clock.id)
    results = [_reconcile(run_date, cohort) for cohort in (1, 2, 3)]
    return (
        f"{month:%Y-%m} billed on Stripe for {new} more accounts; reconciled on {run_date}: "
        + ", ".join(results)
    )
