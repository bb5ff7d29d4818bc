"""Coupons turned into discounts, and what a discount takes off an invoice.

A discount is a coupon applied to a customer, a subscription or an invoice
(`discount.source.coupon`, the current API shape). An invoice carries the ids of the discounts
that apply to it (`invoice.discounts`: its own, else its subscription's and its customer's);
each discountable line says how much each took off it (`line.discount_amounts`), the invoice
sums them (`total_discount_amounts`) and `total = subtotal - discounts`. A percentage is rounded
half up per line; a fixed amount is spread over the discountable lines in proportion to their
amounts (the remainder to the largest), never taking a line below zero.
"""

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .periods import add_interval
from .store import Store, StripeError, shape

KIND = "discount"


def coupon_get(store: Store, coupon_id: Any, param: str) -> dict[str, Any]:
    coupon = store.objects.get("coupon", {}).get(coupon_id) if isinstance(coupon_id, str) else None
    if coupon is None:
        raise StripeError(f"No such coupon: '{coupon_id}'", param=param, code="resource_missing")
    if not coupon["valid"]:
        raise StripeError(f"Coupon expired: {coupon_id}", param=param, code="coupon_expired")
    return coupon


def discount_new(
    store: Store,
    coupon: dict[str, Any],
    *,
    at: int,
    customer: str | None,
    subscription: str | None = None,
    invoice: str | None = None,
) -> dict[str, Any]:
    """Redeem a coupon: a stored discount (the coupon's terms kept with it)."""
    end = None
    if coupon["duration"] == "repeating" and coupon.get("duration_in_months"):
        end = add_interval(at, anchor=at, interval="month", count=coupon["duration_in_months"])
    discount = shape(KIND)
    discount.update(
        id=store.new_id("di"),
        checkout_session=None,
        customer=customer,
        customer_account=None,
        end=end,
        invoice=invoice,
        invoice_item=None,
        promotion_code=None,
        source={"coupon": coupon["id"], "type": "coupon"},
        start=at,
        subscription=subscription,
        subscription_item=None,
    )
    with store.lock:
        coupon["times_redeemed"] += 1
        if coupon.get("max_redemptions") and coupon["times_redeemed"] >= coupon["max_redemptions"]:
            coupon["valid"] = False
        store.put(KIND, discount)
        store.private_of(discount["id"])["coupon"] = copy.deepcopy(coupon)
    return discount


def discounts_from_params(
    store: Store, given: Any, *, at: int, customer: str, **owner: str | None
) -> list[str]:
    """`discounts=[{coupon}|{discount}]` (or "" for none): the discount ids to apply."""
    if given in ("", None):
        return []
    if not isinstance(given, list):
        raise StripeError("Invalid array", param="discounts")
    ids = []
    for index, spec in enumerate(given):
        if not isinstance(spec, dict):
            raise StripeError("Invalid hash", param=f"discounts[{index}]")
        if spec.get("discount"):
            store.get(KIND, spec["discount"], label="discount")
            ids.append(spec["discount"])
        elif spec.get("coupon"):
            coupon = coupon_get(store, spec["coupon"], f"discounts[{index}][coupon]")
            ids.append(discount_new(store, coupon, at=at, customer=customer, **owner)["id"])
        else:
            raise StripeError(
                "You must specify a coupon or a discount.", param=f"discounts[{index}]"
            )
    return ids


def _active(discount: dict[str, Any], at: int) -> bool:
    return discount["end"] is None or at < discount["end"]


def inherited_discounts(
    store: Store, customer: dict[str, Any], subscription: dict[str, Any] | None, at: int
) -> list[str]:
    """The discounts an invoice inherits: its subscription's, then its customer's."""
    ids = list((subscription or {}).get("discounts") or [])
    customer_discount = customer.get("discount")
    if customer_discount and _active(customer_discount, at):
        ids.append(customer_discount["id"])
    return [i for i in ids if i in store.objects.get(KIND, {})]


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def apply(store: Store, invoice: dict[str, Any]) -> int:
    """Set every line's discount amounts and the invoice's; the total discount."""
    lines = invoice["lines"]["data"]
    remaining = {line["id"]: line["amount"] for line in lines}
    per_line: dict[str, list[dict[str, Any]]] = {line["id"]: [] for line in lines}
    totals = []
    for discount_id in invoice.get("discounts") or []:
        coupon = store.private_of(discount_id).get("coupon")
        if coupon is None:
            continue
        eligible = [
            line for line in lines if line.get("discountable") and remaining[line["id"]] > 0
        ]
        taken: dict[str, int] = {}
        if coupon.get("percent_off") is not None:
            rate = Decimal(str(coupon["percent_off"])) / 100
            for line in eligible:
                taken[line["id"]] = min(remaining[line["id"]], _round(remaining[line["id"]] * rate))
        elif coupon.get("amount_off") and coupon.get("currency") == invoice["currency"]:
            base = sum(remaining[line["id"]] for line in eligible)
            off = min(coupon["amount_off"], base)
            if base:
                for line in eligible:
                    taken[line["id"]] = off * remaining[line["id"]] // base
                short = off - sum(taken.values())
                for line in sorted(eligible, key=lambda ln: -remaining[ln["id"]]):
                    if short <= 0:
                        break
                    room = remaining[line["id"]] - taken[line["id"]]
                    extra = min(room, short)
                    taken[line["id"]] += extra
                    short -= extra
        for line_id, amount in taken.items():
            remaining[line_id] -= amount
            per_line[line_id].append({"amount": amount, "discount": discount_id})
        totals.append({"amount": sum(taken.values()), "discount": discount_id})
    for line in lines:
        line["discount_amounts"] = per_line[line["id"]]
        line["discounts"] = [d["discount"] for d in per_line[line["id"]]]
    invoice["total_discount_amounts"] = totals
    return sum(t["amount"] for t in totals)


def customer_discount_end(store: Store, customer: dict[str, Any]) -> dict[str, Any] | None:
    """Remove the customer's discount (`customer.discount.deleted`)."""
    with store.lock:
        discount = customer.get("discount")
        customer["discount"] = None
    if discount is not None:
        store.emit("customer.discount.deleted", discount)
    return discount


def after_finalize(store: Store, invoice: dict[str, Any]) -> None:
    """A `once` coupon is used up by the first invoice it applied to."""
    customer = store.objects.get("customer", {}).get(invoice["customer"])
    for discount_id in invoice.get("discounts") or []:
        coupon = store.private_of(discount_id).get("coupon") or {}
        if coupon.get("duration") != "once":
            continue
        if customer and (customer.get("discount") or {}).get("id") == discount_id:
            customer_discount_end(store, customer)
        subscription_id = store.objects.get(KIND, {}).get(discount_id, {}).get("subscription")
        subscription = store.objects.get("subscription", {}).get(subscription_id or "")
        if subscription and discount_id in subscription["discounts"]:
            with store.lock:
                subscription["discounts"] = [
                    d for d in subscription["discounts"] if d != discount_id
                ]
