"""The one line classifier: which kind of charge a Stripe line or a legacy line is.

Every Stripe object we create (products, prices, invoice items) carries `metadata.kind`, and
our catalog keeps the kind of every price and product we made; the PDF, reconciliation and
reports group lines by it. A line whose kind is unknown is `other`, never guessed from its
description.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models


class LineKind(models.TextChoices):
    FLAT = "flat", "Flat subscription"
    ST = "ST", "ST impressions"
    RM = "RM", "RM impressions"
    CV = "CV", "CV impressions"
    MANAGED = "managed", "Managed services"
    OTHER = "other", "Other"
    # Reductions, negative amounts: a coupon's discount on a line or an invoice, and what a
    # credit note gives back. Legacy invoices carry them as lines of these kinds.
    DISCOUNT = "discount", "Discounts"
    CREDIT_NOTE = "credit_note", "Credit notes"


USAGE_KINDS = (LineKind.ST, LineKind.RM, LineKind.CV)
_BY_VALUE = {kind.value.lower(): kind for kind in LineKind}


def kind_from_value(value: Any) -> LineKind | None:
    """A `metadata.kind` value as a LineKind (case-insensitive), or None if it is not one."""
    if not isinstance(value, str):
        return None
    return _BY_VALUE.get(value.strip().lower())


def kind_from_metadata(*sources: Mapping[str, Any] | None) -> LineKind:
    """The first recognised `kind` among metadata dicts, most specific first; else OTHER."""
    for metadata in sources:
        if metadata:
            kind = kind_from_value(metadata.get("kind"))
            if kind is not None:
                return kind
    return LineKind.OTHER


def classify_stripe_line(
    line: Mapping[str, Any],
    *,
    prices: Mapping[str, Mapping[str, Any]] | None = None,
    products: Mapping[str, Mapping[str, Any]] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> LineKind:
    """Kind of a Stripe invoice line (API 2025+ shape: `parent`, `pricing.price_details`).

    An invoice item's line carries the item's metadata, where we write `kind`. A subscription
    line carries the *subscription's* metadata (Stripe copies it onto every line of the
    subscription), which says nothing about the line: its kind comes from the price. Prices
    and products are looked up in `kinds` (Stripe id -> kind, the catalog we created), then
    in their own metadata when given (by id in `prices`/`products`, or expanded).
    """
    details = (line.get("pricing") or {}).get("price_details") or {}
    price = details.get("price")
    product = details.get("product")
    price_obj = price if isinstance(price, Mapping) else (prices or {}).get(price or "")
    price_id = price.get("id") if isinstance(price, Mapping) else price
    if product is None and isinstance(price_obj, Mapping):
        product = price_obj.get("product")
    product_obj = product if isinstance(product, Mapping) else (products or {}).get(product or "")
    product_id = product.get("id") if isinstance(product, Mapping) else product
    catalog = kinds or {}
    from_subscription = (line.get("parent") or {}).get("type") == "subscription_item_details"
    return kind_from_metadata(
        None if from_subscription else line.get("metadata"),
        {"kind": catalog.get(price_id or "")},
        {"kind": catalog.get(product_id or "")},
        (price_obj or {}).get("metadata"),
        (product_obj or {}).get("metadata"),
    )


def totals_by_kind(pairs: Iterable[tuple[LineKind, int]]) -> dict[str, int]:
    """Sum minor-unit amounts per kind; every kind present, zero when absent."""
    totals = {kind.value: 0 for kind in LineKind}
    for kind, amount_minor in pairs:
        totals[LineKind(kind).value] += amount_minor
    return totals
