"""A 40-line invoice: every line fetched through the paged lines endpoint, several PDF pages."""

import io

import pytest
import stripe
from pypdf import PdfReader

from invoices.documents import invoice_document_build
from invoices.gateways import stripe_invoice_fetch
from invoices.pdf import invoice_pdf_render


@pytest.fixture
def long_invoice(stripe_server):
    stripe_server.reset()
    customer = stripe.Customer.create(email="ap@northwind.example", name="Northwind Traders")
    for number in range(1, 41):
        stripe.InvoiceItem.create(
            customer=customer.id,
            amount=1_000 + number,
            currency="usd",
            description=f"Creative production job #{number:02d}",
            metadata={"kind": "managed", "acct_id": "1042"},
        )
    invoice = stripe.Invoice.create(
        customer=customer.id,
        pending_invoice_items_behavior="include",
        collection_method="send_invoice",
        days_until_due=30,
    )
    return stripe.Invoice.finalize_invoice(invoice.id)


def test_every_line_is_fetched_past_the_embedded_ones(stripe_server, long_invoice):
    before = len(stripe_server.store.requests)
    invoice, lines = stripe_invoice_fetch(long_invoice.id)
    calls = [r["path"] for r in stripe_server.store.requests[before:]]
    embedded = invoice["lines"]["data"]
    assert len(embedded) <= 10 and invoice["lines"]["has_more"]  # as Stripe embeds them
    # One call for the invoice, one page of the lines endpoint for the other 30.
    assert calls == [f"/v1/invoices/{long_invoice.id}", f"/v1/invoices/{long_invoice.id}/lines"]
    assert lines[: len(embedded)] == embedded
    assert len(lines) == 40
    assert len({line["id"] for line in lines}) == 40
    assert sum(line["amount"] for line in lines) == invoice["total"] == 40_000 + 820


def test_forty_lines_render_on_several_pages_with_the_header_repeated(long_invoice):
    invoice, lines = stripe_invoice_fetch(long_invoice.id)
    document = invoice_document_build(invoice=invoice, lines=lines, acct_id=1042)
    pages = PdfReader(io.BytesIO(invoice_pdf_render(document=document).content)).pages
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        assert f"Page {number} of {len(pages)}" in text
        assert "DESCRIPTION" in text.upper()
    text = "".join(page.extract_text() for page in pages)
    assert "Creative production job #01" in text
    assert "Creative production job #40" in text
    assert "$408.20" in text
