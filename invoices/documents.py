"""What an invoice says, built once from Stripe's invoice: the PDF and the email read this.

Stripe's invoice (API `2026-08-26.dahlia` shape) is the source; nothing here talks to Stripe.
Amounts are integer minor units; lines are grouped by the shared classifier.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from billing_project.classifier import LineKind, classify_stripe_line

KIND_ORDER = [
    LineKind.FLAT,
    LineKind.ST,
    LineKind.RM,
    LineKind.CV,
    LineKind.MANAGED,
    LineKind.OTHER,
]


def _date(timestamp: int | None) -> date | None:
    return datetime.fromtimestamp(timestamp, tz=UTC).date() if timestamp else None


def _instant(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


@dataclass(frozen=True)
class DocumentLine:
    kind: LineKind
    description: str
    quantity: int
    unit_amount_decimal: str | None
    amount_minor: int
    # Stripe's half-open service period [start, end) as UTC instants; shown with period_text.
    period_start: datetime | None
    period_end: datetime | None
    discount_minor: int = 0


@dataclass(frozen=True)
class LineGroup:
    kind: LineKind
    lines: tuple[DocumentLine, ...]

    @property
    def label(self) -> str:
        return self.kind.label

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


@dataclass(frozen=True)
class InvoiceDocument:
    stripe_invoice_id: str
    number: str
    currency: str
    acct_id: int | None
    customer_name: str
    customer_email: str
    customer_address: str
    issued_on: date
    due_on: date | None
    period_start: datetime | None
    period_end: datetime | None
    collection_method: str
    hosted_invoice_url: str
    lines: tuple[DocumentLine, ...]
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int
    amount_paid_minor: int
    credit_minor: int
    amount_due_minor: int
    finalized_at: int
    status: str = "open"
    pretax_credit_minor: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def groups(self) -> tuple[LineGroup, ...]:
        """Lines grouped by kind in a fixed order; empty groups left out."""
        groups = []
        for kind in KIND_ORDER:
            lines = tuple(line for line in self.lines if line.kind == kind)
            if lines:
                groups.append(LineGroup(kind=kind, lines=lines))
        return tuple(groups)


def invoice_document_build(
    *,
    invoice: dict[str, Any],
    lines: list[dict[str, Any]],
    acct_id: int | None = None,
    customer_address: str = "",
    prices: dict[str, dict[str, Any]] | None = None,
    products: dict[str, dict[str, Any]] | None = None,
    kinds: dict[str, str] | None = None,
) -> InvoiceDocument:
    """The document for a finalized Stripe invoice and all its lines (paged in by the caller)."""
    document_lines = []
    for line in lines:
        period = line.get("period") or {}
        discount = sum(d.get("amount", 0) for d in line.get("discount_amounts") or [])
        document_lines.append(
            DocumentLine(
                kind=classify_stripe_line(line, prices=prices, products=products, kinds=kinds),
                description=line.get("description") or "",
                quantity=int(line.get("quantity") or 0),
                unit_amount_decimal=_unit_amount(line),
                amount_minor=int(line["amount"]),
                period_start=_instant(period.get("start")),
                period_end=_instant(period.get("end")),
                discount_minor=discount,
            )
        )
    discount_total = sum(d.get("amount", 0) for d in invoice.get("total_discount_amounts") or [])
    tax_total = sum(t.get("amount", 0) for t in invoice.get("total_taxes") or [])
    pretax_credit = sum(
        c.get("amount", 0) for c in invoice.get("total_pretax_credit_amounts") or []
    )
    credit = invoice.get("pre_payment_credit_notes_amount") or 0
    starting_balance = invoice.get("starting_balance") or 0
    if starting_balance < 0:
        credit += -starting_balance
    transitions = invoice.get("status_transitions") or {}
    finalized_at = (
        transitions.get("finalized_at") or invoice.get("effective_at") or invoice["created"]
    )
    address = customer_address or _address_text(invoice.get("customer_address"))
    return InvoiceDocument(
        stripe_invoice_id=invoice["id"],
        number=invoice.get("number") or invoice["id"],
        currency=invoice["currency"],
        acct_id=acct_id,
        customer_name=invoice.get("customer_name") or "",
        customer_email=invoice.get("customer_email") or "",
        customer_address=address,
        issued_on=_date(finalized_at),
        due_on=_date(invoice.get("due_date")),
        period_start=min(
            (line.period_start for line in document_lines if line.period_start), default=None
        ),
        period_end=max(
            (line.period_end for line in document_lines if line.period_end), default=None
        ),
        collection_method=invoice.get("collection_method") or "charge_automatically",
        hosted_invoice_url=invoice.get("hosted_invoice_url") or "",
        lines=tuple(document_lines),
        subtotal_minor=int(invoice.get("subtotal") or 0),
        discount_minor=int(discount_total),
        tax_minor=int(tax_total),
        pretax_credit_minor=int(pretax_credit),
        total_minor=int(invoice.get("total") or 0),
        amount_paid_minor=int(invoice.get("amount_paid") or 0),
        credit_minor=int(credit),
        amount_due_minor=int(invoice.get("amount_due") or 0),
        finalized_at=int(finalized_at),
        status=invoice.get("status") or "open",
    )


def _unit_amount(line: dict[str, Any]) -> str | None:
    value = (line.get("pricing") or {}).get("unit_amount_decimal")
    return None if value is None else str(value)


def _address_text(address: dict[str, Any] | None) -> str:
    if not address:
        return ""
    city_line = " ".join(
        part
        for part in (address.get("city"), address.get("state"), address.get("postal_code"))
        if part
    )
    parts = [address.get("line1"), address.get("line2"), city_line, address.get("country")]
    return "\n".join(part for part in parts if part)


def document_equation_errors(document: InvoiceDocument) -> list[str]:
    """Stripe's invoice must add up before we send it; each broken equation is named.

    Σ line amounts = subtotal; subtotal - discounts - pre-tax credits + tax = total;
    total - amount paid - credit applied = amount due.
    """
    errors = []
    lines_total = sum(line.amount_minor for line in document.lines)
    if lines_total != document.subtotal_minor:
        errors.append(f"lines sum to {lines_total}, subtotal is {document.subtotal_minor}")
    after_discounts = (
        document.subtotal_minor - document.discount_minor - document.pretax_credit_minor
    )
    if after_discounts + document.tax_minor != document.total_minor:
        errors.append(
            f"subtotal {document.subtotal_minor} - discounts {document.discount_minor} "
            f"- credits {document.pretax_credit_minor} + tax {document.tax_minor} "
            f"!= total {document.total_minor}"
        )
    expected_due = document.total_minor - document.amount_paid_minor - document.credit_minor
    if document.status in ("draft", "open") and max(expected_due, 0) != document.amount_due_minor:
        errors.append(
            f"total {document.total_minor} - paid {document.amount_paid_minor} - credit "
            f"{document.credit_minor} != amount due {document.amount_due_minor}"
        )
    return errors
