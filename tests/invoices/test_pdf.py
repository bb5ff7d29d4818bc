import hashlib
import io
import os
import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdf
import pytest

from billing_project.classifier import LineKind
from billing_project.money import MoneyError
from billing_project.templatetags.time_display import day, period
from invoices.documents import DocumentLine, InvoiceDocument
from invoices.pdf import (
    SENDER,
    STATIC_DIR,
    TEMPLATE_VERSION,
    PaymentState,
    PdfRenderError,
    html_to_pdf,
    invoice_pdf_render,
    link_callback,
    payment_state,
)
from invoices.templatetags.invoice_format import cpm_text, rate_text

FINALIZED_AT = 1_793_491_200  # 2026-11-01T00:00:00Z
HOSTED_URL = "https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/test_YWNjdF8xTnYwRkdROVJL?s=ap"


def _line(
    kind: LineKind,
    description: str,
    *,
    quantity: int = 1,
    unit: str | None = None,
    amount: int,
    start: datetime | None = datetime(2026, 10, 1, tzinfo=UTC),
    end: datetime | None = datetime(2026, 11, 1, tzinfo=UTC),
    discount: int = 0,
) -> DocumentLine:
    return DocumentLine(
        kind=kind,
        description=description,
        quantity=quantity,
        unit_amount_decimal=unit,
        amount_minor=amount,
        period_start=start,
        period_end=end,
        discount_minor=discount,
    )


LINES = (
    _line(
        LineKind.FLAT,
        "Adventive Platform - Growth plan",
        unit="250000",
        amount=250_000,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 12, 1, tzinfo=UTC),
    ),
    _line(
        LineKind.ST,
        "Standard impressions",
        quantity=1_234_567,
        unit="0.25",
        amount=308_642,
    ),
    _line(
        LineKind.RM,
        "Rich media impressions",
        quantity=456_789,
        unit="0.4125",
        amount=188_425,
    ),
    _line(LineKind.CV, "Conversions", quantity=12_000, unit="1.5", amount=18_000),
    _line(
        LineKind.MANAGED,
        "Creative build, 12 hours",
        quantity=12,
        unit="15000",
        amount=180_000,
        start=None,
        end=None,
    ),
    _line(LineKind.OTHER, "Setup fee", unit="5000", amount=5_000, start=None, end=None),
)
SUBTOTAL = sum(line.amount_minor for line in LINES)  # 950_067


def _document(**changes: object) -> InvoiceDocument:
    document = InvoiceDocument(
        stripe_invoice_id="in_1PdfTest",
        number="ADV-2026-000123",
        currency="usd",
        acct_id=4711,
        customer_name="Northwind Media Group",
        customer_email="ap@northwind.example",
        customer_address="200 Market Street, Floor 9\nSan Francisco CA 94105\nUS",
        issued_on=date(2026, 11, 1),
        due_on=date(2026, 12, 1),
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        collection_method="send_invoice",
        hosted_invoice_url=HOSTED_URL,
        lines=LINES,
        subtotal_minor=SUBTOTAL,
        discount_minor=0,
        tax_minor=0,
        total_minor=SUBTOTAL,
        amount_paid_minor=0,
        credit_minor=0,
        amount_due_minor=SUBTOTAL,
        finalized_at=FINALIZED_AT,
    )
    return replace(document, **changes)


def _pages(content: bytes) -> list[str]:
    """Each page's text with runs of whitespace collapsed, so a table row reads as one line."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def _text(content: bytes) -> str:
    return " ".join(_pages(content))


def test_pdf_shows_number_parties_dates_groups_and_totals():
    rendered = invoice_pdf_render(document=_document())

    text = _text(rendered.content)
    assert "ADV-2026-000123" in text
    assert "Northwind Media Group" in text
    assert "200 Market Street, Floor 9 San Francisco CA 94105 US" in text
    assert "ap@northwind.example" in text
    assert SENDER.name in text
    assert "1500 Broadway, Suite 1200 New York, NY 10036" in text
    assert "Issue date 1 Nov 2026" in text
    assert "Due date 1 Dec 2026" in text
    assert "Service period 1 Oct – 30 Nov 2026" in text
    labels = [
        "Flat subscription",
        "ST impressions",
        "RM impressions",
        "CV impressions",
        "Managed services",
        "Other",
    ]
    positions = [text.index(f"{label} ") for label in labels]
    assert positions == sorted(positions)
    assert "Total $9,500.67" in text
    assert "Amount due $9,500.67" in text


def test_rendered_pdf_carries_its_hash_and_template_version():
    rendered = invoice_pdf_render(document=_document())

    assert rendered.content.startswith(b"%PDF-")
    assert rendered.sha256 == hashlib.sha256(rendered.content).hexdigest()
    assert rendered.template_version == TEMPLATE_VERSION
    assert isinstance(rendered.render_ms, int)


def test_impression_lines_show_quantity_and_cpm_other_lines_unit_price():
    text = _text(invoice_pdf_render(document=_document()).content)

    assert "1,234,567 impressions $2.50 / 1,000 $3,086.42" in text
    assert "456,789 impressions $4.125 / 1,000 $1,884.25" in text
    assert "12,000 impressions $15.00 / 1,000 $180.00" in text
    assert "Creative build, 12 hours 12 $150.00 $1,800.00" in text
    assert "1–31 Oct 2026" in text
    assert "1–30 Nov 2026" in text


def test_same_document_renders_byte_identical():
    first = invoice_pdf_render(document=_document())
    second = invoice_pdf_render(document=_document())

    assert first.content == second.content
    assert first.sha256 == second.sha256


def test_finalization_time_is_stamped_into_the_pdf():
    earlier = invoice_pdf_render(document=_document())
    later = invoice_pdf_render(document=_document(finalized_at=FINALIZED_AT + 3600))

    assert earlier.content != later.content
    metadata = pypdf.PdfReader(io.BytesIO(earlier.content)).metadata
    assert metadata["/CreationDate"].startswith("D:20261101000000")


def test_source_date_epoch_is_restored_after_a_render(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "12345")
    invoice_pdf_render(document=_document())
    assert os.environ["SOURCE_DATE_EPOCH"] == "12345"

    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    invoice_pdf_render(document=_document())
    assert "SOURCE_DATE_EPOCH" not in os.environ


def test_concurrent_renders_match_sequential_ones():
    documents = [_document(finalized_at=FINALIZED_AT + offset) for offset in (0, 86_400, 172_800)]
    expected = [invoice_pdf_render(document=document).content for document in documents]
    results: dict[int, bytes] = {}

    def render(index: int) -> None:
        results[index] = invoice_pdf_render(document=documents[index]).content

    threads = [threading.Thread(target=render, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [results[index] for index in range(3)] == expected


def test_jpy_amounts_have_no_decimals():
    lines = (
        _line(LineKind.FLAT, "Platform", unit="250000", amount=250_000),
        _line(LineKind.ST, "Standard impressions", quantity=1_000_000, unit="0.25", amount=250_000),
    )
    document = _document(
        currency="jpy",
        lines=lines,
        subtotal_minor=500_000,
        total_minor=500_000,
        amount_due_minor=500_000,
    )

    text = _text(invoice_pdf_render(document=document).content)

    assert "1,000,000 impressions 250 JPY / 1,000 250,000 JPY" in text
    assert "Tax 0 JPY" in text
    assert "Amount due 500,000 JPY" in text
    assert not re.search(r"\d\.\d\d JPY", text)


def test_seventy_line_invoice_numbers_pages_and_repeats_the_table_header():
    lines = tuple(
        _line(
            LineKind.MANAGED,
            f"Campaign trafficking and QA, job {index:02d}",
            quantity=3,
            unit="12500",
            amount=37_500,
        )
        for index in range(70)
    )
    total = 70 * 37_500
    document = _document(
        lines=lines, subtotal_minor=total, total_minor=total, amount_due_minor=total
    )

    pages = _pages(invoice_pdf_render(document=document).content)

    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "DESCRIPTION QUANTITY RATE AMOUNT" in text
    body = " ".join(pages)
    assert all(f"job {index:02d}" in body for index in range(70))
    assert "Amount due $26,250.00" in pages[-1]


def test_zero_tax_line_is_present():
    text = _text(invoice_pdf_render(document=_document(tax_minor=0)).content)

    assert "Tax $0.00 Total $9,500.67" in text


def test_discounts_and_credits_are_shown_when_non_zero():
    lines = (replace(LINES[4], discount_minor=18_000), *LINES[:4], *LINES[5:])
    document = _document(
        lines=lines,
        discount_minor=18_000,
        total_minor=SUBTOTAL - 18_000,
        credit_minor=10_000,
        amount_due_minor=SUBTOTAL - 28_000,
    )

    text = _text(invoice_pdf_render(document=document).content)

    assert "Subtotal $9,500.67 Discounts -$180.00 Tax $0.00 Total $9,320.67" in text
    assert "Credits applied -$100.00 Amount due $9,220.67" in text
    assert "Discount -$180.00" in text


def test_discounts_and_credits_are_left_out_when_zero():
    text = _text(invoice_pdf_render(document=_document()).content)

    assert "Discount" not in text
    assert "Credits applied" not in text


def test_html_in_a_description_is_printed_not_interpreted():
    lines = (_line(LineKind.OTHER, "Adjustment <b>& co</b>", unit="5000", amount=5_000),)
    document = _document(
        lines=lines, subtotal_minor=5_000, total_minor=5_000, amount_due_minor=5_000
    )

    text = _text(invoice_pdf_render(document=document).content)

    assert "Adjustment <b>& co</b>" in text


def test_missing_due_date_renders():
    text = _text(invoice_pdf_render(document=_document(due_on=None)).content)

    assert "Due date —" in text
    assert "Amount due $9,500.67" in text


def test_send_invoice_shows_the_hosted_pay_link_as_text_and_link():
    content = invoice_pdf_render(document=_document()).content

    text = _text(content)
    assert "Pay this invoice online" in text
    assert "AMOUNT DUE BY 1 DEC 2026 $9,500.67" in text
    reader = pypdf.PdfReader(io.BytesIO(content))
    uris = {
        annotation.get_object()["/A"]["/URI"]
        for annotation in reader.pages[0].get("/Annots", [])
        if "/A" in annotation.get_object()
    }
    assert uris == {HOSTED_URL}


def test_paid_invoice_says_thank_you_and_owes_nothing():
    document = _document(
        collection_method="charge_automatically",
        status="paid",
        amount_paid_minor=SUBTOTAL,
    )

    text = _text(invoice_pdf_render(document=document).content)

    assert "Paid — thank you" in text
    assert "Amount paid -$9,500.67 Amount due $0.00" in text
    assert "Pay this invoice online" not in text
    assert HOSTED_URL not in text


def test_open_automatic_invoice_says_it_will_be_charged():
    document = _document(collection_method="charge_automatically", due_on=None)

    text = _text(invoice_pdf_render(document=document).content)

    assert "No action needed" in text
    assert "Due date Charged automatically" in text
    assert "Pay this invoice online" not in text


def test_invoice_with_no_lines_renders():
    document = _document(
        lines=(), subtotal_minor=0, total_minor=0, amount_due_minor=0, status="paid"
    )

    text = _text(invoice_pdf_render(document=document).content)

    assert "No charges on this invoice." in text
    assert "Amount due $0.00" in text


def test_logo_is_embedded_on_the_first_page():
    reader = pypdf.PdfReader(io.BytesIO(invoice_pdf_render(document=_document()).content))

    assert len(reader.pages[0].images) == 1


@pytest.mark.parametrize(
    ("state", "changes"),
    [
        (PaymentState.PAY_LINK, {}),
        (PaymentState.AUTOCHARGE, {"collection_method": "charge_automatically"}),
        (PaymentState.PAID, {"status": "paid"}),
        (PaymentState.PAID, {"amount_paid_minor": SUBTOTAL}),
        (PaymentState.NOTHING_DUE, {"amount_due_minor": 0, "credit_minor": SUBTOTAL}),
    ],
)
def test_payment_state(state, changes):
    assert payment_state(_document(**changes)) == state


@pytest.mark.parametrize(
    ("unit_amount_decimal", "currency", "expected"),
    [
        ("0.25", "usd", "$2.50 / 1,000"),
        ("0.4125", "usd", "$4.125 / 1,000"),
        ("1.5", "usd", "$15.00 / 1,000"),
        ("12.345678", "usd", "$123.45678 / 1,000"),
        ("0.000000000001", "usd", "$0.00000000001 / 1,000"),
        (Decimal("0.3"), "eur", "3.00 EUR / 1,000"),
        ("0.25", "jpy", "250 JPY / 1,000"),
        ("0.0125", "jpy", "12.5 JPY / 1,000"),
        ("2", "jpy", "2,000 JPY / 1,000"),
    ],
)
def test_cpm_text(unit_amount_decimal, currency, expected):
    assert cpm_text(unit_amount_decimal, currency) == expected


def test_cpm_text_refuses_floats():
    with pytest.raises(MoneyError):
        cpm_text(0.25, "usd")


@pytest.mark.parametrize(
    ("rate_minor", "currency", "expected"),
    [
        ("250", "usd", "$2.50"),
        ("212.5", "usd", "$2.125"),
        ("-212.5", "usd", "-$2.125"),
        ("-0.5", "usd", "-$0.005"),
        ("12.5", "jpy", "12.5 JPY"),
        ("123456789.01", "usd", "$1,234,567.8901"),
    ],
)
def test_rate_text_keeps_sub_minor_digits(rate_minor, currency, expected):
    assert rate_text(rate_minor, currency) == expected


def test_december_service_period_reads_as_the_days_it_covers():
    december = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    lines = (
        _line(
            LineKind.FLAT, "Adventive Platform", amount=SUBTOTAL, start=december[0], end=december[1]
        ),
    )
    document = _document(lines=lines, period_start=december[0], period_end=december[1])

    text = _text(invoice_pdf_render(document=document).content)

    assert "Service period 1–31 Dec 2026" in text
    assert "Adventive Platform 1–31 Dec 2026" in text
    assert "Jan 2027" not in text


def test_period_and_day_filters_write_what_people_read():
    assert period(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)) == (
        "1–31 Dec 2026"
    )
    assert period(datetime(2026, 10, 1, tzinfo=UTC), None) == "1 Oct 2026"
    assert period(None, None) == ""
    assert day(date(2026, 5, 9)) == "9 May 2026"
    assert day(None) == ""


def test_link_callback_maps_only_our_static_assets():
    assert link_callback("invoices/adventive-logo.png") == str(STATIC_DIR / "adventive-logo.png")
    assert link_callback("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    assert link_callback("invoices/../pdf.py") == ""
    assert link_callback("invoices/missing.png") == ""
    assert link_callback("/etc/passwd") == ""
    assert link_callback("file:///etc/passwd") == ""
    assert link_callback("https://example.com/invoices/adventive-logo.png") == ""
    assert link_callback("http://169.254.169.254/latest/meta-data/") == ""


@pytest.mark.parametrize(
    "src",
    ["invoices/missing.png", "/etc/passwd", "../../pyproject.toml", "http://169.254.169.254/"],
)
def test_an_image_the_renderer_cannot_load_is_an_error_not_a_silent_drop(src):
    with pytest.raises(PdfRenderError, match="Could not get image data"):
        html_to_pdf(f'<html><body><img src="{src}"></body></html>', source_date_epoch=1)
