"""The reconciliation admin: runs with badges and the per-cohort chart, results, drift records
followed up through actions (never edited or deleted directly)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing_project.classifier import LineKind
from reconciliation.models import DriftRecord, ReconciliationRun
from reconciliation.periods import next_month, run_period
from reconciliation.services import reconcile_run

from .conftest import feb_lines, legacy_invoice, member, month_lines, stripe_invoice, ts

pytestmark = [pytest.mark.django_db(databases=["default", "legacy"]), pytest.mark.calendar]


@pytest.fixture
def history(server, cohort):
    """Runs on the last three days for cohort 2 (each for the month before its day): one
    account drifts by a cent every time, one is clean."""
    today = timezone.now().date()
    days = [today - timedelta(days=back) for back in (2, 1, 0)]
    good, off = member(cohort, 5501), member(cohort, 5502)
    for month in sorted({run_period(day).service_month for day in days}):
        billed = ts(*next_month(month).timetuple()[:3], 2)
        legacy_invoice(5501, {LineKind.FLAT: 49_900}, month=month)
        stripe_invoice(server, good, month_lines(month, 49_900), created=billed)
        legacy_invoice(5502, {LineKind.FLAT: 49_900, LineKind.ST: 4_000}, month=month)
        stripe_invoice(server, off, month_lines(month, 49_900, 4_001), created=billed)
    return [reconcile_run(run_date=day).run for day in days]


def _changelists():
    return [
        reverse(f"admin:reconciliation_{name}_changelist")
        for name in ("reconciliationrun", "reconciliationresult", "driftrecord")
    ]


@pytest.mark.parametrize("url", _changelists())
def test_changelists_render_with_bounded_queries(
    admin_client, history, url, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert admin_client.get(url, {"q": "5502"}).status_code == 200


def test_run_page_shows_badges_and_a_drift_chart_per_cohort(admin_client, history):
    response = admin_client.get(reverse("admin:reconciliation_reconciliationrun_changelist"))
    html = response.content.decode()
    assert [run.status for run in history] == ["drift"] * 3
    assert 'class="recon-badge" data-status="' in html
    assert 'data-cohort="Cohort 2"' in html
    assert 'data-drift-days="3"' in html
    assert "<svg" in html and "<script" not in html.split('id="drift-chart"')[1].split("</svg>")[0]


def test_detail_pages_render(admin_client, history):
    run = history[-1]
    record = DriftRecord.objects.first()
    for url in (
        reverse("admin:reconciliation_reconciliationrun_change", args=[run.pk]),
        reverse("admin:reconciliation_reconciliationresult_change", args=[run.results.first().pk]),
    ):
        assert admin_client.get(url).status_code == 200
    if record is not None:
        page = admin_client.get(
            reverse("admin:reconciliation_driftrecord_change", args=[record.pk])
        )
        assert page.status_code == 200
        assert b"History" in page.content


@pytest.fixture
def drift_record(server, cohort):
    off = member(cohort, 5503)
    legacy_invoice(5503, {LineKind.FLAT: 49_900, LineKind.ST: 4_000})
    stripe_invoice(server, off, feb_lines(49_900, 4_001), created=ts(2026, 3, 1, 2))
    from datetime import date

    reconcile_run(run_date=date(2026, 3, 15))
    return DriftRecord.objects.get()


def test_resolving_asks_for_a_note_and_records_who(admin_client, admin_user, drift_record):
    url = reverse("admin:reconciliation_driftrecord_changelist")
    data = {"action": "mark_resolved", "_selected_action": [drift_record.pk]}
    ask = admin_client.post(url, data)
    assert ask.status_code == 200
    assert b"Note (required)" in ask.content

    refused = admin_client.post(url, {**data, "apply": "yes", "note": " "}, follow=True)
    assert b"a note is required" in refused.content
    drift_record.refresh_from_db()
    assert drift_record.status == "open"

    admin_client.post(url, {**data, "apply": "yes", "note": "tier fixed in catalog"})
    drift_record.refresh_from_db()
    assert drift_record.status == "resolved"
    assert drift_record.note == "tier fixed in catalog"
    assert drift_record.status_changed_by == admin_user
    assert drift_record.events.last().by_name == admin_user.username


def test_records_cannot_be_deleted_or_edited_in_the_admin(admin_client, drift_record):
    delete = reverse("admin:reconciliation_driftrecord_delete", args=[drift_record.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert DriftRecord.objects.filter(pk=drift_record.pk).exists()
    run = ReconciliationRun.objects.get()
    change = reverse("admin:reconciliation_reconciliationrun_change", args=[run.pk])
    admin_client.post(change, {"status": "clean"})
    run.refresh_from_db()
    assert run.status == "drift"
