"""The price engine: what the legacy system charges an account for a service month, and the
Stripe price that reproduces it. Pure Python, integer minor units.

Assumptions (the legacy rules themselves live in `metering.legacy_pricing`):

- A legacy usage rate is dollars per 1,000 impressions. Stripe tiered prices cannot use
  `transform_quantity`, so the imported price is per impression: `unit_amount_decimal` is the
  rate in cents divided by 1,000 (2.50 $/1,000 -> "0.25" cents per impression). Legacy rates
  have at most 6 decimals, so the per-impression amount has at most 7: exact within Stripe's 12.
- The legacy tier rule is Stripe's `volume` mode (one rate for all units), but the ceilings
  differ: legacy uses `quantity < usage_max`, Stripe's `up_to` is inclusive. A legacy ceiling
  `usage_max` therefore becomes `up_to = usage_max - 1`; a ceiling of 0 or 1 can only hold
  zero impressions (which cost nothing in any tier) and is left out.
- A plan without an open-ended tier has no legacy rate above its highest ceiling, whereas
  Stripe needs a last `up_to=inf` tier: such a plan cannot be imported (a clear error).
- Both sides round once per line, half up (`billing_project.money.line_amount_minor`); a
  month's total is the sum of its rounded lines. Flat fees and managed jobs are whole amounts.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from billing_project.classifier import USAGE_KINDS, LineKind
from billing_project.money import line_amount_minor

from .legacy_pricing import (
    UsageTier,
    legacy_tiers_ordered,
    legacy_unit_amount_minor,
    legacy_usage_amount_minor,
)

STRIPE_DECIMAL_PLACES = 12
INF = "inf"


class PlanError(ValueError):
    """A legacy plan that cannot be priced or imported as it stands."""


@dataclass(frozen=True)
class FlatFee:
    """One `account_plan_sub` row, in minor units."""

    name: str
    invoice_line: str
    amount_minor: int


@dataclass(frozen=True)
class LegacyPlan:
    """An account's current legacy plan: flat fees and impression tiers per usage type."""

    acct_id: int
    currency: str = "usd"
    flat_fees: tuple[FlatFee, ...] = ()
    tiers: Mapping[LineKind, tuple[UsageTier, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeLine:
    """One line of a month's charge, rounded once."""

    kind: LineKind
    description: str
    quantity: int
    amount_minor: int


def stripe_decimal(value: Decimal) -> str:
    """Stripe's decimal string: plain notation, no trailing zeros, at most 12 places."""
    normal = value.normalize()
    if normal == normal.to_integral_value():
        return str(int(normal))
    text = format(normal, "f")
    if len(text.split(".")[1]) > STRIPE_DECIMAL_PLACES:
        raise PlanError(f"{text} has more than {STRIPE_DECIMAL_PLACES} decimal places")
    return text


def stripe_volume_tiers(tiers: Iterable[UsageTier], currency: str = "usd") -> list[dict]:
    """Legacy tiers as Stripe `volume` tiers: inclusive `up_to`, per-unit minor amounts."""
    ordered = legacy_tiers_ordered(tiers)
    if ordered[-1].usage_max is not None:
        raise PlanError(
            f"no open-ended tier: quantities of {ordered[-1].usage_max} or more have no "
            "legacy rate, and a Stripe tiered price must end with up_to=inf"
        )
    result: list[dict] = []
    for tier in ordered:
        if result and tier.usage_max is not None and result[-1]["up_to"] == tier.usage_max - 1:
            continue  # the same ceiling listed twice with the same rate
        unit = stripe_decimal(legacy_unit_amount_minor(tier.usage_rate, currency))
        if tier.usage_max is None:
            result.append({"up_to": INF, "unit_amount_decimal": unit})
        elif tier.usage_max > 1:
            result.append({"up_to": tier.usage_max - 1, "unit_amount_decimal": unit})
    return result


def stripe_volume_amount_minor(stripe_tiers: Sequence[Mapping], quantity: int) -> int:
    """What Stripe bills for `quantity` on volume tiers: the tier whose inclusive `up_to`
    holds the quantity prices every unit (plus its flat amount), rounded once, half up."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValueError(f"quantity must be a non-negative integer: {quantity!r}")
    for tier in stripe_tiers:
        up_to = tier.get("up_to")
        if up_to in (None, INF) or quantity <= int(up_to):
            unit = Decimal(str(tier.get("unit_amount_decimal") or tier.get("unit_amount") or 0))
            flat = Decimal(str(tier.get("flat_amount_decimal") or tier.get("flat_amount") or 0))
            return line_amount_minor(1, unit * quantity + flat)
    raise ValueError("the tiers do not end with an up_to=inf tier")


def legacy_month_charge(
    plan: LegacyPlan,
    *,
    usage: Mapping[str, int],
    managed: Iterable[tuple[str, int]] = (),
) -> list[ChargeLine]:
    """The legacy charge for one service month: flat fees, one line per usage type with
    tiers, then managed jobs (description, amount_minor). Usage without tiers is refused."""
    lines = [
        ChargeLine(LineKind.FLAT, fee.invoice_line or fee.name, 1, fee.amount_minor)
        for fee in plan.flat_fees
    ]
    unknown = {str(kind) for kind, quantity in usage.items() if quantity} - {
        str(kind) for kind in plan.tiers
    }
    if unknown:
        raise PlanError(
            f"account {plan.acct_id} has usage of type {', '.join(sorted(unknown))} but no "
            "tiers for it: the usage cannot be priced"
        )
    for kind in USAGE_KINDS:
        if kind not in plan.tiers:
            continue
        quantity = int(usage.get(kind.value, 0))
        amount = legacy_usage_amount_minor(plan.tiers[kind], quantity, plan.currency)
        lines.append(ChargeLine(kind, f"{kind.value} impressions", quantity, amount))
    lines.extend(
        ChargeLine(LineKind.MANAGED, description, 1, amount_minor)
        for description, amount_minor in managed
    )
    return lines


def charge_total_minor(lines: Iterable[ChargeLine]) -> int:
    """A month's total: the sum of its rounded lines."""
    return sum(line.amount_minor for line in lines)
