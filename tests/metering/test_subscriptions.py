from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
import stripe as stripe_lib
from django.core.management import call_command
from django.core.management.base import CommandError

from metering.catalog_import import catalog_import
from metering.models import SubscriptionRecord
from metering.provisioning import subscriptions_provision
from metering.usage_types import METER_EVENT_NAMES
from metering.verification import catalog_verify
from reconciliation.legacy import LegacyAccount, LegacyPlanSub, LegacyPlanUsage
from tests import factories

from .conftest import both_databases, make_plan_account, seed_customer

LADDER = [(1_000_000, "2.50"), (5_000_000, "2.00"), (None, "1.10")]
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


def _ts(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.fixture
def clock(stripe):
    return stripe_lib.test_helpers.TestClock.create(frozen_time=_ts(2025, 12, 20))


@pytest.fixture
def cohort():
    return factories.CohortFactory(number=2, parallel_run=True)  # cycle_start 2026-01-01


@pytest.fixture
def account(stripe, clock, cohort):
    account = make_plan_account(
        acct_id=701, cohort=cohort, sub_rates=("249.00",), tiers={"ST": LADDER, "CV": LADDER}
    )
    seed_customer(stripe, account.stripe_customer_id, clock=clock.id)
    catalog_import(cohort=2)
    return account


@both_databases
def test_provisioning_anchors_on_the_cohorts_first_day_with_flat_and_metered_items(stripe, account):
    report = subscriptions_provision(cohort=2)
    assert report.errors == [] and len(report.created) == 1
    record = SubscriptionRecord.objects.get(account=account)
    subscription = stripe.store.get("subscription", record.stripe_subscription_id)
    assert subscription["billing_cycle_anchor"] == int(JAN_1.timestamp())
    assert record.billing_cycle_anchor == JAN_1
    assert subscription["metadata"]["acct_id"] == "701"
    kinds = sorted(item["metadata"]["kind"] for item in subscription["items"]["data"])
    assert kinds == ["CV", "ST", "flat"]
    # no default payment method and no legacy Stripe invoice: paid by link, like legacy
    assert subscription["collection_method"] == "send_invoice"
    assert subscription["days_until_due"] == 30
    first = stripe.store.get("invoice", subscription["latest_invoice"])
    assert first["amount_due"] == 0  # proration_behavior=none: nothing before the anchor
    assert {i["item"] for i in record.items} == {i["id"] for i in subscription["items"]["data"]}


@both_databases
def test_provisioning_twice_creates_one_subscription(stripe, account):
    subscriptions_provision(cohort=2)
    report = subscriptions_provision(cohort=2)
    assert report.created == [] and len(report.skipped) == 1
    assert len(stripe.store.all("subscription")) == 1


@both_databases
def test_a_subscription_created_but_not_recorded_is_recorded_not_duplicated(stripe, account):
    subscriptions_provision(cohort=2)
    SubscriptionRecord.objects.all().delete()
    report = subscriptions_provision(cohort=2)
    assert report.created == [] and len(report.adopted) == 1
    assert len(stripe.store.all("subscription")) == 1


@both_databases
def test_dry_run_plans_without_creating(stripe, account):
    out = StringIO()
    call_command("provision_subscriptions", "--cohort", "2", "--dry-run", stdout=out)
    assert "would subscribe account 701: flat+ST+CV, send_invoice" in out.getvalue()
    assert stripe.store.all("subscription") == []
    assert not SubscriptionRecord.objects.exists()


@both_databases
def test_an_account_whose_prices_are_not_imported_is_named(stripe, clock, cohort):
    make_plan_account(acct_id=702, cohort=cohort, tiers={"RM": LADDER})
    err = StringIO()
    with pytest.raises(CommandError, match="1 accounts not provisioned"):
        call_command("provision_subscriptions", "--cohort", "2", stdout=StringIO(), stderr=err)
    assert "account 702: price legacy-flat-" in err.getvalue()
    assert "run import_legacy_catalog" in err.getvalue()


@both_databases
def test_a_bad_anchor_is_refused(stripe, account):
    with pytest.raises(CommandError, match="--anchor: expected YYYY-MM"):
        call_command("provision_subscriptions", "--cohort", "2", "--anchor", "2026-1-15x")
    with pytest.raises(CommandError, match="no cohort 5"):
        call_command("provision_subscriptions", "--cohort", "5")


@both_databases
def test_a_billing_cycle_bills_the_boundary_quantity_in_the_next_tier(stripe, clock, account):
    subscriptions_provision(cohort=2)
    stripe_lib.test_helpers.TestClock.advance(clock.id, frozen_time=_ts(2026, 1, 10))
    for usage_type, value in (("ST", 1_000_000), ("CV", 999_999)):
        stripe_lib.billing.MeterEvent.create(
            event_name=METER_EVENT_NAMES[usage_type],
            payload={"stripe_customer_id": account.stripe_customer_id, "value": str(value)},
            timestamp=_ts(2026, 1, 10),
        )
    stripe_lib.test_helpers.TestClock.advance(clock.id, frozen_time=_ts(2026, 2, 1, 2))
    cycles = [i for i in stripe.store.all("invoice") if i["billing_reason"] == "subscription_cycle"]
    assert [i["created"] for i in cycles] == [_ts(2026, 1, 1), _ts(2026, 2, 1)]
    assert cycles[0]["amount_due"] == 24_900  # January's flat fee in advance, no usage yet
    invoice = cycles[1]
    amounts = sorted(line["amount"] for line in invoice["lines"]["data"])
    # flat in advance; ST == usage_max at $2.00/1,000; CV one below at $2.50/1,000
    assert amounts == sorted([24_900, 200_000, 250_000])


@both_databases
def test_verify_is_clean_after_import_and_provisioning(stripe, account):
    subscriptions_provision(cohort=2)
    catalog_import(cohort=2)  # twice: nothing new, still clean
    out = StringIO()
    call_command("verify_catalog", "--cohort", "2", stdout=out)
    assert "1 accounts checked; 0 findings" in out.getvalue()
    assert "catalog clean" in out.getvalue()


@both_databases
def test_a_changed_legacy_rate_is_named_with_the_account_and_price(stripe, account):
    subscriptions_provision(cohort=2)
    record = SubscriptionRecord.objects.get(account=account)
    st_price = next(i["price"] for i in record.items if i["metadata"]["kind"] == "ST")
    LegacyPlanUsage.objects.filter(account_id=701, usage_type="ST", usage_max=None).update(
        usage_rate=Decimal("1.05")
    )
    report = catalog_verify(cohort=2)
    assert [(f.acct_id, f.stripe_id) for f in report.findings] == [(701, st_price)]
    assert "0.105" in report.findings[0].problem and "0.11" in report.findings[0].problem
    out = StringIO()
    with pytest.raises(CommandError, match="1 findings"):
        call_command("verify_catalog", stdout=out)
    assert f"finding: account 701 [{st_price}]: ST price: tiers" in out.getvalue()


@both_databases
def test_a_changed_sub_rate_and_a_missing_subscription_are_findings(stripe, clock, account):
    subscriptions_provision(cohort=2)
    LegacyPlanSub.objects.filter(account_id=701).update(sub_rate=Decimal("299.00"))
    other = make_plan_account(acct_id=703, cohort=account.cohort)
    findings = {(f.acct_id, f.problem.split(";")[0]) for f in catalog_verify().findings}
    assert (701, "flat price bills 24900 a month (minor units)") in findings
    assert (other.acct_id, "no subscription provisioned") in findings


@both_databases
def test_cohort_anchor_defaults_to_next_month_for_a_ready_cohort():
    from metering.provisioning import cohort_anchor

    cohort = factories.CohortFactory(number=4, ready=True)
    assert cohort_anchor(cohort, today=date(2026, 12, 9)) == datetime(2027, 1, 1, tzinfo=UTC)


@both_databases
def test_the_legacy_collection_method_comes_from_the_latest_legacy_stripe_invoice(stripe, account):
    legacy_invoice = stripe_lib.Invoice.create(
        customer=account.stripe_customer_id, collection_method="charge_automatically"
    )
    factories.LegacyInvoiceFactory(
        account=LegacyAccount.objects.get(acct_id=701),
        stripe_invoice_id=legacy_invoice.id,
        service_month=date(2025, 11, 1),
    )
    factories.LegacyInvoiceFactory(
        account=LegacyAccount.objects.get(acct_id=701),
        stripe_invoice_id="in_gone000000000000000001",  # older, and unknown to Stripe
        service_month=date(2025, 10, 1),
    )
    subscriptions_provision(cohort=2)
    (subscription,) = stripe.store.all("subscription")
    assert subscription["collection_method"] == "charge_automatically"
    assert subscription["days_until_due"] is None


@both_databases
@pytest.mark.parametrize("days", [15, 45])
def test_payment_terms_come_from_the_legacy_invoice_due_date_not_a_default(stripe, account, days):
    """Stripe's Invoice has no `days_until_due`: the terms are its due date less its
    finalization."""
    legacy_invoice = stripe_lib.Invoice.create(
        customer=account.stripe_customer_id,
        collection_method="send_invoice",
        days_until_due=days,
    )
    stripe_lib.Invoice.finalize_invoice(legacy_invoice.id)
    factories.LegacyInvoiceFactory(
        account=LegacyAccount.objects.get(acct_id=701),
        stripe_invoice_id=legacy_invoice.id,
        service_month=date(2025, 11, 1),
    )
    subscriptions_provision(cohort=2)
    (subscription,) = stripe.store.all("subscription")
    assert subscription["collection_method"] == "send_invoice"
    assert subscription["days_until_due"] == days
