from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_project.money import (
    MoneyError,
    format_money,
    line_amount_minor,
    major_to_minor,
    round_minor,
)


@pytest.mark.parametrize(
    ("exact", "rounded"),
    [("1.5", 2), ("2.5", 3), ("-1.5", -2), ("1.4999", 1), ("0.5", 1), ("0", 0), ("12.50", 13)],
)
def test_round_minor_is_half_up_away_from_zero(exact, rounded):
    assert round_minor(exact) == rounded


def test_stripe_documented_example_sub_cent_unit_amount_rounds_once_per_line():
    # 0.05 cents x 30 units = 1.5 cents -> 2 cents (Stripe rounds the line, half up)
    assert line_amount_minor(30, "0.05") == 2
    assert sum(line_amount_minor(1, "0.05") for _ in range(30)) == 0  # rounding per unit differs


def test_floats_are_refused_everywhere():
    with pytest.raises(MoneyError):
        round_minor(1.5)
    with pytest.raises(MoneyError):
        line_amount_minor(3, 0.1)
    with pytest.raises(MoneyError):
        major_to_minor(12.34, "usd")
    with pytest.raises(MoneyError):
        line_amount_minor(1.0, "1")


def test_major_to_minor_refuses_fractions_of_a_cent():
    assert major_to_minor("1234.56", "usd") == 123_456
    assert major_to_minor(Decimal("0.10"), "usd") == 10
    assert major_to_minor("500", "jpy") == 500
    with pytest.raises(MoneyError, match="not a whole number of minor units"):
        major_to_minor("0.105", "usd")
    with pytest.raises(MoneyError, match="not a number"):
        major_to_minor("12,30", "usd")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (123_456, "usd", "$1,234.56"),
        (-5, "usd", "-$0.05"),
        (0, "usd", "$0.00"),
        (500, "jpy", "500 JPY"),
    ],
)
def test_format_money_for_people(minor, currency, text):
    assert format_money(minor, currency) == text


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**6))
def test_line_amount_matches_integer_half_up_oracle(quantity, rate_millionths):
    """Oracle in integers only: amount = floor((q * r + 500_000) / 1_000_000) for r >= 0."""
    unit = Decimal(rate_millionths) / Decimal(1_000_000)
    expected = (quantity * rate_millionths + 500_000) // 1_000_000
    assert line_amount_minor(quantity, unit) == expected
