"""What the cohort checks read from the other apps: one small function per source, each calling
that app's own service or selector, so a change there is rewired here and nowhere else."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from djstripe.models import Event

from exports.selectors import CohortCoverage, MemberCoverage, accounts_export_coverage
from exports.selectors import cohort_export_coverage as _cohort_export_coverage
from invoices.models import EmailAttempt, InvoiceDelivery
from metering.models import BillingAccount, SubscriptionRecord
from metering.provisioning import ProvisionReport, subscriptions_provision
from metering.usage_quantity import CheckStatus, QuantityLine, usage_quantity_check
from metering.verification import VerifyReport, catalog_verify
from reconciliation.legacy import LegacyAccount, LegacyInvoice, LegacyPlanUsage
from reconciliation.models import DriftRecord, ReconciliationResult, ReconciliationRun

# --- metering: catalog, subscriptions, usage ----------------------------------------------------

USAGE_MATCH = CheckStatus.MATCH  # Stripe holds exactly what our ledger holds


def catalog_report(cohort_number: int) -> VerifyReport:
    """metering's read-only `catalog_verify` for the cohort's accounts."""
    return catalog_verify(cohort=cohort_number)


def subscriptions_of(account_ids: Iterable[int]) -> dict[int, SubscriptionRecord]:
    """The subscription metering provisioned for each account (by account pk)."""
    return {
        record.account_id: record
        for record in SubscriptionRecord.objects.filter(
            account_id__in=list(account_ids)
        ).select_related("account")
    }


def provision(cohort_number: int, *, anchor: datetime) -> ProvisionReport:
    """metering's idempotent `subscriptions_provision` for the cohort, anchored on `anchor`."""
    return subscriptions_provision(cohort=cohort_number, anchor=anchor)


def metered_types(acct_ids: Iterable[int]) -> dict[int, set[str]]:
    """Per legacy account, the usage types its plan has tiers for (what must be metered)."""
    types: dict[int, set[str]] = {}
    rows = LegacyPlanUsage.objects.filter(account_id__in=list(acct_ids)).values_list(
        "account_id", "usage_type"
    )
    for acct_id, usage_type in rows.distinct():
        types.setdefault(acct_id, set()).add(usage_type)
    return types


def usage_quantities(accounts: list[BillingAccount], months: Iterable[date]) -> list[QuantityLine]:
    """metering's read-only quantity check (our ledger vs Stripe's meter event summaries)."""
    return [
        line for month in months for line in usage_quantity_check(month=month, accounts=accounts)
    ]


# --- invoices: webhook processing, PDFs, emails, delivery states --------------------------------


@dataclass(frozen=True)
class FinalizedTrial:
    event_id: str
    invoice_id: str
    delivery_id: int | None
    delivery_state: str


def test_mode_finalized(customer_ids: Iterable[str]) -> list[FinalizedTrial]:
    """Test-mode `invoice.finalized` events for these customers and the delivery each made."""
    customers = set(customer_ids)
    events = Event.objects.filter(type="invoice.finalized", livemode=False).order_by("-created")
    found = []
    for event in events.only("id", "data")[:500]:
        invoice = (event.data or {}).get("object") or {}
        if invoice.get("customer") in customers:
            found.append((event.id, invoice.get("id", "")))
    deliveries = {
        d.stripe_invoice_id: d
        for d in InvoiceDelivery.objects.filter(stripe_invoice_id__in=[i for _, i in found])
    }
    return [
        FinalizedTrial(
            event_id=event_id,
            invoice_id=invoice_id,
            delivery_id=deliveries[invoice_id].pk if invoice_id in deliveries else None,
            delivery_state=deliveries[invoice_id].state if invoice_id in deliveries else "",
        )
        for event_id, invoice_id in found
    ]


def deliveries_of(account_ids: Iterable[int], *, since: date | None = None):
    """Deliveries of these accounts' invoices (finalized from `since`, when given)."""
    deliveries = InvoiceDelivery.objects.filter(account_id__in=list(account_ids)).select_related(
        "account"
    )
    if since is not None:
        deliveries = deliveries.filter(finalized_at__date__gte=since)
    return deliveries.order_by("account__acct_id", "id")


def sent_emails_of(account_ids: Iterable[int]):
    """Emails Mailgun accepted for these accounts' invoices, newest first."""
    return (
        EmailAttempt.objects.filter(
            delivery__account_id__in=list(account_ids),
            status=EmailAttempt.Status.SENT,
        )
        .exclude(mailgun_message_id="")
        .select_related("delivery__account")
        .order_by("-sent_at", "-id")
    )


def failed_delivery_counts(cohort_ids: Iterable[int]) -> dict[int, int]:
    """Failed (or bounced) deliveries per cohort pk, for the board."""
    counts: dict[int, int] = {}
    rows = InvoiceDelivery.objects.filter(
        account__cohort_id__in=list(cohort_ids),
        state__in=(
            InvoiceDelivery.State.FAILED,
            InvoiceDelivery.State.BOUNCED,
            InvoiceDelivery.State.COMPLAINED,
        ),
    ).values_list("account__cohort_id", flat=True)
    for cohort_id in rows:
        counts[cohort_id] = counts.get(cohort_id, 0) + 1
    return counts


# --- reconciliation: runs per day, drift records ------------------------------------------------


@dataclass
class ReconDay:
    day: date
    status: str  # clean / drift / pending / error / running / missing
    run_id: int | None = None
    scope: str = ""
    trigger: str = ""


def reconciliation_days(cohort_number: int, start: date, end: date) -> dict[date, ReconDay]:
    """The cohort's reconciliation status for each day from `start` to `end`.

    A day counts the latest attempt of its `cohort:<n>` run; without one, the latest attempt of
    its `all` run, judged only on this cohort's results (no result for the cohort = missing).
    Scheduled and backfilled runs count alike."""
    runs = ReconciliationRun.objects.filter(
        run_date__gte=start, run_date__lte=end, scope_key__in=(f"cohort:{cohort_number}", "all")
    ).values_list("id", "run_date", "scope_key", "attempt", "status", "trigger")
    latest: dict[tuple[date, str], tuple] = {}
    for row in runs:
        key = (row[1], row[2])
        if key not in latest or latest[key][3] < row[3]:
            latest[key] = row
    wide_ids = [row[0] for (_, scope), row in latest.items() if scope == "all"]
    wide: dict[int, set[str]] = {}
    for run_id, status in ReconciliationResult.objects.filter(
        run_id__in=wide_ids, cohort_number=cohort_number
    ).values_list("run_id", "status"):
        wide.setdefault(run_id, set()).add(status)
    days: dict[date, ReconDay] = {}
    day = start
    while day <= end:
        own = latest.get((day, f"cohort:{cohort_number}"))
        every = latest.get((day, "all"))
        if own is not None:
            days[day] = ReconDay(day, own[4], own[0], own[2], own[5])
        elif every is not None:
            days[day] = ReconDay(day, _wide_status(every[4], wide.get(every[0])), every[0], "all")
            days[day].trigger = every[5]
        else:
            days[day] = ReconDay(day, "missing")
        day = date.fromordinal(day.toordinal() + 1)
    return days


def _wide_status(run_status: str, statuses: set[str] | None) -> str:
    if run_status in (ReconciliationRun.Status.ERROR, ReconciliationRun.Status.RUNNING):
        return run_status
    if not statuses:
        return "missing"
    for status in ("drift", "pending"):
        if status in statuses:
            return status
    return "clean"


def open_drift(cohort_number: int | None = None):
    """Drift records not yet resolved or explained (one cohort's, when given)."""
    records = DriftRecord.objects.filter(
        status__in=(DriftRecord.Status.OPEN, DriftRecord.Status.INVESTIGATING)
    )
    if cohort_number is not None:
        records = records.filter(cohort_number=cohort_number)
    return records.order_by("acct_id", "service_month")


def legacy_paid_invoice_months(stripe_invoice_ids: Iterable[str]) -> dict[str, date]:
    """Service month of each legacy invoice that lives in Stripe as a manual invoice."""
    return dict(
        LegacyInvoice.objects.filter(stripe_invoice_id__in=list(stripe_invoice_ids)).values_list(
            "stripe_invoice_id", "service_month"
        )
    )


# --- exports: history coverage --------------------------------------------------------------


def cohort_export_coverage(cohort_number: int) -> CohortCoverage:
    """exports' coverage of the cohort: verified history export and copied PDFs per member."""
    return _cohort_export_coverage(cohort_number)


def all_export_coverage() -> list[MemberCoverage]:
    """exports' coverage of every legacy account (for retirement readiness)."""
    return accounts_export_coverage(list(LegacyAccount.objects.values_list("acct_id", flat=True)))
