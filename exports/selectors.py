"""Reads for the cohort checklist and the admin: is a cohort's history safely exported?"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count

from metering.models import BillingAccount
from reconciliation.legacy import LegacyInvoice

from .history_rows import month_after
from .models import ExportRun, HistoryMonth, LegacyPdfCopy

PDF_DONE = (LegacyPdfCopy.Status.COPIED, LegacyPdfCopy.Status.PRESENT)


@dataclass(frozen=True)
class MemberCoverage:
    """One account: covered when every month it was invoiced in is in a verified export
    matching the database, and every one of its legacy PDFs is in R2."""

    acct_id: int
    invoices: int
    covered: bool
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CohortCoverage:
    cohort: int
    covered: bool
    members: list[MemberCoverage] = field(default_factory=list)

    @property
    def missing(self) -> dict[int, list[str]]:
        return {member.acct_id: member.missing for member in self.members if member.missing}


def cohort_acct_ids(cohort_number: int) -> list[int]:
    """Legacy account ids of the accounts currently in cohort `cohort_number`."""
    return list(
        BillingAccount.objects.filter(cohort__number=cohort_number)
        .order_by("acct_id")
        .values_list("acct_id", flat=True)
    )


def _month_problems(
    months: set[date], history: dict[date, HistoryMonth], db_counts: Counter
) -> dict[date, str]:
    problems = {}
    for month in months:
        label = f"{month:%Y-%m}"
        record = history.get(month)
        if record is None:
            problems[month] = f"history {label}: not exported"
        elif record.verified_at is None:
            problems[month] = f"history {label}: export not verified"
        elif record.invoices != db_counts[month]:
            problems[month] = (
                f"history {label}: {db_counts[month]} invoices in the legacy database, "
                f"{record.invoices} in the export"
            )
    return problems


def accounts_export_coverage(acct_ids: list[int]) -> list[MemberCoverage]:
    """Coverage of each account in `acct_ids` (five queries whatever the number)."""
    invoices: dict[int, list[tuple[str, date]]] = defaultdict(list)
    for inv_uuid, acct_id, service_month in LegacyInvoice.objects.filter(
        account_id__in=acct_ids
    ).values_list("inv_uuid", "account_id", "service_month"):
        invoices[acct_id].append((inv_uuid, service_month.replace(day=1)))
    months = {month for rows in invoices.values() for _, month in rows}
    db_counts: Counter = Counter()
    if months:
        first, last = min(months), max(months)
        for service_month, count in (
            LegacyInvoice.objects.filter(
                service_month__gte=first, service_month__lt=month_after(last)
            )
            .values_list("service_month")
            .annotate(count=Count("inv_uuid"))
            .order_by()
        ):
            db_counts[service_month.replace(day=1)] += count
    history = {record.month: record for record in HistoryMonth.objects.filter(month__in=months)}
    month_problems = _month_problems(months, history, db_counts)
    copies = {
        copy.inv_uuid: copy
        for copy in LegacyPdfCopy.objects.filter(acct_id__in=acct_ids).only("inv_uuid", "status")
    }
    result = []
    for acct_id in acct_ids:
        missing = sorted({month_problems[m] for _, m in invoices[acct_id] if m in month_problems})
        for inv_uuid, month in sorted(invoices[acct_id], key=lambda row: (row[1], row[0])):
            copy = copies.get(inv_uuid)
            if copy is None:
                missing.append(f"pdf {inv_uuid} ({month:%Y-%m}): not copied")
            elif copy.status not in PDF_DONE:
                missing.append(f"pdf {inv_uuid} ({month:%Y-%m}): {copy.get_status_display()}")
        result.append(
            MemberCoverage(
                acct_id=acct_id,
                invoices=len(invoices[acct_id]),
                covered=not missing,
                missing=missing,
            )
        )
    return result


def cohort_export_coverage(cohort_number: int) -> CohortCoverage:
    """Is every member of cohort N covered by a verified history export and copied PDFs?"""
    members = accounts_export_coverage(cohort_acct_ids(cohort_number))
    return CohortCoverage(
        cohort=cohort_number,
        covered=all(member.covered for member in members),
        members=members,
    )


def export_run_list(*, kind: str | None = None, limit: int = 50) -> list[ExportRun]:
    queryset = ExportRun.objects.all()
    if kind:
        queryset = queryset.filter(kind=kind)
    return list(queryset[:limit])
