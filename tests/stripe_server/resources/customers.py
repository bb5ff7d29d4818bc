"""Customers: create, retrieve, update, list, delete; `expand[]=sources`."""

from typing import Any

from ..app import Request, list_page, route
from ..store import StripeError, shape
from .common import deleted, metadata_update, reject_unknown

UPDATABLE = ("email", "name", "description", "phone", "preferred_locales", "address")
SEED_FIELDS = ("email", "name", "description", "phone", "metadata", "address", "invoice_settings")


def _sources(server: Any, customer: dict[str, Any]) -> dict[str, Any]:
    url = f"/v1/customers/{customer['id']}/sources"
    return {"object": "list", "data": [], "has_more": False, "url": url, "total_count": 0}


EXPANDERS = {("customer", "sources"): _sources}


def _invoice_settings(customer: dict[str, Any], params: dict[str, Any]) -> None:
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        customer["invoice_settings"]["default_payment_method"] = (
            settings["default_payment_method"] or None
        )


@route("POST", r"/_harness/customers")
def customer_seed(request: Request) -> dict[str, Any]:
    """Not Stripe's API: put a customer that exists in the real account (a legacy
    `payment_customer_id`) into this server under its own id, on the given test clock."""
    # Not Stripe's API, so no generated params type: a hand-written list.
    reject_unknown(request.params, {"id", "test_clock", *SEED_FIELDS})
    object_id = request.params.get("id", "")
    if not object_id.startswith("cus_"):
        raise StripeError("id must be a customer id (cus_...)", param="id")
    existing = request.store.objects.get("customer", {}).get(object_id)
    if existing is None:
        return customer_create(request, object_id=object_id)
    if clock := request.params.get("test_clock"):
        request.store.get("test_helpers.test_clock", clock, label="test clock")
        existing["test_clock"] = clock
    return existing


@route("POST", r"/v1/customers")
def customer_create(request: Request, object_id: str | None = None) -> dict[str, Any]:
    store, params = request.store, request.params
    customer = shape("customer")
    customer.update(
        id=object_id or store.new_id("cus"),
        created=store.now(),
        discount=None,
        email=params.get("email"),
        name=params.get("name"),
        description=params.get("description"),
        phone=params.get("phone"),
        metadata=metadata_update({}, params.get("metadata", {})),
        invoice_prefix=store.new_id("x")[2:10].upper(),
        currency=None,
        test_clock=params.get("test_clock"),
        decline_payments=False,
    )
    customer.pop("decline_payments")
    if isinstance(params.get("address"), dict):
        customer["address"].update(params["address"])
    if customer["test_clock"]:
        store.get("test_helpers.test_clock", customer["test_clock"], label="test clock")
    _invoice_settings(customer, params)
    store.put("customer", customer)
    store.emit("customer.created", customer)
    return customer


@route("GET", r"/v1/customers/(?P<id>cus_[^/]+)")
def customer_retrieve(request: Request) -> dict[str, Any]:
    customer = request.store.find(request.match["id"])
    if customer is None or customer.get("object") != "customer":
        raise StripeError(
            f"No such customer: '{request.match['id']}'",
            status=404,
            code="resource_missing",
            param="id",
        )
    return customer


@route("POST", r"/v1/customers/(?P<id>cus_[^/]+)")
def customer_update(request: Request) -> dict[str, Any]:
    customer = customer_retrieve(request)
    params = request.params
    previous: dict[str, Any] = {}
    with request.store.lock:
        for field in UPDATABLE:
            if field in params and params[field] != customer.get(field):
                previous[field] = customer.get(field)
                customer[field] = params[field] or None
        if "invoice_settings" in params:
            previous["invoice_settings"] = dict(customer["invoice_settings"])
            _invoice_settings(customer, params)
        if "metadata" in params:
            merged = metadata_update(customer["metadata"], params["metadata"])
            if merged != customer["metadata"]:
                previous["metadata"] = customer["metadata"]
                customer["metadata"] = merged
    if previous:
        request.store.emit("customer.updated", customer, previous_attributes=previous)
    return customer


@route("DELETE", r"/v1/customers/(?P<id>cus_[^/]+)")
def customer_delete(request: Request) -> dict[str, Any]:
    customer = request.store.delete("customer", request.match["id"])
    request.store.emit("customer.deleted", customer)
    return deleted(customer)


@route("GET", r"/v1/customers")
def customer_list(request: Request) -> dict[str, Any]:
    items = request.store.all("customer")
    if email := request.params.get("email"):
        items = [c for c in items if c.get("email") == email]
    return list_page(request, items, "/v1/customers")
