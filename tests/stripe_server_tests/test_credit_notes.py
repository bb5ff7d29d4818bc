"""Credit notes: before payment they lower what is due, after payment they credit the paid
amount; both update the invoice and emit credit_note.* events."""

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def open_invoice(*amounts):
    cust = stripe.Customer.create(email="ap@northwind.example")
    invoice = stripe.Invoice.create(customer=cust.id)
    for amount in amounts:
        stripe.InvoiceItem.create(
            customer=cust.id, amount=amount, currency="usd", invoice=invoice.id
        )
    return stripe.Invoice.finalize_invoice(invoice.id)


def event_types(server, prefix):
    return [e["type"] for e in server.store.events if e["type"].startswith(prefix)]


def test_a_credit_note_on_an_open_invoice_lowers_the_amount_due(server):
    invoice = open_invoice(6_000, 4_000)
    line = invoice.lines.data[0]

    note = stripe.CreditNote.create(
        invoice=invoice.id,
        lines=[{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 1_500}],
        reason="order_change",
        memo="Late delivery",
    )

    assert (note.type, note.status, note.amount, note.total) == (
        "pre_payment",
        "issued",
        1_500,
        1_500,
    )
    assert note.lines.data[0].invoice_line_item == line.id
    assert note.number == f"{invoice.number}-CN-01"
    after = stripe.Invoice.retrieve(invoice.id)
    assert after.pre_payment_credit_notes_amount == 1_500
    assert after.post_payment_credit_notes_amount == 0
    assert after.amount_due == 8_500
    assert after.amount_remaining == 8_500
    assert after.total == 10_000
    assert event_types(server, "credit_note.") == ["credit_note.created"]


def test_a_credit_note_covering_the_rest_settles_the_invoice(server):
    invoice = open_invoice(2_000)
    stripe.CreditNote.create(invoice=invoice.id, amount=2_000)
    assert stripe.Invoice.retrieve(invoice.id).status == "paid"


def test_a_credit_note_on_a_paid_invoice_is_post_payment(server):
    invoice = stripe.Invoice.pay(open_invoice(5_000).id)

    note = stripe.CreditNote.create(invoice=invoice.id, amount=1_200)

    assert note.type == "post_payment"
    after = stripe.Invoice.retrieve(invoice.id)
    assert after.post_payment_credit_notes_amount == 1_200
    assert after.pre_payment_credit_notes_amount == 0
    assert after.amount_paid == 5_000


def test_a_credit_note_cannot_exceed_what_is_left(server):
    invoice = open_invoice(1_000)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.CreditNote.create(invoice=invoice.id, amount=1_001)
    assert caught.value.param == "amount"


def test_a_draft_cannot_be_credited(server):
    cust = stripe.Customer.create(email="ap@northwind.example")
    invoice = stripe.Invoice.create(customer=cust.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe.CreditNote.create(invoice=invoice.id, amount=1)


def test_voiding_a_credit_note_restores_the_amount_due(server):
    invoice = open_invoice(3_000)
    note = stripe.CreditNote.create(invoice=invoice.id, amount=700)

    voided = stripe.CreditNote.void_credit_note(note.id)

    assert voided.status == "void"
    assert voided.voided_at is not None
    after = stripe.Invoice.retrieve(invoice.id)
    assert (after.pre_payment_credit_notes_amount, after.amount_due) == (0, 3_000)
    assert event_types(server, "credit_note.") == ["credit_note.created", "credit_note.voided"]


def test_update_list_and_lines(server):
    invoice = open_invoice(3_000)
    line = invoice.lines.data[0]
    note = stripe.CreditNote.create(
        invoice=invoice.id,
        lines=[{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 1}],
    )
    assert note.amount == 3_000

    stripe.CreditNote.modify(note.id, memo="Goodwill", metadata={"ticket": "42"})

    assert stripe.CreditNote.retrieve(note.id).memo == "Goodwill"
    assert [n.id for n in stripe.CreditNote.list(invoice=invoice.id).data] == [note.id]
    assert [li.amount for li in stripe.CreditNote.list_lines(note.id).data] == [3_000]
    assert event_types(server, "credit_note.") == ["credit_note.created", "credit_note.updated"]
