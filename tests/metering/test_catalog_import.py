from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from metering.catalog_import import catalog_import
from metering.models import CatalogObject
from metering.usage_types import METER_EVENT_NAMES
from reconciliation.legacy import LegacyPlanUsage
from tests import factories

from .conftest import both_databases, make_plan_account, stripe_count

LADDER = [(1_000_000, "2.50"), (None, "1.10")]


@pytest.fixture
def cohorts():
    return factories.CohortFactory(number=1), factories.CohortFactory(number=2)


def _objects(server) -> dict[str, int]:
    return {kind: stripe_count(server, kind) for kind in ("product", "price", "billing.meter")}


@both_databases
def test_import_creates_the_seed_products_one_sum_meter_per_type_and_shared_prices(stripe, cohorts):
    flat_only, tiered = cohorts
    make_plan_account(acct_id=11, cohort=flat_only, sub_rates=("149.00",))
    make_plan_account(acct_id=12, cohort=tiered, sub_rates=("149.00",), tiers={"ST": LADDER})
    make_plan_account(acct_id=13, cohort=tiered, sub_rates=("249.00",), tiers={"ST": LADDER})
    report = catalog_import()
    assert not report.errors
    products = {p["name"]: p for p in stripe.store.all("product")}
    assert set(products) == {"Account Charges", "Usage (Ad Serving)", "Managed Services"}
    assert products["Account Charges"]["metadata"]["kind"] == "flat"
    assert products["Managed Services"]["metadata"]["kind"] == "managed"
    meters = {m["event_name"]: m for m in stripe.store.all("billing.meter")}
    assert set(meters) == set(METER_EVENT_NAMES.values())
    assert {m["default_aggregation"]["formula"] for m in meters.values()} == {"sum"}
    prices = stripe.store.all("price")
    flat = sorted(p["unit_amount"] for p in prices if p["recurring"]["usage_type"] == "licensed")
    assert flat == [14_900, 24_900]  # 149.00 shared by accounts 11 and 12
    (metered,) = [p for p in prices if p["recurring"]["usage_type"] == "metered"]
    assert metered["metadata"]["kind"] == "ST"
    assert metered["recurring"]["meter"] == meters[METER_EVENT_NAMES["ST"]]["id"]
    assert (metered["billing_scheme"], metered["tiers_mode"]) == ("tiered", "volume")
    assert [(t["up_to"], t["unit_amount_decimal"]) for t in metered["tiers"]] == [
        (999_999, "0.25"),
        (None, "0.11"),
    ]
    assert metered["lookup_key"].startswith("legacy-st-")
    assert CatalogObject.objects.count() == 3 + 3 + 3


@both_databases
def test_importing_twice_creates_no_new_stripe_objects(stripe, cohorts):
    make_plan_account(acct_id=21, cohort=cohorts[1], tiers={"ST": LADDER, "RM": LADDER})
    first = catalog_import()
    before = _objects(stripe)
    requests = len(stripe.store.requests)
    second = catalog_import()
    assert second.created == [] and second.adopted == []
    assert second.existing == len(first.created)
    assert _objects(stripe) == before
    posts = [r for r in stripe.store.requests[requests:] if r["method"] == "POST"]
    assert posts == []


@both_databases
def test_an_import_cut_short_adopts_what_stripe_already_has(stripe, cohorts):
    make_plan_account(acct_id=22, cohort=cohorts[1], tiers={"CV": LADDER})
    catalog_import()
    before = _objects(stripe)
    CatalogObject.objects.all().delete()  # as if our writes never happened
    report = catalog_import()
    assert report.created == []
    assert len(report.adopted) == 3 + 3 + 2
    assert _objects(stripe) == before


@both_databases
def test_cohort_limits_the_prices_to_that_cohorts_plans(stripe, cohorts):
    make_plan_account(acct_id=31, cohort=cohorts[0], sub_rates=("10.00",))
    make_plan_account(acct_id=32, cohort=cohorts[1], sub_rates=("20.00",))
    catalog_import(cohort=1)
    assert [p["unit_amount"] for p in stripe.store.all("price")] == [1_000]


@both_databases
def test_dry_run_lists_the_objects_and_calls_nothing(stripe, cohorts):
    make_plan_account(acct_id=41, cohort=cohorts[1], tiers={"ST": LADDER})
    out = StringIO()
    call_command("import_legacy_catalog", "--dry-run", stdout=out)
    assert "would create product product:account-charges: Account Charges" in out.getvalue()
    assert "would create price legacy-st-" in out.getvalue()
    assert "would create 8 Stripe objects" in out.getvalue()
    assert stripe.store.requests == []
    assert CatalogObject.objects.count() == 0


@both_databases
def test_a_plan_without_an_open_tier_is_named_and_the_rest_is_imported(stripe, cohorts):
    make_plan_account(acct_id=51, cohort=cohorts[1], tiers={"ST": [(1_000, "2.00")]})
    make_plan_account(acct_id=52, cohort=cohorts[1], sub_rates=("30.00",))
    err = StringIO()
    with pytest.raises(CommandError, match="1 plans could not be imported"):
        call_command("import_legacy_catalog", stdout=StringIO(), stderr=err)
    assert "account 51: no open-ended tier" in err.getvalue()
    assert 3_000 in [p["unit_amount"] for p in stripe.store.all("price")]


@both_databases
def test_an_unknown_cohort_is_a_clear_error(stripe):
    with pytest.raises(CommandError, match="--cohort: no cohort 9"):
        call_command("import_legacy_catalog", "--cohort", "9", stdout=StringIO())


@both_databases
def test_a_changed_legacy_rate_imports_a_new_price_and_keeps_the_old(stripe, cohorts):
    make_plan_account(acct_id=61, cohort=cohorts[1], tiers={"ST": LADDER})
    catalog_import()
    LegacyPlanUsage.objects.filter(account_id=61, usage_max=None).update(usage_rate=Decimal("1.05"))
    report = catalog_import()
    assert [(t, k.split("-")[1]) for t, k, _ in report.created] == [("price", "st")]
    assert stripe_count(stripe, "price") == 3


@both_databases
def test_an_account_without_legacy_plan_rows_is_named(stripe, cohorts):
    factories.BillingAccountFactory(acct_id=71, cohort=cohorts[0])
    report = catalog_import(cohort=1)
    assert report.errors == ["account 71: no legacy plan (no account_plan_sub or usage rows)"]
