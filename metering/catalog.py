"""The Stripe catalog the legacy plans become: products, meters and prices, as plain specs.

No I/O. Each spec has a `key`, our durable name for the Stripe object it describes (recorded
with the Stripe id in `CatalogObject`). A price's key is also its Stripe `lookup_key`: a hash
of everything that prices a line, so identical plans share one price and a changed plan gets a
new one.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from billing_project.classifier import USAGE_KINDS, LineKind

from .pricing import LegacyPlan, stripe_volume_tiers
from .usage_types import meter_event_name


@dataclass(frozen=True)
class ProductSpec:
    key: str
    name: str
    kind: str | None  # `metadata.kind`; the usage product's lines take theirs from the price


@dataclass(frozen=True)
class MeterSpec:
    key: str
    kind: LineKind
    event_name: str
    display_name: str


@dataclass(frozen=True)
class PriceSpec:
    key: str
    kind: LineKind
    product_key: str
    currency: str
    unit_amount: int | None = None  # flat (licensed) prices
    tiers: tuple[tuple[str | int, str], ...] = ()  # metered: ((up_to, unit_amount_decimal), ...)
    meter_key: str | None = None

    @property
    def metered(self) -> bool:
        return self.meter_key is not None

    def stripe_tiers(self) -> list[dict]:
        return [{"up_to": up_to, "unit_amount_decimal": unit} for up_to, unit in self.tiers]


PRODUCT_FLAT = ProductSpec("product:account-charges", "Account Charges", LineKind.FLAT.value)
PRODUCT_USAGE = ProductSpec("product:usage-ad-serving", "Usage (Ad Serving)", None)
PRODUCT_MANAGED = ProductSpec(
    "product:managed-services", "Managed Services", LineKind.MANAGED.value
)
PRODUCTS = (PRODUCT_FLAT, PRODUCT_USAGE, PRODUCT_MANAGED)

# One meter per usage type, summing the impressions posted for it, under the event names the
# usage outbox sends (`usage_types`, the one place they are defined).
METERS = {
    kind: MeterSpec(
        key=f"meter:{kind.value}",
        kind=kind,
        event_name=meter_event_name(kind.value),
        display_name=f"{kind.value} impressions",
    )
    for kind in USAGE_KINDS
}


def _digest(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def flat_price_spec(amount_minor: int, currency: str) -> PriceSpec:
    """The licensed monthly price for a flat fee of `amount_minor`."""
    payload = {"kind": "flat", "currency": currency, "amount": amount_minor, "interval": "month"}
    return PriceSpec(
        key=f"legacy-flat-{_digest(payload)}",
        kind=LineKind.FLAT,
        product_key=PRODUCT_FLAT.key,
        currency=currency,
        unit_amount=amount_minor,
    )


def usage_price_spec(kind: LineKind, tiers, currency: str) -> PriceSpec:
    """The metered volume-tiered price on `kind`'s meter reproducing the legacy tiers."""
    stripe_tiers = tuple(
        (tier["up_to"], tier["unit_amount_decimal"])
        for tier in stripe_volume_tiers(tiers, currency)
    )
    meter = METERS[kind]
    payload = {
        "kind": kind.value,
        "currency": currency,
        "interval": "month",
        "meter": meter.event_name,
        "tiers_mode": "volume",
        "tiers": [list(tier) for tier in stripe_tiers],
    }
    return PriceSpec(
        key=f"legacy-{kind.value.lower()}-{_digest(payload)}",
        kind=kind,
        product_key=PRODUCT_USAGE.key,
        currency=currency,
        tiers=stripe_tiers,
        meter_key=meter.key,
    )


def plan_price_specs(plan: LegacyPlan) -> list[tuple[PriceSpec, int | None]]:
    """The prices a plan's subscription holds, with their quantity (None for metered)."""
    flat = Counter(fee.amount_minor for fee in plan.flat_fees)
    items: list[tuple[PriceSpec, int | None]] = [
        (flat_price_spec(amount, plan.currency), count) for amount, count in sorted(flat.items())
    ]
    items.extend(
        (usage_price_spec(kind, plan.tiers[kind], plan.currency), None)
        for kind in USAGE_KINDS
        if kind in plan.tiers
    )
    return items
