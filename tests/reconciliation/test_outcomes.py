"""A run's verdicts: clean, drift (amounts, missing sides), pending, and what each records."""

import pytest

from billing_project.classifier import LineKind
from billing_project.models import Alert, BillingEvent
from reconciliation.models import DriftRecord, ReconciliationResult, ReconciliationRun
from reconciliation.services import reconcile_run

from .conftest import (
    AFTER_DEADLINE,
    BEFORE_DEADLINE,
    FEB,
    feb_lines,
    legacy_invoice,
    member,
    stripe_invoice,
    ts,
)

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

MAR_1 = ts(2026, 3, 1, 2)


def test_exact_match_is_clean_and_records_reconcile_clean(server, cohort):
    for acct_id, flat, st in ((5001, 49_900, 12_345), (5002, 14_900, 0)):
        account = member(cohort, acct_id)
        legacy_invoice(acct_id, {LineKind.FLAT: flat, LineKind.ST: st} if st else {"flat": flat})
        stripe_invoice(server, account, feb_lines(flat, st), created=MAR_1)

    outcome = reconcile_run(run_date=AFTER_DEADLINE)

    run = outcome.run
    assert run.status == ReconciliationRun.Status.CLEAN
    assert run.service_month == FEB
    assert (run.accounts_checked, run.accounts_clean, run.accounts_drift) == (2, 2, 0)
    result = ReconciliationResult.objects.get(run=run, acct_id=5001)
    assert result.stripe_total_minor == result.legacy_total_minor == 62_245
    assert result.stripe_by_kind["ST"] == result.legacy_by_kind["ST"] == 12_345
    assert len(result.stripe_invoice_ids) == 1 and result.stripe_invoice_ids[0].startswith("in_")
    assert len(result.legacy_inv_uuids) == 1
    clean = BillingEvent.objects.get(name="reconcile_clean")
    assert clean.dimensions["cohort"] == 2
    assert clean.dimensions["accounts_checked"] == 2
    assert not BillingEvent.objects.filter(name="reconcile_drift").exists()
    assert not DriftRecord.objects.exists()
    assert not Alert.objects.exists()


def test_one_cent_off_is_drift_with_one_record_naming_the_kind(server, cohort):
    clean = member(cohort, 5001)
    legacy_invoice(5001, {LineKind.FLAT: 49_900})
    stripe_invoice(server, clean, feb_lines(49_900), created=MAR_1)
    off = member(cohort, 5002)
    legacy_invoice(5002, {LineKind.FLAT: 49_900, LineKind.ST: 4_000})
    stripe_invoice(server, off, feb_lines(49_900, 4_001), created=MAR_1)

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.DRIFT
    assert (run.accounts_clean, run.accounts_drift) == (1, 1)
    record = DriftRecord.objects.get()
    assert (record.acct_id, record.service_month, record.delta_minor) == (5002, FEB, 1)
    assert record.kinds == ["ST"]
    assert record.reason == "amounts_differ"
    assert record.status == DriftRecord.Status.OPEN
    assert [e.action for e in record.events.all()] == ["detected"]
    point = BillingEvent.objects.get(name="reconcile_drift")
    assert point.dimensions["account_id"] == 5002
    assert (point.dimensions["stripe_total"], point.dimensions["legacy_total"]) == (53_901, 53_900)
    assert point.dimensions["delta"] == 1
    alert = Alert.objects.get()
    assert alert.route == Alert.Route.BILLING
    assert "1 account(s)" in alert.title and "5002" in alert.body
    # The cohort had a drifting account: no clean datapoint for it.
    assert not BillingEvent.objects.filter(name="reconcile_clean").exists()


def test_stripe_invoice_without_legacy_row_after_deadline_is_drift(server, cohort):
    account = member(cohort, 5003)
    stripe_invoice(server, account, feb_lines(49_900), created=MAR_1)

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.DRIFT
    record = DriftRecord.objects.get()
    assert (record.reason, record.delta_minor, record.legacy_total_minor) == (
        "missing_legacy",
        49_900,
        0,
    )
    assert record.legacy_inv_uuids == [] and len(record.stripe_invoice_ids) == 1


def test_legacy_row_without_stripe_lines_after_deadline_is_drift(server, cohort):
    member(cohort, 5004)
    legacy_invoice(5004, {LineKind.FLAT: 0})

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.DRIFT
    record = DriftRecord.objects.get()
    # A missing side is drift even when the other side is zero.
    assert (record.reason, record.delta_minor) == ("missing_stripe", 0)


@pytest.mark.parametrize("side", ["legacy", "stripe"])
def test_missing_side_before_the_deadline_is_pending(server, cohort, side):
    account = member(cohort, 5005)
    if side == "legacy":
        legacy_invoice(5005, {LineKind.FLAT: 49_900})
    else:
        stripe_invoice(server, account, feb_lines(49_900), created=MAR_1)

    run = reconcile_run(run_date=BEFORE_DEADLINE).run

    assert run.status == ReconciliationRun.Status.PENDING
    assert run.accounts_pending == 1
    assert not DriftRecord.objects.exists()
    assert not BillingEvent.objects.filter(name__startswith="reconcile_").exists()


def test_lines_of_other_months_and_legacy_manual_invoices_are_not_counted(server, cohort):
    account = member(cohort, 5006)
    legacy_invoice(5006, {LineKind.FLAT: 49_900})
    # The cycle invoice at Mar 1 carries Feb usage and the March fee (in advance).
    lines = feb_lines(49_900)
    lines.append(type(lines[0])(LineKind.FLAT, 49_900, ts(2026, 3, 1), ts(2026, 4, 1)))
    stripe_invoice(server, account, lines, created=MAR_1)
    # The legacy system's own invoice mirrored into Stripe (no acct_id metadata): not ours.
    stripe_invoice(server, account, feb_lines(77_700), created=ts(2026, 3, 2), ours=False)

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.CLEAN
    result = ReconciliationResult.objects.get(run=run)
    assert result.stripe_total_minor == 49_900
    assert len(result.stripe_invoice_ids) == 1


def test_legacy_only_accounts_are_not_compared(server, cohort):
    member(cohort, 5007, billing_owner="legacy")
    member(cohort, 5008)
    legacy_invoice(5008, {LineKind.FLAT: 100})

    run = reconcile_run(run_date=BEFORE_DEADLINE).run

    assert list(run.results.values_list("acct_id", flat=True)) == [5008]


def test_a_migrated_account_needs_no_legacy_invoice_but_still_its_stripe_lines(server, cohort):
    migrated = member(cohort, 5009, billing_owner="stripe")
    stripe_invoice(server, migrated, feb_lines(49_900), created=MAR_1)
    member(cohort, 5010, billing_owner="stripe")  # nothing billed on Stripe: drift

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    results = {r.acct_id: r for r in run.results.all()}
    assert (results[5009].status, results[5009].reason) == ("clean", "stripe_only")
    assert (results[5010].status, results[5010].reason) == ("drift", "missing_both")
    assert list(DriftRecord.objects.values_list("acct_id", flat=True)) == [5010]
