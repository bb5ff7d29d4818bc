"""Stripe's amount rules (`tests/stripe_server/pricing.py`) against its documented examples."""

import pytest

from tests.stripe_server.pricing import line_amount, unit_amount_decimal_for

FONT_TIERS = [
    {"up_to": 5, "unit_amount": 700, "unit_amount_decimal": "700"},
    {"up_to": 10, "unit_amount": 650, "unit_amount_decimal": "650"},
    {"up_to": None, "unit_amount": 600, "unit_amount_decimal": "600"},
]


def tiered(mode, tiers=FONT_TIERS):
    return {"billing_scheme": "tiered", "tiers_mode": mode, "tiers": tiers}


def per_unit(decimal, transform=None):
    return {
        "billing_scheme": "per_unit",
        "unit_amount": None,
        "unit_amount_decimal": decimal,
        "transform_quantity": transform,
    }


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [(1, 700), (5, 3500), (6, 3900), (20, 12000), (25, 15000)],
)
def test_volume_tiers_match_stripes_typographic_table(quantity, amount):
    assert line_amount(tiered("volume"), quantity) == amount


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [(1, 700), (5, 3500), (6, 4150), (20, 12750), (25, 15750)],
)
def test_graduated_tiers_match_stripes_typographic_table(quantity, amount):
    assert line_amount(tiered("graduated"), quantity) == amount


def test_decimal_unit_amount_rounds_once_per_line_half_up():
    assert line_amount(per_unit("0.05"), 30) == 2
    assert line_amount(per_unit("0.5"), 1) == 1
    assert line_amount(per_unit("0.5"), 5) == 3
    assert line_amount(per_unit("0.000000000001"), 10**12) == 1
    assert line_amount(per_unit("0.05"), 29) == 1


def test_up_to_is_inclusive_for_volume():
    assert line_amount(tiered("volume"), 5) == 5 * 700
    assert line_amount(tiered("volume"), 6) == 6 * 650
    assert line_amount(tiered("volume"), 10) == 10 * 650
    assert line_amount(tiered("volume"), 11) == 11 * 600


def test_up_to_is_inclusive_for_graduated():
    assert line_amount(tiered("graduated"), 10) == 5 * 700 + 5 * 650
    assert line_amount(tiered("graduated"), 11) == 5 * 700 + 5 * 650 + 600


def test_up_to_inf_string_is_the_last_tier():
    tiers = [dict(FONT_TIERS[0]), dict(FONT_TIERS[1]), dict(FONT_TIERS[2], up_to="inf")]
    assert line_amount(tiered("volume", tiers), 1000) == 600_000


def test_volume_and_graduated_agree_inside_the_first_tier_and_differ_beyond_it():
    for quantity in range(0, 6):
        assert line_amount(tiered("volume"), quantity) == line_amount(tiered("graduated"), quantity)
    assert line_amount(tiered("volume"), 6) < line_amount(tiered("graduated"), 6)


FLAT_TIERS = [
    {"up_to": 5, "flat_amount": 1000, "unit_amount": 100},
    {"up_to": None, "flat_amount": 2000, "unit_amount": 50},
]


def test_flat_amounts_volume_charges_the_reached_tiers_flat_fee_only():
    assert line_amount(tiered("volume", FLAT_TIERS), 3) == 1000 + 300
    assert line_amount(tiered("volume", FLAT_TIERS), 7) == 2000 + 7 * 50


def test_flat_amounts_graduated_adds_every_reached_tiers_flat_fee():
    assert line_amount(tiered("graduated", FLAT_TIERS), 3) == 1000 + 300
    assert line_amount(tiered("graduated", FLAT_TIERS), 5) == 1000 + 500
    assert line_amount(tiered("graduated", FLAT_TIERS), 6) == 1000 + 500 + 2000 + 50


def test_flat_amount_decimal_is_used_when_given():
    tiers = [{"up_to": None, "flat_amount_decimal": "99.5", "unit_amount_decimal": "0.25"}]
    assert line_amount(tiered("volume", tiers), 2) == 100


def test_zero_quantity_bills_the_first_tiers_flat_fee_and_nothing_per_unit():
    assert line_amount(tiered("volume", FLAT_TIERS), 0) == 1000
    assert line_amount(tiered("graduated", FLAT_TIERS), 0) == 1000
    assert line_amount(tiered("graduated"), 0) == 0
    assert line_amount(per_unit("700"), 0) == 0


def test_graduated_slices_are_summed_exactly_and_rounded_once():
    tiers = [
        {"up_to": 1, "unit_amount_decimal": "0.5"},
        {"up_to": None, "unit_amount_decimal": "0.5"},
    ]
    assert line_amount(tiered("graduated", tiers), 2) == 1


def test_transform_quantity_rounds_packages_up_or_down():
    up = per_unit("500", {"divide_by": 10, "round": "up"})
    down = per_unit("500", {"divide_by": 10, "round": "down"})
    assert line_amount(up, 11) == 1000
    assert line_amount(down, 11) == 500
    assert line_amount(up, 10) == 500
    assert line_amount(up, 0) == 0


def test_integer_unit_amount_alone_is_enough():
    price = {"billing_scheme": "per_unit", "unit_amount": 2000, "unit_amount_decimal": None}
    assert line_amount(price, 3) == 6000


def test_negative_quantity_is_refused():
    with pytest.raises(ValueError):
        line_amount(per_unit("1"), -1)


def test_tiered_price_without_its_tiers_is_refused():
    with pytest.raises(ValueError, match="expand tiers"):
        line_amount({"billing_scheme": "tiered", "tiers_mode": "volume", "id": "price_x"}, 1)


def test_unit_amount_decimal_shown_on_a_line():
    assert unit_amount_decimal_for(per_unit("0.05"), 30) == "0.05"
    assert unit_amount_decimal_for(per_unit("2000.000"), 1) == "2000"
    assert unit_amount_decimal_for(tiered("volume"), 6) == "650"
    assert unit_amount_decimal_for(tiered("graduated"), 6) == "691.666666666667"
    assert unit_amount_decimal_for(tiered("graduated"), 0) == "0"
