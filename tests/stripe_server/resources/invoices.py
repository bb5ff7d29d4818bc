"""Invoices: create, update, finalize, pay, void, mark uncollectible, delete drafts, list lines,
list by customer/subscription/status/created range; hosted invoice page."""

from typing import Any

from ..app import Request, list_page, route
from ..discounts import discounts_from_params
from ..invoicing import (
    attach_pending_items,
    invoice_attempt_payment,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_new,
    invoice_recalculate,
    invoice_void,
)
from ..store import StripeError
from .common import customer_param, deleted, metadata_update, to_bool, to_int


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
    customer = customer_param(store, params)
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
    behavior = params.get("pending_invoice_items_behavior", "exclude")
    if behavior not in ("include", "exclude"):
        raise StripeError(
            f"Invalid pending_invoice_items_behavior: {behavior}",
            param="pending_invoice_items_behavior",
        )
    if "discounts" in params:
        invoice["discounts"] = discounts_from_params(
            store,
            params["discounts"],
            at=invoice["created"],
            customer=customer["id"],
            invoice=invoice["id"],
        )
    store.put("invoice", invoice)
    if behavior == "include":
        attach_pending_items(store, invoice)
    invoice_recalculate(store, invoice)
    store.emit("invoice.created", invoice)
    return invoice


DRAFT_FIELDS = (
    "description",
    "footer",
    "days_until_due",
    "due_date",
    "auto_advance",
    "collection_method",
)
OPEN_FIELDS = ("description", "footer", "auto_advance")


@route("GET", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_retrieve(request: Request) -> dict[str, Any]:
    return _get(request)


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_update(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    params = request.params
    status = invoice["status"]
    # Stripe: drafts are fully editable; once finalized, monetary values, collection_method
    # and the due date are not. The memo (`description`), footer and auto_advance stay
    # editable while the invoice is open or uncollectible; paid and void invoices are final.
    # Metadata is editable in every status.
    allowed = {
        "draft": DRAFT_FIELDS,
        "open": OPEN_FIELDS,
        "uncollectible": OPEN_FIELDS,
    }.get(status, ())
    for field in DRAFT_FIELDS:
        if field in params and field not in allowed:
            reason = (
                "it can only be set on drafts"
                if field not in OPEN_FIELDS
                else "paid and void invoices can't be changed"
            )
            raise StripeError(
                f"This invoice is {status} and `{field}` can't be updated: {reason}.",
                param=field,
                code="invoice_not_editable",
            )
    values: dict[str, Any] = {}
    for field in DRAFT_FIELDS:
        if field in params:
            value = params[field]
            if field in ("days_until_due", "due_date"):
                value = to_int(value, field)
            elif field == "auto_advance":
                value = to_bool(value, field)
            elif field == "collection_method" and value not in (
                "charge_automatically",
                "send_invoice",
            ):
                raise StripeError(f"Invalid collection_method: {value}", param=field)
            else:
                value = value or None
            values[field] = value
    if "discounts" in params:
        if status != "draft":
            raise StripeError(
                f"This invoice is {status} and `discounts` can't be updated: it can only be set "
                "on drafts.",
                param="discounts",
                code="invoice_not_editable",
            )
        values["discounts"] = discounts_from_params(
            request.store,
            params["discounts"],
            at=invoice["created"],
            customer=invoice["customer"],
            invoice=invoice["id"],
        )
    metadata = (
        metadata_update(invoice["metadata"], params["metadata"]) if "metadata" in params else None
    )
    previous: dict[str, Any] = {}
    with request.store.lock:
        if metadata is not None and metadata != invoice["metadata"]:
            previous["metadata"] = dict(invoice["metadata"])
            invoice["metadata"] = metadata
        for field, value in values.items():
            if field == "days_until_due":
                request.store.private_of(invoice["id"])[field] = value
            elif invoice.get(field) != value:
                previous[field] = invoice.get(field)
                invoice[field] = value
        if "discounts" in values:
            invoice_recalculate(request.store, invoice)
    if previous:
        request.store.emit("invoice.updated", invoice, previous_attributes=previous)
    return invoice


@route("DELETE", r"/v1/invoices/(?P<id>in_[^/]+)")
def invoice_delete(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    if invoice["status"] != "draft":
        raise StripeError(
            f"You can only delete draft invoices; this invoice is {invoice['status']}. "
            "Void it instead.",
            code="invoice_not_editable",
        )
    if (invoice.get("parent") or {}).get("subscription_details"):
        raise StripeError(
            "You can't delete invoices created by subscriptions; void the invoice instead.",
        )
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


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/send")
def invoice_send(request: Request) -> dict[str, Any]:
    """Email the invoice to the customer now (`invoice.sent`); a draft is finalized first.
    Stripe refuses void and uncollectible invoices, and sends nothing in test mode."""
    invoice = _get(request)
    if invoice["status"] == "draft":
        invoice_finalize(request.store, request.server, invoice)
    if invoice["status"] not in ("open", "paid"):
        raise StripeError(
            f"You can only send an invoice that is open or paid; this invoice is "
            f"{invoice['status']}.",
            code="invoice_not_editable",
        )
    request.store.emit("invoice.sent", invoice)
    return invoice


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/void")
def invoice_void_route(request: Request) -> dict[str, Any]:
    return invoice_void(request.store, _get(request))


@route("POST", r"/v1/invoices/(?P<id>in_[^/]+)/mark_uncollectible")
def invoice_mark_uncollectible_route(request: Request) -> dict[str, Any]:
    return invoice_mark_uncollectible(request.store, _get(request))


@route("GET", r"/v1/invoices/(?P<id>in_[^/]+)/lines")
def invoice_lines(request: Request) -> dict[str, Any]:
    invoice = _get(request)
    # Lines keep invoice order; list_page orders by `created`, so give copies a stable one
    # (the stored lines must not gain a `created` they don't have).
    with request.store.lock:
        lines = [
            dict(line, created=-position) for position, line in enumerate(invoice["lines"]["data"])
        ]
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
