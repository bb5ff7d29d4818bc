"""Invoices: create, update, finalize, pay, void, mark uncollectible, delete drafts, list lines,
list by customer/subscription/status/created range; hosted invoice page."""

from typing import Any

from ..app import Request, list_page, route
from ..invoicing import (
    attach_pending_items,
    invoice_attempt_payment,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_new,
    invoice_void,
)
from ..store import StripeError
from .common import deleted, metadata_update, to_bool, to_int


def _payments(server: Any, invoice: dict[str, Any]) -> dict[str, Any]:
    payments = [p for p in server.store.all("invoice_payment") if p["invoice"] == invoice["id"]]
    url = f"/v1/invoice_payments?invoice={invoice['id']}"
    return {"object": "list", "data": payments, "has_more": False, "url": url}


EXPANDERS = {("invoice", "payments"): _payments}


def _get(request: Request) -> dict[str, Any]:
    invoice = request.store.get("invoice", request.match["id"])
    invoice.setdefault("payments", None)
    return invoice


@route("POST", r"/v1/invoices")
def invoice_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    customer_id = params.get("customer")
    if not customer_id:
        raise StripeError("Missing required param: customer.", param="customer")
    customer = store.objects.get("customer", {}).get(customer_id)
    if customer is None:
        raise StripeError(
            f"No such customer: '{customer_id}'", param="customer", code="resource_missing"
        )
    collection = params.get("collection_method", "charge_automatically")
    if collection not in ("charge_automatically", "send_invoice"):
        raise StripeError(f"Invalid collection_method: {collection}", param="collection_method")
    days = (
        to_int(params["days_until_due"], "days_until_due") if "days_until_due" in params else None
    )
    invoice = invoice_new(
        store,
        customer=customer,
        billing_reason="manual",
        collection_method=collection,
        days_until_due=days,
        metadata=metadata_update({}, params.get("metadata", {})),
        description=params.get("description"),
        auto_advance=to_bool(params.get("auto_advance", "false"), "auto_advance"),
        currency=params.get("currency", "usd"),
    )
    if "due_date" in params:
        invoice["due_date"] = to_int(params["due_date"], "due_date")
    store.put("invoice", invoice)
    behavior = params.get("pending_invoice_items_behavior", "exclude")
    if behavior not in ("include", "exclude"):
        raise StripeError(
            f"Invalid pending_invoice_items_behavior: {behavior}",
            param="pending_invoice_items_behavior",
        )
    if behavior == "include":
        attach_pending_items(store, invoice)
    store.emit("invoice.created", invoice)
    return invoice


@route("GET", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_retrieve(request: Request) -> dict[str, Any]:
    return _get(request)


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_update(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    params = request.params
    previous: dict[str, Any] = {}
    if "metadata" in params:
        previous["metadata"] = dict(invoice["metadata"])
        invoice["metadata"] = metadata_update(invoice["metadata"], params["metadata"])
    editable = (
        "description",
        "footer",
        "days_until_due",
        "due_date",
        "auto_advance",
        "collection_method",
    )
    for field in editable:
        if field in params:
            if invoice["status"] != "draft" and field != "auto_advance":
                raise StripeError(
                    f"Finalized invoices can't be updated in this way; `{field}` can only be "
                    "set on drafts.",
                    param=field,
                )
            previous[field] = invoice.get(field)
            value = params[field]
            if field in ("days_until_due", "due_date"):
                value = to_int(value, field)
            elif field == "auto_advance":
                value = to_bool(value, field)
            invoice[field] = value
    if previous:
        request.store.emit("invoice.updated", invoice, previous_attributes=previous)
    return invoice


@route("DELETE", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_delete(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    if invoice["status"] != "draft":
        raise StripeError("You can only delete draft invoices.")
    for item in request.store.all("invoiceitem"):
        if item["invoice"] == invoice["id"]:
            item["invoice"] = None
    request.store.delete("invoice", invoice["id"])
    request.store.emit("invoice.deleted", invoice)
    return deleted(invoice)


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/finalize")
def invoice_finalize_route(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    if "auto_advance" in request.params:
        invoice["auto_advance"] = to_bool(request.params["auto_advance"], "auto_advance")
    return invoice_finalize(request.store, request.server, invoice)


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/pay")
def invoice_pay(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    if invoice["status"] == "draft":
        invoice_finalize(request.store, request.server, invoice)
        if invoice["status"] == "paid":
            return invoice
    if invoice["status"] == "paid":
        raise StripeError("Invoice is already paid.", code="invoice_already_paid")
    out_of_band = to_bool(request.params.get("paid_out_of_band", "false"), "paid_out_of_band")
    return invoice_attempt_payment(
        request.store, invoice, raise_on_decline=True, out_of_band=out_of_band
    )


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/void")
def invoice_void_route(request: Request) -> dict[str, Any]:
    return invoice_void(request.store, _get(request))


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/mark_uncollectible")
def invoice_mark_uncollectible_route(request: Request) -> dict[str, Any]:
    return invoice_mark_uncollectible(request.store, _get(request))


@route("GET", r"/v1/invoices/(?P<id>in_[^/]+)/lines")
def invoice_lines(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    lines = list(invoice["lines"]["data"])
    # Lines keep invoice order; list_page orders by `created`, so give them a stable one.
    for position, line in enumerate(lines):
        line.setdefault("created", -position)
    page = list_page(request, lines, f"/v1/invoices/{invoice['id']}/lines")
    for line in page["data"]:
        line.pop("created", None)
    return page


@route("GET", r"/v1/invoices")
def invoice_list(request: Request) -> dict[str, Any]:
    from .events import created_filter

    params = request.params
    items = request.store.all("invoice")
    if customer := params.get("customer"):
        items = [i for i in items if i["customer"] == customer]
    if status := params.get("status"):
        items = [i for i in items if i["status"] == status]
    if subscription := params.get("subscription"):
        items = [
            i
            for i in items
            if ((i.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            == subscription
        ]
    if collection := params.get("collection_method"):
        items = [i for i in items if i["collection_method"] == collection]
    items = created_filter(items, params.get("created"))
    return list_page(request, items, "/v1/invoices")
