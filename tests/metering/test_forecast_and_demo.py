from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from metering.catalog import PRODUCTS
from metering.forecast import forecast_drift
from metering.models import BillingAccount, CatalogObject, SubscriptionRecord
from metering.verification import catalog_verify
from reconciliation.demo import ROUNDING_DRIFT_ACCT_ID, ROUNDING_DRIFT_MINOR
from reconciliation.legacy import LegacyInvoiceLine

from .conftest import both_databases


@pytest.fixture
def demo(settings, stripe):
    settings.DEBUG = True
    out = StringIO()
    call_command("billing_demo", accounts=12, months=4, skip=["invoice delivery"], stdout=out)
    return out.getvalue()


@both_databases
def test_forecast_drift_on_the_demo_names_the_rounding_account_and_no_other(demo):
    named = {}
    for cohort in (1, 2, 3):
        named[cohort] = forecast_drift(cohort=cohort, months=4).drifting_accounts
    assert named == {1: [], 2: [ROUNDING_DRIFT_ACCT_ID], 3: []}
    report = forecast_drift(cohort=2, months=4)
    assert report.invoices == 4 * BillingAccount.objects.filter(cohort__number=2).count()
    assert {
        (d.legacy_minor - d.engine_minor, d.engine_minor - d.stripe_minor) for d in report.drifts
    } == {(ROUNDING_DRIFT_MINOR, 0)}
    assert len(report.drifts) == 4  # one usage line a month


@both_databases
def test_the_forecast_command_lists_the_drift_and_fails(demo):
    out = StringIO()
    with pytest.raises(CommandError, match=f"1 accounts would drift: {ROUNDING_DRIFT_ACCT_ID}"):
        call_command("forecast_drift", "--cohort", "2", "--months", "4", stdout=out)
    assert f"drift: account {ROUNDING_DRIFT_ACCT_ID} " in out.getvalue()
    clean = StringIO()
    call_command("forecast_drift", "--cohort", "1", stdout=clean)
    assert "0 drifts on 0 accounts" in clean.getvalue()
    with pytest.raises(CommandError, match="--months must be between 1 and 240"):
        call_command("forecast_drift", "--cohort", "1", "--months", "0")


@both_databases
def test_a_legacy_line_billed_other_than_its_plan_says_is_named(demo):
    line = (
        LegacyInvoiceLine.objects.filter(line_kind="ST", quantity__gt=0)
        .exclude(invoice__account_id=ROUNDING_DRIFT_ACCT_ID)
        .select_related("invoice")
        .first()
    )
    LegacyInvoiceLine.objects.filter(pk=line.pk).update(amount=line.amount + Decimal("0.50"))
    cohort = BillingAccount.objects.get(acct_id=line.invoice.account_id).cohort.number
    report = forecast_drift(cohort=cohort, months=4)
    assert line.invoice.account_id in report.drifting_accounts


@both_databases
def test_the_demo_links_imports_and_subscribes_cohort_2_and_stays_idempotent(demo, stripe):
    assert "stripe catalog: 12 customers linked" in demo
    assert CatalogObject.objects.filter(object_type="product").count() == len(PRODUCTS)
    cohort_2 = BillingAccount.objects.filter(cohort__number=2)
    assert SubscriptionRecord.objects.filter(account__in=cohort_2).count() == cohort_2.count()
    for customer in stripe.store.all("customer"):
        assert customer["metadata"]["acct_id"]
    assert catalog_verify(cohort=2).clean
    counts = {kind: len(stripe.store.all(kind)) for kind in ("price", "subscription", "customer")}
    call_command(
        "billing_demo", accounts=12, months=4, skip=["invoice delivery"], stdout=StringIO()
    )
    assert {kind: len(stripe.store.all(kind)) for kind in counts} == counts
