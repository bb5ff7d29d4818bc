"""Invoices that cover the PDF's hard cases, each one adding up as Stripe's invoices do.

Used by the snapshot test (`test_pdf_snapshots.py`), which renders each to PNG pages and
compares them with the approved images under `tests/invoices/pdf_snapshots/`.
"""

from dataclasses import replace
from datetime import UTC, date, datetime

from billing_project.classifier import LineKind
from invoices.documents import DocumentLine, InvoiceDocument

DECEMBER = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
FINALIZED_AT = int(datetime(2027, 1, 1, 2, tzinfo=UTC).timestamp())
HOSTED_URL = "https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/test_YWNjdF8xTnYwRkdROVJL?s=ap"


def line(
    kind: LineKind,
    description: str,
    *,
    amount: int,
    quantity: int = 1,
    unit: str | None = None,
    period: tuple[datetime, datetime] | None = DECEMBER,
    discount: int = 0,
) -> DocumentLine:
    return DocumentLine(
        kind=kind,
        description=description,
        quantity=quantity,
        unit_amount_decimal=unit if unit is not None else str(amount // max(quantity, 1)),
        amount_minor=amount,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        discount_minor=discount,
    )


def document(
    lines: tuple[DocumentLine, ...],
    *,
    discount: int = 0,
    pretax_credit: int = 0,
    tax: int = 0,
    credit: int = 0,
    paid: int = 0,
    **changes: object,
) -> InvoiceDocument:
    subtotal = sum(item.amount_minor for item in lines)
    total = subtotal - discount - pretax_credit + tax
    base = InvoiceDocument(
        stripe_invoice_id="in_1SnapshotCase",
        number="ADV-2026-000412",
        currency="usd",
        acct_id=4711,
        customer_name="Northwind Media Group",
        customer_email="ap@northwind.example",
        customer_address="200 Market Street, Floor 9\nSan Francisco CA 94105\nUS",
        issued_on=date(2027, 1, 1),
        due_on=date(2027, 1, 31),
        period_start=DECEMBER[0],
        period_end=DECEMBER[1],
        collection_method="send_invoice",
        hosted_invoice_url=HOSTED_URL,
        lines=lines,
        subtotal_minor=subtotal,
        discount_minor=discount,
        tax_minor=tax,
        total_minor=total,
        amount_paid_minor=paid,
        credit_minor=credit,
        amount_due_minor=max(total - paid - credit, 0),
        finalized_at=FINALIZED_AT,
        pretax_credit_minor=pretax_credit,
    )
    return replace(base, **changes)


PLATFORM = line(LineKind.FLAT, "Adventive Platform - Growth plan", amount=250_000)
IMPRESSIONS = line(
    LineKind.ST, "Standard impressions", quantity=1_234_567, unit="0.25", amount=308_642
)


def cases() -> dict[str, InvoiceDocument]:
    return {
        "long-names": document(
            (
                line(
                    LineKind.FLAT,
                    "Adventive Platform - Enterprise plan with dedicated account management, "
                    "premium support and the programmatic guaranteed add-on",
                    amount=1_250_000,
                ),
                line(
                    LineKind.MANAGED,
                    "Creative-production-and-trafficking-services-for-the-holiday-campaign",
                    quantity=12,
                    unit="15000",
                    amount=180_000,
                    period=None,
                ),
            ),
            customer_name="Tidewater Marketing & Communications Group International Holdings LLC",
            customer_email="invoices@tidewater-marketing-group.example",
            customer_address=(
                "Accounts Payable Department, Building 4, 1234 Commonwealth Avenue West\n"
                "Suite 1700, Attn: Procurement and Vendor Management\n"
                "San Francisco CA 94105-2841, United States of America"
            ),
            acct_id=1_000_042,
        ),
        "forty-lines": document(
            tuple(
                line(
                    LineKind.MANAGED,
                    f"Campaign trafficking and QA, flight {index + 1:02d}",
                    quantity=3,
                    unit="12500",
                    amount=37_500,
                    period=None,
                )
                for index in range(40)
            )
        ),
        "jpy": document(
            (
                line(LineKind.FLAT, "Platform", unit="250000", amount=250_000),
                line(
                    LineKind.ST,
                    "Standard impressions",
                    quantity=1_000_000,
                    unit="0.25",
                    amount=250_000,
                ),
            ),
            currency="jpy",
        ),
        "discount": document(
            (replace(PLATFORM, discount_minor=25_000), IMPRESSIONS),
            discount=25_000,
        ),
        "credit-note": document(
            (PLATFORM, IMPRESSIONS),
            pretax_credit=50_000,
            notes=("Credit note CN-2026-0007 (service outage, 3 Dec 2026) is applied.",),
        ),
        "tax": document((PLATFORM, IMPRESSIONS), tax=49_863),
        "zero": document(
            (line(LineKind.FLAT, "Adventive Platform - Trial", amount=0),),
            collection_method="charge_automatically",
            due_on=None,
        ),
        "negative-line": document(
            (
                PLATFORM,
                IMPRESSIONS,
                line(
                    LineKind.OTHER,
                    "Make-good for under-delivery, November campaign",
                    amount=-40_000,
                    period=None,
                ),
            )
        ),
    }
