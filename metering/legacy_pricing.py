"""The legacy charge rules, in integer minor units: the one place they live.

Pure Python (no database). Assumptions, taken from the legacy `Billing_model.php` and the
`account_plan_usage` / `account_plan_sub` / `managed_service_job` tables:

- `usage_rate` is dollars per 1,000 impressions (a CPM), an exact Decimal; never a float.
- Volume pricing, not graduated: tiers are ordered by ceiling (`usage_max`, exclusive; None is
  no ceiling and sorts last) and the first tier with `quantity < usage_max` (strictly) gives
  one rate for ALL units. A quantity equal to a ceiling takes the next tier.
- A quantity at or above the highest ceiling when no tier is open has no price: an error.
- A usage line's amount is quantity x rate / 1,000 dollars, computed exactly in minor units
  and rounded once per line, half up (`billing_project.money.line_amount_minor`), as Stripe
  rounds a line. Flat fees and managed-service jobs are whole amounts (`major_to_minor`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from billing_project.money import line_amount_minor, minor_exponent, to_decimal

RATE_UNIT_QUANTITY_EXPONENT = 3
"""Legacy rates are per 10**3 = 1,000 impressions."""


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValueError(f"quantity must be an integer number of impressions: {quantity!r}")
    if quantity < 0:
        raise ValueError(f"quantity must not be negative: {quantity}")


@dataclass(frozen=True)
class UsageTier:
    """One `account_plan_usage` row: exclusive ceiling (None = none) and dollars per 1,000."""

    usage_max: int | None
    usage_rate: Decimal

    def __post_init__(self) -> None:
        if self.usage_max is not None and (
            isinstance(self.usage_max, bool)
            or not isinstance(self.usage_max, int)
            or self.usage_max < 0
        ):
            raise ValueError(f"usage_max must be an integer >= 0 or None: {self.usage_max!r}")
        rate = to_decimal(self.usage_rate)
        if rate < 0:
            raise ValueError(f"usage_rate must not be negative: {rate}")
        object.__setattr__(self, "usage_rate", rate)


def _ceiling_key(tier: UsageTier) -> tuple[bool, int]:
    return (tier.usage_max is None, tier.usage_max or 0)


def legacy_tiers_ordered(tiers: Iterable[UsageTier]) -> list[UsageTier]:
    """Tiers by ascending ceiling, the open tier last; refuses none and ambiguous ceilings."""
    ordered = sorted(tiers, key=_ceiling_key)
    if not ordered:
        raise ValueError("no usage tiers: the quantity cannot be priced")
    for lower, upper in pairwise(ordered):
        if lower.usage_max == upper.usage_max and lower.usage_rate != upper.usage_rate:
            ceiling = "no ceiling" if lower.usage_max is None else f"ceiling {lower.usage_max}"
            raise ValueError(
                f"two tiers with {ceiling} and different rates "
                f"({lower.usage_rate}, {upper.usage_rate}): the rate is ambiguous"
            )
    return ordered


def legacy_usage_tier(tiers: Iterable[UsageTier], quantity: int) -> UsageTier:
    """The tier whose rate applies to all `quantity` units: the first with quantity < usage_max."""
    _check_quantity(quantity)
    ordered = legacy_tiers_ordered(tiers)
    for tier in ordered:
        if tier.usage_max is None or quantity < tier.usage_max:
            return tier
    raise ValueError(
        f"quantity {quantity} is at or above the highest tier ceiling "
        f"({ordered[-1].usage_max}) and no tier is open-ended: no legacy rate applies"
    )


def legacy_usage_rate(tiers: Iterable[UsageTier], quantity: int) -> Decimal:
    """The legacy rate (dollars per 1,000) for all units of `quantity`; strict `<` on ceilings."""
    return legacy_usage_tier(tiers, quantity).usage_rate


def legacy_unit_amount_minor(rate: Decimal, currency: str = "usd") -> Decimal:
    """A per-1,000 major-unit rate as an exact per-unit amount in minor units (2.50 -> 0.25)."""
    return to_decimal(rate).scaleb(minor_exponent(currency) - RATE_UNIT_QUANTITY_EXPONENT)


def legacy_usage_amount_minor(
    tiers: Iterable[UsageTier], quantity: int, currency: str = "usd"
) -> int:
    """A usage line in minor units: quantity x tier rate, rounded once, half up; zero for zero."""
    _check_quantity(quantity)
    if quantity == 0:
        return 0
    rate = legacy_usage_rate(tiers, quantity)
    return line_amount_minor(quantity, legacy_unit_amount_minor(rate, currency))
