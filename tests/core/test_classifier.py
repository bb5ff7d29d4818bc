import pytest

from billing_project.classifier import (
    LineKind,
    classify_stripe_line,
    kind_from_metadata,
    totals_by_kind,
)


def stripe_line(*, metadata=None, price="price_flat", product="prod_acct"):
    return {
        "object": "line_item",
        "amount": 10_000,
        "metadata": metadata or {},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price, "product": product},
            "unit_amount_decimal": "10000",
        },
    }


PRICES = {
    "price_flat": {"id": "price_flat", "product": "prod_acct", "metadata": {"kind": "flat"}},
    "price_st": {"id": "price_st", "product": "prod_usage", "metadata": {"kind": "ST"}},
    "price_plain": {"id": "price_plain", "product": "prod_managed", "metadata": {}},
}
PRODUCTS = {
    "prod_acct": {"metadata": {}},
    "prod_usage": {"metadata": {"kind": "other"}},
    "prod_managed": {"metadata": {"kind": "managed"}},
}


def test_line_metadata_wins_over_price_and_product():
    line = stripe_line(metadata={"kind": "managed"}, price="price_st", product="prod_usage")
    assert classify_stripe_line(line, prices=PRICES, products=PRODUCTS) == LineKind.MANAGED


def test_price_metadata_then_product_metadata():
    assert (
        classify_stripe_line(
            stripe_line(price="price_st", product="prod_usage"), prices=PRICES, products=PRODUCTS
        )
        == LineKind.ST
    )
    assert (
        classify_stripe_line(
            stripe_line(price="price_plain", product="prod_managed"),
            prices=PRICES,
            products=PRODUCTS,
        )
        == LineKind.MANAGED
    )


def test_expanded_price_objects_are_read_directly():
    line = stripe_line(price={"id": "price_x", "product": "prod_x", "metadata": {"kind": "cv"}})
    assert classify_stripe_line(line) == LineKind.CV


def test_unknown_or_missing_kind_is_other_never_guessed():
    line = stripe_line(
        metadata={"kind": "impressions"}, price="price_unknown", product="prod_unknown"
    )
    line["description"] = "ST impressions (flat fee)"
    assert classify_stripe_line(line, prices=PRICES, products=PRODUCTS) == LineKind.OTHER
    assert kind_from_metadata(None, {}, {"kind": 3}) == LineKind.OTHER


def test_legacy_line_kinds_use_the_same_vocabulary():
    assert {kind.value for kind in LineKind} == {
        "flat",
        "ST",
        "RM",
        "CV",
        "managed",
        "other",
        "discount",
        "credit_note",
    }
    assert kind_from_metadata({"kind": "rm"}) == LineKind.RM


def test_totals_by_kind_has_every_kind_and_sums_minor_units():
    totals = totals_by_kind([(LineKind.FLAT, 50_000), (LineKind.ST, 1_234), (LineKind.ST, 66)])
    assert totals == {
        "flat": 50_000,
        "ST": 1_300,
        "RM": 0,
        "CV": 0,
        "managed": 0,
        "other": 0,
        "discount": 0,
        "credit_note": 0,
    }
    with pytest.raises(ValueError):
        totals_by_kind([("bogus", 1)])
