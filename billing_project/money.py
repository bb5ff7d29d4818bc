"""Money is integer minor units. Decimal only for sub-cent rates; one rounding rule.

Stripe rounds a line's amount once, half up (ROUND_HALF_UP), from the exact product of quantity
and the unit amount in minor units. Every amount we compute from a rate goes through
`round_minor`, applied once per line; totals are sums of rounded lines.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ROUNDING = ROUND_HALF_UP

# ISO 4217 currencies with no minor unit (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)


class MoneyError(ValueError):
    """A value that cannot be a money amount (float, malformed string, sub-unit amount)."""


def to_decimal(value: int | str | Decimal) -> Decimal:
    """An exact Decimal from an int, str or Decimal; floats are refused, never rounded."""
    if isinstance(value, bool | float):
        raise MoneyError(f"money must not be a float or bool: {value!r}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def round_minor(amount: int | str | Decimal) -> int:
    """Round an exact amount in minor units to an integer, half up: the one rounding place."""
    return int(to_decimal(amount).quantize(Decimal(1), rounding=ROUNDING))


def line_amount_minor(quantity: int, unit_amount_decimal: int | str | Decimal) -> int:
    """quantity x per-unit amount (minor units, may be fractional), rounded once per line."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise MoneyError(f"quantity must be an integer: {quantity!r}")
    return round_minor(to_decimal(unit_amount_decimal) * quantity)


def minor_exponent(currency: str) -> int:
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def major_to_minor(amount: int | str | Decimal, currency: str) -> int:
    """A major-unit amount ("12.34") in minor units; refuses amounts finer than the minor unit."""
    exact = to_decimal(amount).scaleb(minor_exponent(currency))
    if exact != exact.to_integral_value():
        raise MoneyError(f"{amount} {currency.upper()} is not a whole number of minor units")
    return int(exact)


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """Integer minor units as an exact major-unit Decimal (for systems that store dollars)."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise MoneyError(f"minor units must be an integer: {amount_minor!r}")
    return Decimal(amount_minor).scaleb(-minor_exponent(currency))


def format_money(amount_minor: int, currency: str) -> str:
    """For people only (PDF, email, admin, CSV): 123456, "usd" -> "$1,234.56"."""
    exponent = minor_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    major = Decimal(abs(amount_minor)).scaleb(-exponent)
    text = f"{major:,.{exponent}f}"
    code = currency.lower()
    if code == "usd":
        return f"{sign}${text}"
    return f"{sign}{text} {code.upper()}"
