from datetime import date

from exports.history import history_export
from exports.models import HistoryMonth
from exports.pdfs import legacy_pdfs_copy
from exports.selectors import cohort_export_coverage
from reconciliation.legacy import LegacyInvoice
from tests.factories import BillingAccountFactory, CohortFactory

from .conftest import LEGACY_DB

pytestmark = LEGACY_DB


def _cohort_with(acct_ids: list[int], number: int = 2):
    cohort = CohortFactory(number=number)
    for acct_id in acct_ids:
        BillingAccountFactory(acct_id=acct_id, cohort=cohort)
    return cohort


def test_nothing_exported_lists_every_month_and_pdf_per_member(legacy_history):
    _cohort_with([1001, 1002])

    coverage = cohort_export_coverage(2)

    assert coverage.covered is False
    first = coverage.members[0]
    assert (first.acct_id, first.invoices, first.covered) == (1001, 4, False)
    assert first.missing[:4] == [
        "history 2025-11: not exported",
        "history 2025-12: not exported",
        "history 2026-01: not exported",
        "history 2026-02: not exported",
    ]
    assert len(first.missing) == 8 and first.missing[4].endswith("(2025-11): not copied")


def test_cohort_is_covered_once_history_is_verified_and_pdfs_copied_except_one_missing(
    legacy_history, s3_pdf_source, django_assert_max_num_queries
):
    _cohort_with([1001, 1002, 1003])
    absent = LegacyInvoice.objects.filter(account_id=1003).order_by("inv_uuid")[0]
    for invoice in LegacyInvoice.objects.exclude(pk=absent.pk):
        s3_pdf_source(invoice.account_id, invoice.inv_uuid)
    history_export()
    legacy_pdfs_copy()

    with django_assert_max_num_queries(6):
        coverage = cohort_export_coverage(2)

    assert coverage.covered is False
    assert [m.covered for m in coverage.members] == [True, True, False]
    assert coverage.missing == {
        1003: [f"pdf {absent.inv_uuid} ({absent.service_month:%Y-%m}): Missing at source"]
    }


def test_an_unverified_or_outdated_month_is_not_coverage(legacy_history, s3_pdf_source):
    _cohort_with([1001])
    for invoice in LegacyInvoice.objects.all():
        s3_pdf_source(invoice.account_id, invoice.inv_uuid)
    history_export()
    legacy_pdfs_copy()
    HistoryMonth.objects.filter(month=date(2025, 12, 1)).update(verified_at=None)
    HistoryMonth.objects.filter(month=date(2026, 1, 1)).update(invoices=1)

    member = cohort_export_coverage(2).members[0]

    assert member.missing == [
        "history 2025-12: export not verified",
        "history 2026-01: 6 invoices in the legacy database, 1 in the export",
    ]
