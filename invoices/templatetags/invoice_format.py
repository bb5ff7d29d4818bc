"""How the invoice PDF writes money, rates and quantities; every amount goes through format_money.

Rates are priced by Stripe in minor units per unit with up to 12 decimals (`unit_amount_decimal`),
finer than any amount format_money accepts. A rate is written as format_money writes the whole
minor units, with the sub-minor digits Stripe priced in kept, so "$2.125" is never rounded to
"$2.13" on the document a customer checks against their contract.
"""

import re
from decimal import Decimal

from django import template

from billing_project.money import MoneyError, format_money, to_decimal

register = template.Library()

IMPRESSIONS_PER_CPM = 1000

_MONEY_PARTS = re.compile(r"^(?P<prefix>\D*)(?P<number>\d[\d,]*(?:\.\d+)?)(?P<suffix>.*)$")


@register.filter
def money(amount_minor: int, currency: str) -> str:
    """`{{ amount|money:document.currency }}`."""
    return format_money(amount_minor, currency)


def rate_text(rate_minor: str | Decimal, currency: str) -> str:
    """An exact rate in minor units as money text, keeping digits finer than the minor unit.

    "250", "usd" -> "$2.50"; "212.5", "usd" -> "$2.125"; "12.5", "jpy" -> "12.5 JPY".
    """
    exact = to_decimal(rate_minor)
    whole = int(abs(exact))
    fraction = abs(exact) - whole
    text = format_money(whole, currency)
    if fraction:
        sub_minor = format(fraction.normalize(), "f").split(".")[1]
        parts = _MONEY_PARTS.match(text)
        if parts is None:
            raise MoneyError(f"cannot place sub-minor digits in {text!r}")
        number = parts["number"]
        number += sub_minor if "." in number else "." + sub_minor
        text = f"{parts['prefix']}{number}{parts['suffix']}"
    return f"-{text}" if exact < 0 else text


def cpm_text(unit_amount_decimal: str | Decimal, currency: str) -> str:
    """A per-impression rate in minor units as a price per thousand in major units.

    Stripe prices impressions per unit ("0.25" cents each); people read CPMs: "$2.50 / 1,000".
    """
    per_thousand = to_decimal(unit_amount_decimal) * IMPRESSIONS_PER_CPM
    return f"{rate_text(per_thousand, currency)} / {IMPRESSIONS_PER_CPM:,}"


@register.filter
def cpm(unit_amount_decimal: str | None, currency: str) -> str:
    """`{{ line.unit_amount_decimal|cpm:currency }}`; an em dash when Stripe gave no unit rate."""
    return "—" if unit_amount_decimal in (None, "") else cpm_text(unit_amount_decimal, currency)


@register.filter
def unit_price(unit_amount_decimal: str | None, currency: str) -> str:
    """A unit price in minor units as money; an em dash when Stripe gave no unit rate."""
    if unit_amount_decimal in (None, ""):
        return "—"
    return rate_text(unit_amount_decimal, currency)


@register.filter
def negate(amount_minor: int) -> int:
    """A reduction written as the negative amount it is: `{{ discount|negate|money:currency }}`."""
    return -amount_minor


@register.filter
def count(value: int) -> str:
    """An integer with thousands separators: 1234567 -> "1,234,567"."""
    return f"{int(value):,}"
