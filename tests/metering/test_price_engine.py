from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_project.classifier import LineKind
from metering.catalog import flat_price_spec, plan_price_specs, usage_price_spec
from metering.legacy_pricing import UsageTier, legacy_usage_amount_minor
from metering.pricing import (
    FlatFee,
    LegacyPlan,
    PlanError,
    charge_total_minor,
    legacy_month_charge,
    stripe_volume_amount_minor,
    stripe_volume_tiers,
)

LADDER = (
    UsageTier(usage_max=1_000_000, usage_rate=Decimal("2.50")),
    UsageTier(usage_max=5_000_000, usage_rate=Decimal("2.00")),
    UsageTier(usage_max=None, usage_rate=Decimal("1.10")),
)


def test_legacy_ceilings_become_inclusive_up_to_one_below_and_rates_per_impression():
    assert stripe_volume_tiers(LADDER) == [
        {"up_to": 999_999, "unit_amount_decimal": "0.25"},
        {"up_to": 4_999_999, "unit_amount_decimal": "0.2"},
        {"up_to": "inf", "unit_amount_decimal": "0.11"},
    ]


def test_a_sub_cent_rate_keeps_every_digit_in_unit_amount_decimal():
    tiers = stripe_volume_tiers([UsageTier(None, Decimal("0.2125")), UsageTier(10, Decimal("1"))])
    assert tiers == [
        {"up_to": 9, "unit_amount_decimal": "0.1"},
        {"up_to": "inf", "unit_amount_decimal": "0.02125"},
    ]
    assert stripe_volume_tiers([UsageTier(None, Decimal("0.000001"))]) == [
        {"up_to": "inf", "unit_amount_decimal": "0.0000001"}
    ]


def test_a_ladder_without_an_open_tier_cannot_be_imported():
    with pytest.raises(PlanError, match=r"no open-ended tier.*5000000 or more"):
        stripe_volume_tiers(LADDER[:2])


def test_ceilings_that_only_hold_zero_are_left_out_and_repeats_merge():
    tiers = [
        UsageTier(1, Decimal("9")),
        UsageTier(0, Decimal("8")),
        UsageTier(100, Decimal("2")),
        UsageTier(100, Decimal("2")),
        UsageTier(None, Decimal("1")),
    ]
    assert stripe_volume_tiers(tiers) == [
        {"up_to": 99, "unit_amount_decimal": "0.2"},
        {"up_to": "inf", "unit_amount_decimal": "0.1"},
    ]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (0, 0),
        (1, 0),  # 0.25 cent rounds down
        (2, 1),  # 0.5 cent rounds half up
        (999_999, 250_000),  # $2,499.9975 -> $2,500.00
        (1_000_000, 200_000),  # == usage_max: the next tier, for every unit
        (5_000_000, 550_000),
    ],
)
def test_the_stripe_rule_on_the_translated_tiers_gives_the_legacy_amount(quantity, expected):
    assert legacy_usage_amount_minor(LADDER, quantity) == expected
    assert stripe_volume_amount_minor(stripe_volume_tiers(LADDER), quantity) == expected


def test_the_same_ceiling_untranslated_would_bill_the_boundary_in_the_wrong_tier():
    naive = [
        {"up_to": 1_000_000, "unit_amount_decimal": "0.25"},
        {"up_to": "inf", "unit_amount_decimal": "0.2"},
    ]
    assert stripe_volume_amount_minor(naive, 1_000_000) == 250_000
    assert legacy_usage_amount_minor(LADDER, 1_000_000) == 200_000


ladders = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**9),
        st.decimals(min_value=0, max_value=50, places=6, allow_nan=False, allow_infinity=False),
    ),
    max_size=5,
    unique_by=lambda pair: pair[0],
).map(lambda closed: [UsageTier(c, r) for c, r in closed])
open_rates = st.decimals(min_value=0, max_value=50, places=6)


@given(ladder=ladders, open_rate=open_rates, quantity=st.integers(0, 2 * 10**9))
def test_for_every_ladder_and_quantity_the_stripe_rule_equals_the_legacy_engine(
    ladder, open_rate, quantity
):
    tiers = [*ladder, UsageTier(None, open_rate)]
    assert stripe_volume_amount_minor(stripe_volume_tiers(tiers), quantity) == (
        legacy_usage_amount_minor(tiers, quantity)
    )


def test_a_month_charge_is_flat_fees_plus_one_line_per_type_plus_managed_jobs():
    plan = LegacyPlan(
        acct_id=7,
        flat_fees=(FlatFee("Pro", "Platform: Pro", 24_900),),
        tiers={LineKind.ST: LADDER, LineKind.CV: (UsageTier(None, Decimal("0.2125")),)},
    )
    lines = legacy_month_charge(
        plan, usage={"ST": 1_000_000, "CV": 3}, managed=[("Landing page", 84_000)]
    )
    assert [(line.kind, line.quantity, line.amount_minor) for line in lines] == [
        (LineKind.FLAT, 1, 24_900),
        (LineKind.ST, 1_000_000, 200_000),
        (LineKind.CV, 3, 0),  # 0.06375 cent
        (LineKind.MANAGED, 1, 84_000),
    ]
    assert charge_total_minor(lines) == 308_900


def test_usage_of_a_type_the_plan_does_not_price_is_refused():
    plan = LegacyPlan(acct_id=7, flat_fees=(FlatFee("Pro", "", 100),), tiers={})
    with pytest.raises(PlanError, match="account 7 has usage of type RM but no tiers"):
        legacy_month_charge(plan, usage={"RM": 5})
    assert legacy_month_charge(plan, usage={"RM": 0})[0].amount_minor == 100


def test_identical_plans_share_a_price_key_and_a_changed_rate_does_not():
    a = usage_price_spec(LineKind.ST, LADDER, "usd")
    b = usage_price_spec(LineKind.ST, list(reversed(LADDER)), "usd")
    changed = usage_price_spec(LineKind.ST, (*LADDER[:2], UsageTier(None, Decimal("1.11"))), "usd")
    assert a.key == b.key and a.key.startswith("legacy-st-")
    assert changed.key != a.key
    assert usage_price_spec(LineKind.RM, LADDER, "usd").key != a.key
    assert flat_price_spec(24_900, "usd").key == flat_price_spec(24_900, "usd").key
    assert flat_price_spec(24_900, "usd").key != flat_price_spec(24_901, "usd").key


def test_two_equal_flat_fees_are_one_price_with_quantity_two():
    plan = LegacyPlan(
        acct_id=1,
        flat_fees=(FlatFee("A", "", 100), FlatFee("B", "", 100), FlatFee("C", "", 50)),
        tiers={LineKind.RM: LADDER},
    )
    items = plan_price_specs(plan)
    assert [(spec.kind, spec.unit_amount, qty) for spec, qty in items] == [
        (LineKind.FLAT, 50, 1),
        (LineKind.FLAT, 100, 2),
        (LineKind.RM, None, None),
    ]
