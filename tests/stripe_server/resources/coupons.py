"""Coupons (create, retrieve, update, delete, list) and customer discounts.

In this API version a customer's discount cannot be set through `POST /v1/customers/{id}`
(there is no `coupon`, `promotion_code` or `discounts` parameter); it comes from the Dashboard
or Checkout, so the server offers a harness route for it. Removing it is Stripe's
`DELETE /v1/customers/{id}/discount`. Subscriptions and invoices take `discounts=[{coupon}]`.
"""

import secrets
import string
from typing import Any

from ..app import Request, list_page, route
from ..clocks import customer_time
from ..discounts import coupon_get, customer_discount_end, discount_new
from ..store import StripeError, missing, shape
from .common import deleted, metadata_update, reject_unknown, to_int

DURATIONS = ("forever", "once", "repeating")


@route("POST", r"/v1/coupons")
def coupon_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    percent, amount = params.get("percent_off"), params.get("amount_off")
    if (percent is None) == (amount is None):
        raise StripeError(
            "You must pass exactly one of `amount_off` or `percent_off`.", param="percent_off"
        )
    if amount is not None and not params.get("currency"):
        raise StripeError("You must pass currency when passing amount_off.", param="currency")
    duration = params.get("duration", "once")
    months = params.get("duration_in_months")
    if duration == "repeating" and months is None:
        raise StripeError(
            "You must pass duration_in_months when duration is repeating.",
            param="duration_in_months",
        )
    coupon_id = params.get("id") or "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
    )
    if coupon_id in store.objects.get("coupon", {}):
        raise StripeError("Coupon already exists.", param="id", code="resource_already_exists")
    if percent is not None:
        percent_value = float(percent)
        if not 0 < percent_value <= 100:
            raise StripeError(
                "Invalid percent_off: must be between 0 and 100.", param="percent_off"
            )
    coupon = shape("coupon")
    coupon.update(
        id=coupon_id,
        amount_off=to_int(amount, "amount_off") if amount is not None else None,
        created=store.now(),
        currency=params["currency"].lower() if amount is not None else None,
        duration=duration,
        duration_in_months=to_int(months, "duration_in_months")
        if duration == "repeating"
        else None,
        livemode=False,
        max_redemptions=to_int(params["max_redemptions"], "max_redemptions")
        if params.get("max_redemptions")
        else None,
        metadata=metadata_update({}, params.get("metadata", {})),
        name=params.get("name"),
        percent_off=float(percent) if percent is not None else None,
        redeem_by=to_int(params["redeem_by"], "redeem_by") if params.get("redeem_by") else None,
        times_redeemed=0,
        valid=True,
    )
    store.put("coupon", coupon)
    store.emit("coupon.created", coupon)
    return coupon


def _coupon(request: Request) -> dict[str, Any]:
    coupon = request.store.objects.get("coupon", {}).get(request.match["id"])
    if coupon is None:
        raise missing("coupon", request.match["id"])
    return coupon


@route("GET", r"/v1/coupons/(?P<id>[^/]+)")
def coupon_retrieve(request: Request) -> dict[str, Any]:
    return _coupon(request)


@route("POST", r"/v1/coupons/(?P<id>[^/]+)")
def coupon_update(request: Request) -> dict[str, Any]:
    coupon = _coupon(request)
    previous: dict[str, Any] = {}
    with request.store.lock:
        if "name" in request.params:
            previous["name"] = coupon["name"]
            coupon["name"] = request.params["name"] or None
        if "metadata" in request.params:
            previous["metadata"] = dict(coupon["metadata"])
            coupon["metadata"] = metadata_update(coupon["metadata"], request.params["metadata"])
    request.store.emit("coupon.updated", coupon, previous_attributes=previous)
    return coupon


@route("DELETE", r"/v1/coupons/(?P<id>[^/]+)")
def coupon_delete(request: Request) -> dict[str, Any]:
    coupon = request.store.delete("coupon", _coupon(request)["id"])
    request.store.emit("coupon.deleted", coupon)
    return deleted(coupon)


@route("GET", r"/v1/coupons")
def coupon_list(request: Request) -> dict[str, Any]:
    return list_page(request, request.store.all("coupon"), "/v1/coupons")


@route("POST", r"/_harness/customers/(?P<id>cus_[^/]+)/discount")
def customer_discount_set(request: Request) -> dict[str, Any]:
    """Not Stripe's API: apply a coupon to a customer as the Dashboard does
    (`customer.discount.created`, or `.updated` when it replaces one)."""
    # Not Stripe's API, so no generated params type: a hand-written list.
    reject_unknown(request.params, {"coupon"})
    store = request.store
    customer = store.get("customer", request.match["id"])
    coupon = coupon_get(store, request.params.get("coupon"), "coupon")
    at = customer_time(store, customer["id"])
    discount = discount_new(store, coupon, at=at, customer=customer["id"])
    with store.lock:
        previous = customer.get("discount")
        customer["discount"] = discount
    if previous is None:
        store.emit("customer.discount.created", discount)
    else:
        store.emit(
            "customer.discount.updated",
            discount,
            previous_attributes={"source": previous["source"], "start": previous["start"]},
        )
    return customer


@route("DELETE", r"/v1/customers/(?P<id>cus_[^/]+)/discount")
def customer_discount_delete(request: Request) -> dict[str, Any]:
    customer = request.store.get("customer", request.match["id"])
    if not customer.get("discount"):
        raise StripeError(
            f"Customer {customer['id']} does not have a discount.",
            status=404,
            code="resource_missing",
        )
    discount = customer_discount_end(request.store, customer)
    return dict(discount or {}, deleted=True)
