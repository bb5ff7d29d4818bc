"""Invoices as Stripe keeps them: drafts gather lines, finalization numbers them and opens them,
payment is attempted for `charge_automatically`, and every change emits its event.

Payment: a customer whose `invoice_settings.default_payment_method` is Stripe's test method
`pm_card_chargeCustomerFail` (or `pm_card_visa_chargeDeclined`) is declined; every other
customer pays (the test card `pm_card_visa` is assumed when none is set).
"""

import copy
from typing import Any

from .clocks import customer_time
from .store import Store, StripeError, shape

DECLINING_PAYMENT_METHODS = {"pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined"}
PAYMENT_RETRY_SECONDS = 3 * 86_400


def _line_base() -> dict[str, Any]:
    line = shape("line_item")
    line.update(discount_amounts=[], discounts=[], pretax_credit_amounts=[], taxes=[])
    return line


def line_for_subscription_item(
    store: Store,
    *,
    invoice: dict[str, Any],
    item: dict[str, Any],
    subscription: dict[str, Any],
    quantity: int,
    amount: int,
    unit_amount_decimal: str,
    period: tuple[int, int],
    description: str,
    proration: bool = False,
) -> dict[str, Any]:
    price = item["price"]
    line = _line_base()
    line.update(
        id=store.new_id("il"),
        invoice=invoice["id"],
        amount=amount,
        subtotal=amount,
        currency=price["currency"],
        description=description,
        discountable=True,
        livemode=False,
        # Stripe: a subscription line's metadata is its subscription's, not the item's or the
        # price's (the invoice line item object reference).
        metadata=dict(subscription.get("metadata") or {}),
        period={"start": period[0], "end": period[1]},
        quantity=quantity,
        quantity_decimal=str(quantity),
        subscription=subscription["id"],
        parent={
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": item["id"],
            },
        },
        pricing={
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": unit_amount_decimal,
        },
    )
    return line


def line_for_invoice_item(invoice: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    line = _line_base()
    line.update(
        id=f"il_{item['id'][3:]}" if item["id"].startswith("ii_") else f"il_{item['id']}",
        invoice=invoice["id"],
        amount=item["amount"],
        subtotal=item["amount"],
        currency=item["currency"],
        description=item.get("description"),
        discountable=item.get("discountable", True),
        livemode=False,
        metadata=dict(item.get("metadata") or {}),
        period=dict(item["period"]),
        quantity=item.get("quantity", 1),
        quantity_decimal=str(item.get("quantity", 1)),
        subscription=None,
        parent={
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": item.get("proration", False),
                "proration_details": {"credited_items": None},
                "subscription": (item.get("parent") or {})
                .get("subscription_details", {})
                .get("subscription")
                if item.get("parent")
                else None,
            },
        },
        pricing=copy.deepcopy(item["pricing"]),
    )
    return line


def invoice_new(
    store: Store,
    *,
    customer: dict[str, Any],
    billing_reason: str,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    subscription: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    auto_advance: bool = True,
    period: tuple[int, int] | None = None,
    currency: str = "usd",
    discounts: list[str] | None = None,
) -> dict[str, Any]:
    """A draft invoice (not yet stored). Without `discounts` it inherits its subscription's
    and its customer's."""
    from .discounts import inherited_discounts

    now = customer_time(store, customer["id"])
    invoice = shape("invoice")
    invoice.update(
        id=store.new_id("in"),
        object="invoice",
        account_country="US",
        account_name="Adventive",
        amount_due=0,
        amount_paid=0,
        amount_remaining=0,
        amount_overpaid=0,
        amount_shipping=0,
        attempt_count=0,
        attempted=False,
        auto_advance=auto_advance,
        automatically_finalizes_at=None,
        billing_reason=billing_reason,
        collection_method=collection_method,
        created=now,
        currency=currency,
        customer=customer["id"],
        customer_address=copy.deepcopy(customer.get("address")),
        customer_email=customer.get("email"),
        customer_name=customer.get("name"),
        customer_phone=customer.get("phone"),
        description=description,
        due_date=None,
        effective_at=None,
        ending_balance=None,
        from_invoice=None,
        hosted_invoice_url=None,
        invoice_pdf=None,
        last_finalization_error=None,
        latest_revision=None,
        livemode=False,
        metadata=dict(metadata or {}),
        next_payment_attempt=None,
        number=None,
        parent=None,
        period_end=period[1] if period else now,
        period_start=period[0] if period else now,
        receipt_number=None,
        shipping_cost=None,
        starting_balance=0,
        status="draft",
        status_transitions={
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        subtotal=0,
        subtotal_excluding_tax=0,
        test_clock=customer.get("test_clock"),
        total=0,
        total_excluding_tax=0,
        total_discount_amounts=[],
        total_pretax_credit_amounts=[],
        total_taxes=[],
        webhooks_delivered_at=None,
        discounts=discounts
        if discounts is not None
        else inherited_discounts(store, customer, subscription, now),
        pre_payment_credit_notes_amount=0,
        post_payment_credit_notes_amount=0,
    )
    # A request parameter, not a field of Invoice in this API version: kept aside until
    # finalization turns it into `due_date`.
    store.private_of(invoice["id"])["days_until_due"] = days_until_due
    invoice.pop("subscription", None)
    invoice["lines"] = {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }
    if subscription is not None:
        invoice["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription.get("metadata") or {}),
                "subscription": subscription["id"],
            },
        }
    return invoice


EMBEDDED_LINES = 10


def invoice_present(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice as Stripe renders it: the first 10 lines embedded (`has_more` says whether
    there are others); the rest only through `GET /v1/invoices/{id}/lines`. The stored invoice
    keeps them all."""
    lines = invoice.get("lines")
    if not isinstance(lines, dict) or len(lines.get("data") or []) <= EMBEDDED_LINES:
        return invoice
    shown = dict(lines, data=lines["data"][:EMBEDDED_LINES], has_more=True)
    return dict(invoice, lines=shown)


def present(obj: Any) -> Any:
    """Render every invoice inside an answer (top level, list items, expanded fields, event
    objects), copying only what changes."""
    if isinstance(obj, list):
        items = [present(item) for item in obj]
        return items if any(a is not b for a, b in zip(items, obj, strict=True)) else obj
    if not isinstance(obj, dict):
        return obj
    out = invoice_present(obj) if obj.get("object") == "invoice" else obj
    changed = {}
    for key, value in out.items():
        if isinstance(value, (dict, list)):
            rendered = present(value)
            if rendered is not value:
                changed[key] = rendered
    return dict(out, **changed) if changed else out


def subscription_lines_follow_metadata(store: Store, subscription: dict[str, Any]) -> None:
    """Subscription lines reflect their subscription's current metadata."""
    for invoice in store.all("invoice"):
        for line in invoice["lines"]["data"]:
            details = (line.get("parent") or {}).get("subscription_item_details") or {}
            if details.get("subscription") == subscription["id"]:
                line["metadata"] = dict(subscription["metadata"])


def invoice_recalculate(store: Store, invoice: dict[str, Any]) -> None:
    """Totals from the lines: `subtotal - discounts = total` (no tax here); credit notes
    issued before payment lower what is due."""
    from .discounts import apply

    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    total = subtotal - apply(store, invoice)
    due = max(total - invoice.get("pre_payment_credit_notes_amount", 0), 0)
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal,
        total=total,
        total_excluding_tax=total,
        amount_due=due,
        amount_remaining=max(due - invoice["amount_paid"], 0),
    )


def _subscription_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")


def attach_pending_items(store: Store, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """Pull the customer's pending invoice items into this draft (as Stripe does at a cycle).

    Items in another currency stay pending, and so do items created for a subscription
    (`subscription=`) when this is another subscription's invoice: Stripe says scheduled
    invoices for other subscriptions ignore them."""
    attached = []
    invoice_subscription = _subscription_of(invoice)
    for item in sorted(store.all("invoiceitem"), key=lambda i: (i["date"], i["id"])):
        item_subscription = _subscription_of(item)
        if item_subscription and invoice_subscription and item_subscription != invoice_subscription:
            continue
        if (
            item["customer"] == invoice["customer"]
            and item["invoice"] is None
            and item["currency"] == invoice["currency"]
        ):
            item["invoice"] = invoice["id"]
            invoice["lines"]["data"].append(line_for_invoice_item(invoice, item))
            attached.append(item)
    invoice_recalculate(store, invoice)
    return attached


def _require_status(invoice: dict[str, Any], allowed: tuple[str, ...], action: str) -> None:
    if invoice["status"] not in allowed:
        raise StripeError(
            f"You can only {action} an invoice if it is in {' or '.join(allowed)} status; "
            f"this invoice is {invoice['status']}.",
            code="invoice_not_editable" if invoice["status"] != "draft" else None,
        )


def invoice_finalize(store: Store, server: Any, invoice: dict[str, Any]) -> dict[str, Any]:
    """draft -> open (or paid at zero); numbers it, links the hosted page, emits events."""
    _require_status(invoice, ("draft",), "finalize")
    if (
        invoice["collection_method"] == "send_invoice"
        and store.private_of(invoice["id"]).get("days_until_due") is None
        and invoice.get("due_date") is None
    ):
        raise StripeError(
            "Invoices with collection_method=send_invoice need a due_date or days_until_due.",
            param="days_until_due",
        )
    customer = store.get("customer", invoice["customer"])
    now = customer_time(store, customer["id"])
    with store.lock:
        sequence = customer.get("next_invoice_sequence") or 1
        customer["next_invoice_sequence"] = sequence + 1
        invoice_recalculate(store, invoice)
        invoice.update(
            number=f"{customer['invoice_prefix']}-{sequence:04d}",
            status="open",
            effective_at=now,
            automatically_finalizes_at=None,
            hosted_invoice_url=f"{server.url}/hosted/invoices/{invoice['id']}",
            invoice_pdf=f"{server.url}/hosted/invoices/{invoice['id']}/pdf",
            webhooks_delivered_at=now,
        )
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["collection_method"] == "send_invoice" and invoice.get("due_date") is None:
            days = store.private_of(invoice["id"]).get("days_until_due")
            invoice["due_date"] = now + (days or 30) * 86_400
    store.emit("invoice.finalized", invoice)
    from .discounts import after_finalize

    after_finalize(store, invoice)
    if invoice["amount_due"] == 0:
        _mark_paid(store, invoice, now, payment_method=None)
    elif invoice["collection_method"] == "charge_automatically" and invoice["auto_advance"]:
        invoice_attempt_payment(store, invoice, raise_on_decline=False)
    return invoice


def _mark_paid(store: Store, invoice: dict[str, Any], now: int, payment_method: str | None) -> None:
    with store.lock:
        paid = invoice["amount_due"]
        invoice.update(
            status="paid",
            amount_paid=paid,
            amount_remaining=0,
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = now
        if paid:
            payment = {
                "id": store.new_id("inpay"),
                "object": "invoice_payment",
                "amount_paid": paid,
                "amount_requested": paid,
                "created": now,
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": store.new_id("pi")},
                "status": "paid",
                "status_transitions": {"canceled_at": None, "paid_at": now},
            }
            store.put("invoice_payment", payment)
            # Stripe keeps the method on the payment intent, which this server does not model.
            store.private_of(payment["id"])["payment_method"] = payment_method
    store.emit("invoice.paid", invoice)
    store.emit("invoice.payment_succeeded", invoice)
    subscription_id = _subscription_of(invoice)
    subscription = (
        store.objects.get("subscription", {}).get(subscription_id) if subscription_id else None
    )
    if (
        subscription is not None
        and subscription["status"] == "incomplete"
        and invoice["billing_reason"] == "subscription_create"
    ):
        # Paying the first invoice activates an incomplete subscription.
        with store.lock:
            subscription["status"] = "active"
        store.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes={"status": "incomplete"},
        )


def payment_method(store: Store, invoice: dict[str, Any]) -> str:
    """The method Stripe charges: the invoice's, else its subscription's, else the customer's
    invoice default (the test card `pm_card_visa` when none is set)."""
    subscription_id = _subscription_of(invoice)
    subscription = (
        store.objects.get("subscription", {}).get(subscription_id) if subscription_id else None
    )
    customer = store.objects.get("customer", {}).get(invoice["customer"]) or {}
    return (
        invoice.get("default_payment_method")
        or (subscription or {}).get("default_payment_method")
        or (customer.get("invoice_settings") or {}).get("default_payment_method")
        or "pm_card_visa"
    )


def payment_declines(store: Store, invoice: dict[str, Any]) -> bool:
    """A payment method attached from Stripe's test tokens declines as its card does; an id
    that was never attached is judged by its name (the older shortcut, kept for callers that
    set `pm_card_chargeCustomerFail` as a default without attaching it)."""
    from .resources.payment_methods import charge_declines

    method = payment_method(store, invoice)
    attached = charge_declines(store, method)
    if attached is not None:
        return attached
    return method in DECLINING_PAYMENT_METHODS


def invoice_attempt_payment(
    store: Store, invoice: dict[str, Any], *, raise_on_decline: bool, out_of_band: bool = False
) -> dict[str, Any]:
    # Stripe: an uncollectible invoice can still be paid (or voided).
    _require_status(invoice, ("open", "uncollectible"), "pay")
    customer = store.get("customer", invoice["customer"])
    now = customer_time(store, customer["id"])
    if out_of_band:
        _mark_paid(store, invoice, now, payment_method=None)
        return invoice
    method = payment_method(store, invoice)
    with store.lock:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
    if payment_declines(store, invoice):
        with store.lock:
            invoice["next_payment_attempt"] = now + PAYMENT_RETRY_SECONDS
        store.emit("invoice.payment_failed", invoice)
        store.emit("invoice.updated", invoice, previous_attributes={"attempted": False})
        if raise_on_decline:
            raise StripeError(
                "Your card was declined.",
                status=402,
                type="card_error",
                code="card_declined",
            )
        return invoice
    _mark_paid(store, invoice, now, payment_method=method)
    return invoice


def invoice_void(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    _require_status(invoice, ("open", "uncollectible"), "void")
    now = customer_time(store, invoice["customer"])
    was = invoice["status"]
    with store.lock:
        invoice.update(status="void", amount_remaining=0, next_payment_attempt=None)
        invoice["status_transitions"]["voided_at"] = now
    store.emit("invoice.voided", invoice)
    store.emit("invoice.updated", invoice, previous_attributes={"status": was})
    return invoice


def invoice_mark_uncollectible(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    _require_status(invoice, ("open",), "mark uncollectible")
    now = customer_time(store, invoice["customer"])
    with store.lock:
        invoice.update(status="uncollectible", next_payment_attempt=None)
        invoice["status_transitions"]["marked_uncollectible_at"] = now
    store.emit("invoice.marked_uncollectible", invoice)
    store.emit("invoice.updated", invoice, previous_attributes={"status": "open"})
    return invoice
