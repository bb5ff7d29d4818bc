"""The invoice document read from Stripe's invoice, and the equations checked before sending."""

import copy
import io
from datetime import UTC, datetime

import pypdf
import pytest

from invoices.documents import document_equation_errors, invoice_document_build
from invoices.pdf import invoice_pdf_render

INVOICE = {
    "id": "in_1",
    "number": "7FE1103-0004",
    "currency": "usd",
    "customer_name": "Northwind Traders",
    "customer_email": "ap@northwind.example",
    "customer_address": {
        "line1": "1 Harbor Way",
        "city": "Seattle",
        "state": "WA",
        "postal_code": "98101",
        "country": "US",
    },
    "created": 1772326800,
    "status": "open",
    "status_transitions": {"finalized_at": 1772330400},
    "due_date": 1774922400,
    "collection_method": "send_invoice",
    "hosted_invoice_url": "https://invoice.stripe.com/i/x",
    "subtotal": 53_900,
    "total_discount_amounts": [{"amount": 900, "discount": "di_1"}],
    "total_pretax_credit_amounts": [{"amount": 1_000, "type": "credit_balance_transaction"}],
    "total_taxes": [],
    "total": 52_000,
    "amount_paid": 0,
    "amount_due": 52_000,
    "starting_balance": 0,
}
LINES = [
    {
        "amount": 50_000,
        "description": "Account Charges",
        "quantity": 1,
        "metadata": {"kind": "flat"},
        "period": {"start": 1772323200, "end": 1775001600},
        "pricing": {"unit_amount_decimal": "50000"},
    },
    {
        "amount": 3_900,
        "description": "ST impressions",
        "quantity": 6,
        "metadata": {"kind": "ST"},
        "period": {"start": 1769904000, "end": 1772323200},
        "pricing": {"unit_amount_decimal": "650"},
    },
]


def test_document_reads_totals_credits_and_groups():
    document = invoice_document_build(invoice=INVOICE, lines=LINES, acct_id=1042)
    assert document.discount_minor == 900
    assert document.pretax_credit_minor == 1_000
    assert [group.kind.value for group in document.groups] == ["flat", "ST"]
    assert document.customer_address == "1 Harbor Way\nSeattle WA 98101\nUS"
    assert document.period_start == datetime(2026, 2, 1, tzinfo=UTC)
    assert document.period_end == datetime(2026, 4, 1, tzinfo=UTC)
    assert document_equation_errors(document) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subtotal", 53_901, "lines sum to 53900"),
        ("total", 52_001, "!= total 52001"),
        ("amount_due", 51_000, "!= amount due 51000"),
    ],
)
def test_an_invoice_that_does_not_add_up_is_named(field, value, message):
    broken = copy.deepcopy(INVOICE)
    broken[field] = value
    errors = document_equation_errors(invoice_document_build(invoice=broken, lines=LINES))
    assert any(message in error for error in errors), errors


def test_a_stripe_december_period_reaches_the_pdf_as_1_to_31_december():
    december = {"start": 1796083200, "end": 1798761600}  # [2026-12-01, 2027-01-01) UTC
    lines = [{**LINES[0], "amount": 53_900, "period": december}]
    invoice = {**INVOICE, "total_discount_amounts": [], "total_pretax_credit_amounts": []}
    document = invoice_document_build(invoice=invoice, lines=lines, acct_id=1042)

    content = invoice_pdf_render(document=document).content

    reader = pypdf.PdfReader(io.BytesIO(content))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert "Service period 1–31 Dec 2026" in text
    assert "Account Charges 1–31 Dec 2026" in text
