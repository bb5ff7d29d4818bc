"""Parity proved against the Stripe-compatible server's own tier maths (not ours)."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_project.classifier import LineKind
from metering import gateways
from metering.catalog import usage_price_spec
from metering.catalog_import import catalog_import
from metering.legacy_pricing import UsageTier, legacy_usage_amount_minor
from tests import factories

from .conftest import both_databases, invoice_item_amount, make_plan_account, seed_customer

ST_LADDER = [(1_000_000, "2.50"), (5_000_000, "2.00"), (20_000_000, "1.50"), (None, "1.10")]
SUB_CENT_LADDER = [(10_000, "0.004999"), (None, "0.2125")]


@pytest.fixture
def imported(stripe):
    """Cohort 2 account 501 with an ST ladder and a sub-cent CV ladder, imported."""
    cohort = factories.CohortFactory(number=2)
    account = make_plan_account(
        acct_id=501, cohort=cohort, tiers={"ST": ST_LADDER, "CV": SUB_CENT_LADDER}
    )
    seed_customer(stripe, account.stripe_customer_id)
    report = catalog_import(cohort=2)
    assert not report.errors
    return account


def _imported_price(kind: LineKind, ladder) -> tuple[list[UsageTier], str]:
    tiers = [UsageTier(c, Decimal(r)) for c, r in ladder]
    price = gateways.price_by_lookup_key(usage_price_spec(kind, tiers, "usd").key)
    assert price is not None
    return tiers, price["id"]


@both_databases
def test_every_quantity_of_the_imported_st_price_bills_the_legacy_amount(imported):
    tiers, price_id = _imported_price(LineKind.ST, ST_LADDER)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        quantity=st.one_of(
            st.integers(0, 50_000_000),
            st.sampled_from([0, 1, 2, 999_999, 1_000_000, 1_000_001, 4_999_999, 5_000_000]),
        )
    )
    def bills_like_legacy(quantity):
        expected = legacy_usage_amount_minor(tiers, quantity)
        assert invoice_item_amount(imported.stripe_customer_id, price_id, quantity) == expected

    bills_like_legacy()


@both_databases
@pytest.mark.parametrize(
    ("quantity", "expected_minor", "why"),
    [
        (1_000_000, 200_000, "== usage_max takes the next tier for every unit"),
        (999_999, 250_000, "one below the ceiling stays in the first tier"),
        (20_000_000, 2_200_000, "== the last ceiling takes the open tier"),
        (0, 0, "zero usage bills nothing"),
    ],
)
def test_named_boundaries_on_the_server(imported, quantity, expected_minor, why):
    tiers, price_id = _imported_price(LineKind.ST, ST_LADDER)
    assert legacy_usage_amount_minor(tiers, quantity) == expected_minor, why
    assert invoice_item_amount(imported.stripe_customer_id, price_id, quantity) == expected_minor


@both_databases
@pytest.mark.parametrize(
    ("quantity", "expected_minor"),
    [
        (1, 0),  # 0.0004999 cent
        (1_000, 0),  # 0.4999 cent: just below half a cent
        (1_001, 1),  # 0.5003999 cent
        (9_999, 5),  # 4.9985001 cents
        (10_000, 213),  # == usage_max: 0.02125 cent x 10,000 = 212.5 -> 213
        (3, 0),
    ],
)
def test_sub_cent_rates_round_once_per_line_like_legacy(imported, quantity, expected_minor):
    tiers, price_id = _imported_price(LineKind.CV, SUB_CENT_LADDER)
    assert legacy_usage_amount_minor(tiers, quantity) == expected_minor
    assert invoice_item_amount(imported.stripe_customer_id, price_id, quantity) == expected_minor


ladders = st.lists(
    st.tuples(st.integers(2, 10**8), st.decimals(min_value=0, max_value=20, places=6)),
    min_size=0,
    max_size=4,
    unique_by=lambda pair: pair[0],
)


@both_databases
def test_any_ladder_imported_bills_like_the_legacy_engine_on_the_server(stripe):
    seed_customer(stripe, "cus_parity0000000001")

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        closed=ladders,
        open_rate=st.decimals(min_value=0, max_value=20, places=6),
        extra=st.lists(st.integers(0, 3 * 10**8), max_size=4),
    )
    def bills_like_legacy(closed, open_rate, extra):
        tiers = [UsageTier(c, r) for c, r in closed] + [UsageTier(None, open_rate)]
        spec = usage_price_spec(LineKind.RM, tiers, "usd")
        meter = gateways.meters_active()[0]["id"]
        product = gateways.products_active()[0]["id"]
        from metering.catalog_import import price_create_params

        price = gateways.price_create(
            price_create_params(spec, product_id=product, meter_id=meter),
            idempotency_key=f"test:{spec.key}",
        )
        quantities = {0, *extra}
        for ceiling, _ in closed:
            quantities |= {ceiling - 1, ceiling, ceiling + 1}
        for quantity in sorted(quantities):
            expected = legacy_usage_amount_minor(tiers, quantity)
            assert invoice_item_amount("cus_parity0000000001", price["id"], quantity) == expected

    gateways.meter_create(event_name="parity_rm", display_name="RM", idempotency_key="parity-m")
    gateways.product_create(name="Parity", metadata={}, idempotency_key="parity-p")
    bills_like_legacy()
