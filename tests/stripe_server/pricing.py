"""Stripe's amount rules for a price and a quantity, as its documentation states them.

Pure functions on Stripe price dicts (a tiered price must carry its `tiers`, as
`expand[]=tiers` returns them). Amounts are in the currency's minor unit.

Rules and the choices made where the documentation is silent:

- Rounding happens once per line item ("Rounding occurs on the line item level of your
  invoices"; 0.05 cents x 30 = 1.5, "rounded up to 2 cents"): every amount here is summed as
  an exact Decimal and rounded half up to an integer at the end. Graduated tiers are one line,
  so their slices (and flat amounts) are summed exactly and rounded once, not per tier.
- `up_to` is inclusive ("Up to and including to this quantity will be contained in the
  tier"); the next tier starts at `up_to + 1`; `up_to` of `"inf"` or null is the last tier.
- Volume: the single tier containing the total quantity prices every unit, plus that tier's
  flat amount. Graduated: each tier prices the units that fall inside it, and the flat amount
  of every tier reached is added.
- Quantity 0 falls in the first tier: volume charges the first tier's flat amount, graduated
  charges the first tier's flat amount (tiers start at 0, so a flat fee on the first tier
  is a base fee billed even without usage). Every other tier needs at least one unit.
- `transform_quantity` (per_unit prices only; Stripe refuses it with tiers) divides the
  quantity by `divide_by` and rounds the result `up` or `down` before pricing.
"""

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_TWELVE_PLACES = Decimal("1e-12")


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _unit(source: dict[str, Any]) -> Decimal:
    if source.get("unit_amount_decimal") is not None:
        return _decimal(source["unit_amount_decimal"])
    if source.get("unit_amount") is not None:
        return _decimal(source["unit_amount"])
    return Decimal(0)


def _flat(tier: dict[str, Any]) -> Decimal:
    if tier.get("flat_amount_decimal") is not None:
        return _decimal(tier["flat_amount_decimal"])
    if tier.get("flat_amount") is not None:
        return _decimal(tier["flat_amount"])
    return Decimal(0)


def upper_bound(tier: dict[str, Any]) -> int | None:
    """A tier's inclusive upper bound; None for the last (`"inf"`) tier."""
    up_to = tier.get("up_to")
    if up_to is None or up_to == "inf":
        return None
    return int(up_to)


def format_decimal(value: Decimal) -> str:
    """Stripe's decimal string: plain notation, no trailing zeros."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _tiers(price: dict[str, Any]) -> list[dict[str, Any]]:
    tiers = price.get("tiers")
    if not tiers:
        raise ValueError(f"tiered price {price.get('id')} carries no tiers (expand tiers)")
    return list(tiers)


def tier_index(tiers: list[dict[str, Any]], quantity: int) -> int:
    """The tier containing `quantity` (0 belongs to the first tier)."""
    for index, tier in enumerate(tiers):
        upper = upper_bound(tier)
        if upper is None or quantity <= upper:
            return index
    raise ValueError("tiers do not end with an up_to=inf tier")


def transformed_quantity(price: dict[str, Any], quantity: int) -> int:
    """The quantity a per_unit price bills after `transform_quantity`."""
    transform = price.get("transform_quantity")
    if not transform:
        return quantity
    divide_by = int(transform["divide_by"])
    if transform.get("round") == "up":
        return math.ceil(quantity / divide_by) if quantity else 0
    return quantity // divide_by


def exact_amount(price: dict[str, Any], quantity: int) -> Decimal:
    """The line amount before its single rounding."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if price.get("billing_scheme") != "tiered":
        if price.get("unit_amount_decimal") is None and price.get("unit_amount") is None:
            raise ValueError(f"price {price.get('id')} has no unit amount")
        return _unit(price) * transformed_quantity(price, quantity)
    tiers = _tiers(price)
    if price.get("tiers_mode") == "volume":
        tier = tiers[tier_index(tiers, quantity)]
        return _unit(tier) * quantity + _flat(tier)
    total = Decimal(0)
    lower = 0
    for index, tier in enumerate(tiers):
        if index > 0 and quantity <= lower:
            break
        upper = upper_bound(tier)
        top = quantity if upper is None else min(quantity, upper)
        total += _unit(tier) * max(0, top - lower) + _flat(tier)
        if upper is None:
            break
        lower = upper
    return total


def line_amount(price: dict[str, Any], quantity: int) -> int:
    """Minor units Stripe bills for `quantity` of `price`, rounded once, half up."""
    return round_half_up(exact_amount(price, quantity))


def unit_amount_decimal_for(price: dict[str, Any], quantity: int) -> str:
    """What a line's `pricing.unit_amount_decimal` shows.

    per_unit: the price's own unit amount. Tiered: the exact line amount divided by the
    quantity (at most 12 decimal places, Stripe's precision), or "0" for quantity 0."""
    if price.get("billing_scheme") != "tiered":
        return format_decimal(_unit(price))
    if quantity == 0:
        return "0"
    per_unit = (exact_amount(price, quantity) / quantity).quantize(
        _TWELVE_PLACES, rounding=ROUND_HALF_UP
    )
    return format_decimal(per_unit)
