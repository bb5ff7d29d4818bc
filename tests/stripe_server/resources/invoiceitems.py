"""Invoice items: pending until an invoice (a cycle's or a manual one) pulls them in."""

from decimal import Decimal, InvalidOperation
from typing import Any

from ..app import Request, list_page, route
from ..clocks import customer_time
from ..invoicing import invoice_recalculate, line_for_invoice_item
from ..store import StripeError, shape
from .common import customer_param, deleted, metadata_update, to_bool, to_int


def _decimal(value: Any, param: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise StripeError(f"Invalid decimal: {value}", param=param) from exc
    if not result.is_finite():
        raise StripeError(f"Invalid decimal: {value}", param=param)
    return result


@route("POST", r"/v1/invoiceitems")
def invoiceitem_create(request: Request) -> dict[str, Any]:
    from ..pricing import format_decimal, line_amount, round_half_up, unit_amount_decimal_for

    store, params = request.store, request.params
    customer = customer_param(store, params)
    customer_id = customer["id"]
    quantity = to_int(params.get("quantity", 1), "quantity")
    pricing_params = params.get("pricing") or {}
    price_id = pricing_params.get("price") if isinstance(pricing_params, dict) else None
    price_details = None
    if price_id:
        price = store.objects.get("price", {}).get(price_id)
        if price is None:
            raise StripeError(
                f"No such price: '{price_id}'", param="pricing[price]", code="resource_missing"
            )
        amount = line_amount(price, quantity)
        unit_decimal = unit_amount_decimal_for(price, quantity)
        currency = price["currency"]
        price_details = {"price": price_id, "product": price["product"]}
    elif "amount" in params:
        if "unit_amount_decimal" in params:
            raise StripeError(
                "You may only specify one of these parameters: amount, unit_amount_decimal.",
                param="amount",
            )
        amount = to_int(params["amount"], "amount")
        unit_decimal = format_decimal(Decimal(amount) / quantity) if quantity else "0"
        currency = params.get("currency")
    elif "unit_amount_decimal" in params:
        unit = _decimal(params["unit_amount_decimal"], "unit_amount_decimal")
        exact = unit * quantity
        amount = round_half_up(exact)
        unit_decimal = format_decimal(unit)
        currency = params.get("currency")
    else:
        raise StripeError(
            "You must specify either `amount`, `pricing[price]` or `unit_amount_decimal`.",
            param="amount",
        )
    if not currency:
        raise StripeError("Missing required param: currency.", param="currency")
    now = customer_time(store, customer_id)
    period = params.get("period") or {}
    item = shape("invoiceitem")
    item.update(
        id=store.new_id("ii"),
        amount=amount,
        currency=currency.lower(),
        customer=customer_id,
        date=now,
        description=params.get("description"),
        discountable=to_bool(params.get("discountable", "true"), "discountable"),
        discounts=[],
        invoice=None,
        livemode=False,
        metadata=metadata_update({}, params.get("metadata", {})),
        period={
            "start": to_int(period.get("start", now), "period[start]"),
            "end": to_int(period.get("end", now), "period[end]"),
        },
        proration=False,
        quantity=quantity,
        quantity_decimal=str(quantity),
        tax_rates=[],
        test_clock=customer.get("test_clock"),
        net_amount=amount,
        parent=None,
        pricing={
            "type": "price_details",
            "price_details": price_details,
            "unit_amount_decimal": unit_decimal,
        },
    )
    if subscription_id := params.get("subscription"):
        store.get("subscription", subscription_id)
        item["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription_id},
        }
    if item["period"]["end"] < item["period"]["start"]:
        raise StripeError("period[end] must be on or after period[start].", param="period[end]")
    invoice_id = params.get("invoice")
    invoice = None
    if invoice_id:
        invoice = store.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeError(
                "You can only add invoice items to draft invoices; "
                f"{invoice_id} is {invoice['status']}.",
                param="invoice",
            )
        if invoice["customer"] != customer_id:
            raise StripeError("The invoice belongs to a different customer.", param="invoice")
        item["invoice"] = invoice_id
    store.put("invoiceitem", item)
    if invoice is not None:
        with store.lock:
            invoice["lines"]["data"].append(line_for_invoice_item(invoice, item))
            invoice_recalculate(store, invoice)
    store.emit("invoiceitem.created", item)
    return item


@route("GET", r"/v1/invoiceitems/(?P<id>ii_[^/]+)")
def invoiceitem_retrieve(request: Request) -> dict[str, Any]:
    return request.store.get("invoiceitem", request.match["id"], label="invoiceitem")


@route("POST", r"/v1/invoiceitems/(?P<id>ii_[^/]+)")
def invoiceitem_update(request: Request) -> dict[str, Any]:
    item = invoiceitem_retrieve(request)
    if "metadata" in request.params:
        item["metadata"] = metadata_update(item["metadata"], request.params["metadata"])
    if "description" in request.params:
        if item["invoice"] and request.store.get("invoice", item["invoice"])["status"] != "draft":
            raise StripeError("Invoice items on finalized invoices cannot be changed.")
        item["description"] = request.params["description"]
    request.store.emit("invoiceitem.updated", item)
    return item


@route("DELETE", r"/v1/invoiceitems/(?P<id>ii_[^/]+)")
def invoiceitem_delete(request: Request) -> dict[str, Any]:
    store = request.store
    item = invoiceitem_retrieve(request)
    if item["invoice"]:
        invoice = store.get("invoice", item["invoice"])
        if invoice["status"] != "draft":
            raise StripeError(
                "This invoice item cannot be deleted because it is attached to an invoice that "
                "is no longer editable."
            )
        with store.lock:
            invoice["lines"]["data"] = [
                line
                for line in invoice["lines"]["data"]
                if ((line.get("parent") or {}).get("invoice_item_details") or {}).get(
                    "invoice_item"
                )
                != item["id"]
            ]
            invoice_recalculate(store, invoice)
    store.delete("invoiceitem", item["id"])
    store.emit("invoiceitem.deleted", item)
    return deleted(item)


@route("GET", r"/v1/invoiceitems")
def invoiceitem_list(request: Request) -> dict[str, Any]:
    params = request.params
    items = request.store.all("invoiceitem")
    if customer := params.get("customer"):
        items = [i for i in items if i["customer"] == customer]
    if "pending" in params:
        pending = to_bool(params["pending"], "pending")
        items = [i for i in items if (i["invoice"] is None) == pending]
    if invoice := params.get("invoice"):
        items = [i for i in items if i["invoice"] == invoice]
    # list_page orders by `created`; invoice items have `date`, so sort copies by it.
    page = list_page(
        request, [dict(item, created=item["date"]) for item in items], "/v1/invoiceitems"
    )
    for item in page["data"]:
        item.pop("created", None)
    return page
