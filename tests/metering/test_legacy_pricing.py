from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_project.money import MoneyError
from metering.legacy_pricing import (
    UsageTier,
    legacy_unit_amount_minor,
    legacy_usage_amount_minor,
    legacy_usage_rate,
)

LADDER = [
    UsageTier(usage_max=None, usage_rate=Decimal("1.10")),
    UsageTier(usage_max=20_000_000, usage_rate=Decimal("1.50")),
    UsageTier(usage_max=1_000_000, usage_rate=Decimal("2.50")),
    UsageTier(usage_max=5_000_000, usage_rate=Decimal("2.00")),
]


@pytest.mark.parametrize(
    ("quantity", "rate"),
    [
        (0, "2.50"),
        (999_999, "2.50"),
        (1_000_000, "2.00"),
        (4_999_999, "2.00"),
        (5_000_000, "1.50"),
        (19_999_999, "1.50"),
        (20_000_000, "1.10"),
        (10**12, "1.10"),
    ],
)
def test_the_first_tier_with_quantity_strictly_below_its_ceiling_gives_the_rate(quantity, rate):
    assert legacy_usage_rate(LADDER, quantity) == Decimal(rate)


def test_a_quantity_at_a_ceiling_takes_the_next_tier_for_all_units():
    assert legacy_usage_amount_minor(LADDER, 999_999) == 250_000  # $2,499.9975
    assert legacy_usage_amount_minor(LADDER, 1_000_000) == 200_000  # all units at $2.00/1000


def test_zero_usage_costs_nothing_even_without_tiers():
    assert legacy_usage_amount_minor(LADDER, 0) == 0
    assert legacy_usage_amount_minor([], 0) == 0


def test_a_sub_cent_line_rounds_half_up_once():
    tiers = [UsageTier(usage_max=None, usage_rate=Decimal("0.005"))]
    assert legacy_usage_amount_minor(tiers, 1_000) == 1  # 0.5 cent
    assert legacy_usage_amount_minor(tiers, 999) == 0  # 0.4995 cent
    assert legacy_usage_amount_minor(tiers, 2_999) == 1  # 1.4995 cents


def test_a_line_just_below_half_a_cent_rounds_down():
    tiers = [UsageTier(usage_max=None, usage_rate=Decimal("0.004999"))]
    assert legacy_usage_amount_minor(tiers, 1_000) == 0  # 0.4999 cent
    assert legacy_usage_amount_minor(tiers, 1_001) == 1  # 0.5003999 cent


def test_a_cpm_rate_of_87_5_cents_rounds_each_line_half_up():
    tiers = [UsageTier(usage_max=None, usage_rate=Decimal("0.875"))]
    assert legacy_usage_amount_minor(tiers, 97) == 8  # 8.4875 cents
    assert legacy_usage_amount_minor(tiers, 1_234_567) == 108_025  # 108,024.6125 cents


def test_rounding_happens_once_per_line_not_per_thousand():
    tiers = [UsageTier(usage_max=None, usage_rate=Decimal("0.875"))]
    per_thousand_rounded = 1_000 * 88  # 1,000 blocks of 1,000 at 87.5 cents, each rounded
    assert legacy_usage_amount_minor(tiers, 1_000_000) == 87_500
    assert legacy_usage_amount_minor(tiers, 1_000_000) != per_thousand_rounded


def test_the_per_unit_amount_is_exact():
    assert legacy_unit_amount_minor(Decimal("2.50")) == Decimal("0.25")
    assert legacy_unit_amount_minor(Decimal("0.875")) == Decimal("0.0875")
    assert legacy_unit_amount_minor(Decimal("0.000001")) == Decimal("0.0000001")
    assert legacy_unit_amount_minor(Decimal("2500"), "jpy") == Decimal("2.5")


def test_a_quantity_beyond_every_closed_ceiling_is_an_error_naming_it():
    tiers = [UsageTier(usage_max=1_000, usage_rate=Decimal("2.00"))]
    assert legacy_usage_rate(tiers, 999) == Decimal("2.00")
    with pytest.raises(ValueError, match="quantity 1000 is at or above"):
        legacy_usage_rate(tiers, 1_000)
    with pytest.raises(ValueError, match="quantity 5000 "):
        legacy_usage_amount_minor(tiers, 5_000)


def test_no_tiers_for_a_positive_quantity_is_an_error():
    with pytest.raises(ValueError, match="no usage tiers"):
        legacy_usage_amount_minor([], 1)


def test_two_tiers_with_one_ceiling_and_different_rates_are_ambiguous():
    tiers = [
        UsageTier(usage_max=1_000, usage_rate=Decimal("2.00")),
        UsageTier(usage_max=1_000, usage_rate=Decimal("1.00")),
    ]
    with pytest.raises(ValueError, match="ambiguous"):
        legacy_usage_rate(tiers, 10)


def test_float_rates_are_refused():
    with pytest.raises(MoneyError):
        UsageTier(usage_max=None, usage_rate=2.5)


@pytest.mark.parametrize("quantity", [1000.0, True, -1, "1000"])
def test_quantities_must_be_non_negative_integers(quantity):
    with pytest.raises(ValueError):
        legacy_usage_amount_minor(LADDER, quantity)


def test_string_rates_become_exact_decimals():
    assert UsageTier(usage_max=10, usage_rate="0.875").usage_rate == Decimal("0.875")


def _oracle_cents(quantity: int, micro_dollars_per_thousand: int) -> int:
    """quantity x rate in cents, half up, with integers only: q * micro / 10**7."""
    numerator = quantity * micro_dollars_per_thousand
    return (2 * numerator + 10**7) // (2 * 10**7)


def _rate(micro_dollars_per_thousand: int) -> Decimal:
    whole, fraction = divmod(micro_dollars_per_thousand, 10**6)
    return Decimal(f"{whole}.{fraction:06d}")


@st.composite
def ladders(draw: st.DrawFn, min_ceilings: int = 0) -> list[tuple[int | None, int]]:
    """Ceilings ascending, rates in micro-dollars per 1,000, the last tier open."""
    ceilings = sorted(draw(st.sets(st.integers(1, 10**9), min_size=min_ceilings, max_size=4)))
    rates = draw(
        st.lists(st.integers(0, 50 * 10**6), min_size=len(ceilings) + 1, max_size=len(ceilings) + 1)
    )
    return list(zip([*ceilings, None], rates, strict=True))


@given(ladder=ladders(), quantity=st.integers(0, 2 * 10**9))
def test_amount_matches_an_integer_only_oracle(ladder, quantity):
    tiers = [UsageTier(usage_max=ceiling, usage_rate=_rate(micro)) for ceiling, micro in ladder]
    micro = next(m for ceiling, m in ladder if ceiling is None or quantity < ceiling)
    assert legacy_usage_amount_minor(tiers[::-1], quantity) == _oracle_cents(quantity, micro)


@given(ladder=ladders(), data=st.data())
def test_amount_is_monotone_within_a_tier(ladder, data):
    tiers = [UsageTier(usage_max=ceiling, usage_rate=_rate(micro)) for ceiling, micro in ladder]
    floors = [0, *(ceiling for ceiling, _ in ladder[:-1])]
    index = data.draw(st.integers(0, len(ladder) - 1))
    top = ladder[index][0] - 1 if ladder[index][0] is not None else floors[index] + 10**9
    low = data.draw(st.integers(floors[index], top))
    high = data.draw(st.integers(low, top))
    assert legacy_usage_rate(tiers, low) == legacy_usage_rate(tiers, high)
    assert legacy_usage_amount_minor(tiers, low) <= legacy_usage_amount_minor(tiers, high)


@given(ladder=ladders(min_ceilings=1), data=st.data())
def test_at_a_ceiling_the_next_tier_applies_and_one_below_it_this_one(ladder, data):
    tiers = [UsageTier(usage_max=ceiling, usage_rate=_rate(micro)) for ceiling, micro in ladder]
    index = data.draw(st.integers(0, len(ladder) - 2))
    ceiling, micro = ladder[index]
    assert legacy_usage_rate(tiers, ceiling - 1) == _rate(micro)
    assert legacy_usage_rate(tiers, ceiling) == _rate(ladder[index + 1][1])
