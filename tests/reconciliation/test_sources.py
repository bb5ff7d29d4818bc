"""The sources: a real billing cycle on the Stripe-compatible server, and sources that fail."""

import pytest
import stripe
from django.db import connections

from billing_project.classifier import LineKind
from billing_project.models import Alert, BillingEvent
from reconciliation.legacy import LEGACY_ALIAS
from reconciliation.models import ReconciliationResult, ReconciliationRun
from reconciliation.services import reconcile_run
from tests.factories import BillingAccountFactory, CohortMembershipFactory

from .conftest import AFTER_DEADLINE, FEB, feb_lines, legacy_invoice, member, stripe_invoice, ts

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

VOLUME_TIERS = [
    {"up_to": 1_000_000, "unit_amount_decimal": "0.025"},
    {"up_to": "inf", "unit_amount_decimal": "0.02"},
]


def _cycle_customer(cohort):
    """A customer subscribed on Jan 15 (anchored Feb 1) to a $499 flat price and a metered
    volume-tiered ST price, with Feb usage, billed through the Mar 1 cycle."""
    clock = stripe.test_helpers.TestClock.create(frozen_time=ts(2026, 1, 15))
    customer = stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id)
    flat_product = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    usage_product = stripe.Product.create(name="ST impressions", metadata={"kind": "ST"})
    meter = stripe.billing.Meter.create(
        display_name="ST impressions",
        event_name="st_impressions",
        default_aggregation={"formula": "sum"},
        customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
        value_settings={"event_payload_key": "value"},
    )
    flat = stripe.Price.create(
        product=flat_product.id,
        currency="usd",
        unit_amount=49_900,
        recurring={"interval": "month"},
    )
    metered = stripe.Price.create(
        product=usage_product.id,
        currency="usd",
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=VOLUME_TIERS,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": flat.id}, {"price": metered.id}],
        billing_cycle_anchor=ts(2026, 2, 1),
        proration_behavior="none",
    )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 20))
    for day, value in ((3, 400_000), (17, 834_567)):
        stripe.billing.MeterEvent.create(
            event_name="st_impressions",
            payload={"stripe_customer_id": customer.id, "value": str(value)},
            timestamp=ts(2026, 2, day),
            identifier=f"5100:2026-02-{day:02d}:ST",
        )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 3, 1, 3))
    account = BillingAccountFactory(
        acct_id=5100, stripe_customer_id=customer.id, cohort=cohort, parallel=True
    )
    CohortMembershipFactory(cohort=cohort, account=account)
    return account


def test_flat_in_advance_and_usage_in_arrears_from_a_cycle_compare_clean(server, cohort):
    account = _cycle_customer(cohort)
    # Feb: the $499 fee (on the Feb 1 invoice, in advance) and 1,234,567 impressions at the
    # volume tier of $0.20 per thousand = $246.9134 -> 24,691 cents (on the Mar 1 invoice).
    legacy_invoice(account.acct_id, {LineKind.FLAT: 49_900, LineKind.ST: 24_691})

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    result = ReconciliationResult.objects.get(run=run)
    assert run.status == ReconciliationRun.Status.CLEAN, result.__dict__
    assert result.stripe_by_kind["flat"] == 49_900
    assert result.stripe_by_kind["ST"] == 24_691
    # Two Stripe invoices carry February: the Feb 1 cycle (fee) and the Mar 1 cycle (usage).
    assert len(result.stripe_invoice_ids) == 2
    assert BillingEvent.objects.filter(name="reconcile_clean").count() == 1


def test_a_cycle_invoice_with_wrong_usage_is_drift_on_that_kind(server, cohort):
    account = _cycle_customer(cohort)
    legacy_invoice(account.acct_id, {LineKind.FLAT: 49_900, LineKind.ST: 24_692})

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    result = ReconciliationResult.objects.get(run=run)
    assert run.status == ReconciliationRun.Status.DRIFT
    assert (result.delta_minor, result.drift_kinds) == (-1, ["ST"])


@pytest.fixture
def legacy_unreachable():
    """Point the legacy alias at a closed port: connections are refused, as in an outage."""
    connection = connections[LEGACY_ALIAS]
    connection.close()
    original = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    yield
    connection.close()
    connection.settings_dict["PORT"] = original


def test_legacy_database_unreachable_is_an_error_with_an_alert(server, cohort, legacy_unreachable):
    account = member(cohort, 5201)
    stripe_invoice(server, account, feb_lines(49_900), created=ts(2026, 3, 1, 2))

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.ERROR
    assert "legacy database could not be read" in run.error
    assert run.accounts_checked == 0 and not run.results.exists()
    alert = Alert.objects.get()
    assert alert.route == Alert.Route.OPERATIONS
    assert "failed" in alert.title
    assert not BillingEvent.objects.filter(name="reconcile_clean").exists()


def test_stripe_failing_is_an_error_never_clean(server, cohort):
    account = member(cohort, 5202)
    legacy_invoice(5202, {LineKind.FLAT: 49_900})
    stripe_invoice(server, account, feb_lines(49_900), created=ts(2026, 3, 1, 2))
    server.fail_next(50, status=500, path="/v1/invoices")  # every retry of every slice fails

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.ERROR
    assert "Stripe could not be read" in run.error
    assert Alert.objects.get().route == Alert.Route.OPERATIONS
    assert not BillingEvent.objects.filter(name="reconcile_clean").exists()


def test_a_passing_stripe_failure_is_retried_and_the_run_is_clean(server, cohort):
    account = member(cohort, 5203)
    legacy_invoice(5203, {LineKind.FLAT: 49_900})
    stripe_invoice(server, account, feb_lines(49_900), created=ts(2026, 3, 1, 2))
    server.fail_next(1, status=500, path="/v1/invoices")

    run = reconcile_run(run_date=AFTER_DEADLINE).run

    assert run.status == ReconciliationRun.Status.CLEAN


def test_zero_accounts_checked_while_members_exist_is_an_error(server, cohort):
    member(cohort, 5204, billing_owner="legacy")

    run = reconcile_run(run_date=AFTER_DEADLINE, cohort_number=cohort.number).run

    assert run.status == ReconciliationRun.Status.ERROR
    assert "1 cohort members" in run.error
    assert Alert.objects.get().route == Alert.Route.OPERATIONS


def test_service_month_is_the_month_before_the_run_date(server, cohort):
    run = reconcile_run(run_date=AFTER_DEADLINE).run
    assert run.service_month == FEB
    assert run.status == ReconciliationRun.Status.CLEAN
    assert run.accounts_checked == 0
    # Nothing was checked: nothing to call clean.
    assert not BillingEvent.objects.filter(name="reconcile_clean").exists()
