"""Payment methods from Stripe's documented test tokens, attached to customers and charged.

Attaching a test token (`pm_card_visa`, `pm_card_mastercard`, `pm_card_chargeCustomerFail`)
creates a new card payment method on the customer, as Stripe does. `pm_card_chargeCustomerFail`
attaches but every charge on it is declined; `pm_card_visa_chargeDeclined` is declined at once.
https://docs.stripe.com/testing#declined-payments
"""

from typing import Any

from ..app import Request, list_page, route
from ..store import StripeError, missing, shape

KIND = "payment_method"
# token -> (brand, last4, declines when charged)
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", False),
    "pm_card_mastercard": ("mastercard", "4444", False),
    "pm_card_amex": ("amex", "8431", False),
    "pm_card_chargeCustomerFail": ("visa", "0341", True),
}
DECLINED_ON_ATTACH = {"pm_card_visa_chargeDeclined", "pm_card_chargeDeclined"}


def charge_declines(store: Any, payment_method_id: str | None) -> bool | None:
    """Whether charging this attached payment method fails (None: not one of ours)."""
    if not payment_method_id or payment_method_id not in store.objects.get(KIND, {}):
        return None
    return bool(store.private_of(payment_method_id).get("declines"))


def _from_token(request: Request, token: str) -> dict[str, Any]:
    store = request.store
    brand, last4, declines = TEST_CARDS[token]
    method = shape(KIND)
    card = method["card"]
    card.update(
        brand=brand,
        display_brand=brand,
        last4=last4,
        exp_month=12,
        exp_year=2034,
        fingerprint=f"fp{last4}{brand[:4]}",
        generated_from=None,
        wallet=None,
        networks={"available": [brand], "preferred": None},
    )
    card["checks"] = {
        "address_line1_check": None,
        "address_postal_code_check": None,
        "cvc_check": None,
    }
    method.update(
        id=store.new_id("pm"),
        billing_details={
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        card=card,
        created=store.now(),
        customer=None,
        livemode=False,
        metadata={},
        type="card",
    )
    store.put(KIND, method)
    store.private_of(method["id"])["declines"] = declines
    return method


@route("POST", r"/v1/payment_methods/(?P<id>pm_[^/]+)/attach")
def payment_method_attach(request: Request) -> dict[str, Any]:
    store, token = request.store, request.match["id"]
    customer_id = request.params.get("customer")
    if not customer_id:
        raise StripeError("Missing required param: customer.", param="customer")
    customer = store.objects.get("customer", {}).get(customer_id)
    if customer is None:
        raise StripeError(
            f"No such customer: '{customer_id}'", param="customer", code="resource_missing"
        )
    if token in DECLINED_ON_ATTACH:
        raise StripeError(
            "Your card was declined.", status=402, type="card_error", code="card_declined"
        )
    if token in TEST_CARDS:
        method = _from_token(request, token)
    else:
        method = store.objects.get(KIND, {}).get(token)
        if method is None:
            raise missing("PaymentMethod", token)
        if method["customer"] and method["customer"] != customer_id:
            raise StripeError(
                "The payment method you provided has already been attached to a customer."
            )
    with store.lock:
        method["customer"] = customer_id
    store.emit("payment_method.attached", method)
    return method


@route("POST", r"/v1/payment_methods/(?P<id>pm_[^/]+)/detach")
def payment_method_detach(request: Request) -> dict[str, Any]:
    method = payment_method_retrieve(request)
    if not method["customer"]:
        raise StripeError("The payment method you provided is not attached to a customer.")
    with request.store.lock:
        previous = method["customer"]
        method["customer"] = None
    request.store.emit(
        "payment_method.detached", method, previous_attributes={"customer": previous}
    )
    return method


@route("GET", r"/v1/payment_methods/(?P<id>pm_[^/]+)")
def payment_method_retrieve(request: Request) -> dict[str, Any]:
    method = request.store.objects.get(KIND, {}).get(request.match["id"])
    if method is None:
        raise missing("PaymentMethod", request.match["id"])
    return method


@route("GET", r"/v1/payment_methods")
def payment_method_list(request: Request) -> dict[str, Any]:
    items = request.store.all(KIND)
    if customer := request.params.get("customer"):
        items = [m for m in items if m["customer"] == customer]
    if kind := request.params.get("type"):
        items = [m for m in items if m["type"] == kind]
    return list_page(request, items, "/v1/payment_methods")


@route("GET", r"/v1/customers/(?P<id>cus_[^/]+)/payment_methods")
def customer_payment_method_list(request: Request) -> dict[str, Any]:
    customer = request.store.get("customer", request.match["id"])
    items = [m for m in request.store.all(KIND) if m["customer"] == customer["id"]]
    if kind := request.params.get("type"):
        items = [m for m in items if m["type"] == kind]
    return list_page(request, items, f"/v1/customers/{customer['id']}/payment_methods")
