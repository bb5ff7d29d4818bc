"""Credit notes: create (lines crediting invoice lines, or an amount), retrieve, update
(memo, metadata), void, list, lines.

An open invoice's credit note is `pre_payment`: it lowers what is due
(`invoice.pre_payment_credit_notes_amount`); one that covers the rest marks the invoice paid.
A paid invoice's is `post_payment` (`invoice.post_payment_credit_notes_amount`; the money goes
to the customer's balance, a refund or out of band, which this server does not model).
"""

from typing import Any

from ..app import Request, list_page, route
from ..clocks import customer_time
from ..invoicing import invoice_recalculate
from ..store import StripeError, missing, shape
from .common import metadata_update, to_int

KIND = "credit_note"


def _line(store: Any, invoice: dict[str, Any], spec: Any, index: int) -> dict[str, Any]:
    param = f"lines[{index}]"
    if not isinstance(spec, dict):
        raise StripeError(f"Invalid {param}: must be a hash", param=param)
    if spec.get("type") != "invoice_line_item":
        raise StripeError(
            "Only lines of type invoice_line_item are supported by this server.",
            param=f"{param}[type]",
        )
    lines = {line["id"]: line for line in invoice["lines"]["data"]}
    source = lines.get(spec.get("invoice_line_item"))
    if source is None:
        raise StripeError(
            f"No such invoice line item on {invoice['id']}: '{spec.get('invoice_line_item')}'",
            param=f"{param}[invoice_line_item]",
        )
    quantity = to_int(spec.get("quantity", source.get("quantity") or 1), f"{param}[quantity]")
    if "amount" in spec:
        amount = to_int(spec["amount"], f"{param}[amount]")
    else:
        whole = source.get("quantity") or 1
        net = source["amount"] - sum(d["amount"] for d in source.get("discount_amounts") or [])
        amount = net * quantity // whole
    line = shape("credit_note_line_item")
    line.update(
        id=store.new_id("cnli"),
        amount=amount,
        description=spec.get("description") or source.get("description"),
        discount_amount=0,
        discount_amounts=[],
        invoice_line_item=source["id"],
        livemode=False,
        metadata=metadata_update({}, spec.get("metadata", {})),
        pretax_credit_amounts=[],
        quantity=quantity,
        tax_rates=[],
        taxes=[],
        type="invoice_line_item",
        unit_amount=None,
        unit_amount_decimal=None,
    )
    return line


@route("POST", r"/v1/credit_notes")
def credit_note_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    invoice_id = params.get("invoice")
    if not invoice_id:
        raise StripeError("Missing required param: invoice.", param="invoice")
    invoice = store.get("invoice", invoice_id)
    if invoice["status"] not in ("open", "paid", "uncollectible"):
        raise StripeError(
            f"Credit notes can only be issued for open or paid invoices; {invoice_id} is "
            f"{invoice['status']}.",
            param="invoice",
            code="invoice_not_editable",
        )
    given = params.get("lines") or []
    if not isinstance(given, list):
        raise StripeError("Invalid array", param="lines")
    lines = [_line(store, invoice, spec, index) for index, spec in enumerate(given)]
    if lines:
        amount = sum(line["amount"] for line in lines)
        if "amount" in params and to_int(params["amount"], "amount") != amount:
            raise StripeError(
                "The amount must equal the sum of the credit note lines.", param="amount"
            )
    elif "amount" in params:
        amount = to_int(params["amount"], "amount")
    else:
        raise StripeError("You must pass lines or amount.", param="lines")
    if amount <= 0:
        raise StripeError("The credit note amount must be greater than zero.", param="amount")
    pre_payment = invoice["status"] != "paid"
    creditable = (
        invoice["amount_remaining"]
        if pre_payment
        else invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
    )
    if amount > creditable:
        raise StripeError(
            f"The credit note amount ({amount}) exceeds the amount that can be credited on "
            f"{invoice_id} ({creditable}).",
            param="amount",
        )
    now = customer_time(store, invoice["customer"])
    sequence = 1 + sum(1 for cn in store.all(KIND) if cn["invoice"] == invoice_id)
    note = shape(KIND)
    note_id = store.new_id("cn")
    note.update(
        id=note_id,
        amount=amount,
        amount_shipping=0,
        created=now,
        currency=invoice["currency"],
        customer=invoice["customer"],
        customer_account=None,
        customer_balance_transaction=None,
        discount_amount=0,
        discount_amounts=[],
        effective_at=now,
        invoice=invoice_id,
        lines={
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/credit_notes/{note_id}/lines",
        },
        livemode=False,
        memo=params.get("memo"),
        metadata=metadata_update({}, params.get("metadata", {})),
        number=f"{invoice['number']}-CN-{sequence:02d}",
        out_of_band_amount=to_int(params["out_of_band_amount"], "out_of_band_amount")
        if params.get("out_of_band_amount")
        else None,
        pdf=f"{request.server.url}/hosted/credit_notes/{note_id}/pdf",
        post_payment_amount=0 if pre_payment else amount,
        pre_payment_amount=amount if pre_payment else 0,
        pretax_credit_amounts=[],
        reason=params.get("reason"),
        refunds=[],
        shipping_cost=None,
        status="issued",
        subtotal=amount,
        subtotal_excluding_tax=amount,
        total=amount,
        total_excluding_tax=amount,
        total_taxes=[],
        type="pre_payment" if pre_payment else "post_payment",
        voided_at=None,
    )
    store.put(KIND, note)
    store.emit("credit_note.created", note)
    _credit(request, invoice, amount if pre_payment else 0, 0 if pre_payment else amount, now)
    return note


def _credit(request: Request, invoice: dict[str, Any], pre: int, post: int, now: int) -> None:
    """Move the invoice's credit note amounts by (pre, post) and emit `invoice.updated`."""
    store = request.store
    with store.lock:
        previous = {
            "pre_payment_credit_notes_amount": invoice["pre_payment_credit_notes_amount"],
            "post_payment_credit_notes_amount": invoice["post_payment_credit_notes_amount"],
            "amount_due": invoice["amount_due"],
            "amount_remaining": invoice["amount_remaining"],
        }
        invoice["pre_payment_credit_notes_amount"] += pre
        invoice["post_payment_credit_notes_amount"] += post
        invoice_recalculate(store, invoice)
        settled = invoice["status"] in ("open", "uncollectible") and invoice["amount_due"] == 0
        if settled:
            previous["status"] = invoice["status"]
            invoice.update(status="paid", next_payment_attempt=None)
            invoice["status_transitions"]["paid_at"] = now
    store.emit("invoice.updated", invoice, previous_attributes=previous)
    if settled:
        store.emit("invoice.paid", invoice)


def _get(request: Request) -> dict[str, Any]:
    note = request.store.objects.get(KIND, {}).get(request.match["id"])
    if note is None:
        raise missing("credit note", request.match["id"])
    return note


@route("GET", r"/v1/credit_notes/(?P<id>cn_[^/]+)")
def credit_note_retrieve(request: Request) -> dict[str, Any]:
    return _get(request)


@route("POST", r"/v1/credit_notes/(?P<id>cn_[^/]+)")
def credit_note_update(request: Request) -> dict[str, Any]:
    note = _get(request)
    previous: dict[str, Any] = {}
    with request.store.lock:
        if "memo" in request.params:
            previous["memo"] = note["memo"]
            note["memo"] = request.params["memo"] or None
        if "metadata" in request.params:
            previous["metadata"] = dict(note["metadata"])
            note["metadata"] = metadata_update(note["metadata"], request.params["metadata"])
    if previous:
        request.store.emit("credit_note.updated", note, previous_attributes=previous)
    return note


@route("POST", r"/v1/credit_notes/(?P<id>cn_[^/]+)/void")
def credit_note_void(request: Request) -> dict[str, Any]:
    store = request.store
    note = _get(request)
    if note["status"] == "void":
        raise StripeError("This credit note has already been voided.")
    invoice = store.get("invoice", note["invoice"])
    if note["type"] == "pre_payment" and invoice["status"] == "paid":
        raise StripeError(
            "A credit note issued before payment can't be voided once its invoice is paid."
        )
    now = customer_time(store, note["customer"])
    with store.lock:
        note.update(status="void", voided_at=now)
    store.emit("credit_note.voided", note)
    _credit(request, invoice, -note["pre_payment_amount"], -note["post_payment_amount"], now)
    return note


@route("GET", r"/v1/credit_notes/(?P<id>cn_[^/]+)/lines")
def credit_note_lines(request: Request) -> dict[str, Any]:
    note = _get(request)
    lines = [dict(line, created=-i) for i, line in enumerate(note["lines"]["data"])]
    page = list_page(request, lines, f"/v1/credit_notes/{note['id']}/lines")
    for line in page["data"]:
        line.pop("created", None)
    return page


@route("GET", r"/v1/credit_notes")
def credit_note_list(request: Request) -> dict[str, Any]:
    items = request.store.all(KIND)
    if invoice := request.params.get("invoice"):
        items = [n for n in items if n["invoice"] == invoice]
    if customer := request.params.get("customer"):
        items = [n for n in items if n["customer"] == customer]
    return list_page(request, items, "/v1/credit_notes")
