"""The Adventive-branded invoice PDF: Django template -> xhtml2pdf, byte-reproducible.

The same document renders to the same bytes: ReportLab stamps its dates and file id from
`SOURCE_DATE_EPOCH`, which we set to the invoice's finalization time. It is process-wide state,
and xhtml2pdf keeps its fonts in module globals, so one render runs at a time per process;
parallelise with processes, not threads.
"""

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.template.loader import render_to_string
from pypdf import PdfReader
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from billing_project.classifier import USAGE_KINDS
from invoices.documents import DocumentLine, InvoiceDocument, LineGroup

TEMPLATE_VERSION = "2026-12-1"
TEMPLATE_NAME = "invoices/invoice.html"

STATIC_DIR = Path(__file__).resolve().parent / "static" / "invoices"
STATIC_PREFIX = "invoices/"
LOGO = "invoices/adventive-logo.png"

# Read by the resource fetcher as well as by link_callback: no network, local reads confined to
# our own static assets, even for the paths xhtml2pdf fetches without asking link_callback.
_RESOURCE_POLICY = ResourceAccessPolicy.server(STATIC_DIR, allow_remote=False)
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Sender:
    """Who the invoice is from; operators change the address here and nowhere else."""

    name: str
    address_lines: tuple[str, ...]
    email: str

    @property
    def one_line(self) -> str:
        return " · ".join((self.name, *self.address_lines, self.email))


SENDER = Sender(
    name="Adventive, Inc.",
    address_lines=("1500 Broadway, Suite 1200", "New York, NY 10036"),
    email="billing@adventive.com",
)


class PdfRenderError(Exception):
    """xhtml2pdf could not turn the invoice template into a PDF."""


class PaymentState(StrEnum):
    PAID = "paid"
    NOTHING_DUE = "nothing_due"
    PAY_LINK = "pay_link"
    AUTOCHARGE = "autocharge"


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    sha256: str
    render_ms: int
    template_version: str


@dataclass(frozen=True)
class TotalRow:
    label: str
    amount_minor: int
    emphasis: str = ""


@dataclass(frozen=True)
class GroupView:
    label: str
    lines: tuple[DocumentLine, ...]
    impressions: bool


def amount_remaining_minor(document: InvoiceDocument) -> int:
    """What the customer still owes: Stripe keeps `amount_due` unchanged once it is paid."""
    if document.status == "paid":
        return 0
    return max(document.amount_due_minor - document.amount_paid_minor, 0)


def payment_state(document: InvoiceDocument) -> PaymentState:
    """What the invoice asks of the customer: nothing, to follow the pay link, or to wait."""
    if amount_remaining_minor(document) == 0:
        if document.status == "paid" or document.amount_paid_minor > 0:
            return PaymentState.PAID
        return PaymentState.NOTHING_DUE
    if document.collection_method == "send_invoice":
        return PaymentState.PAY_LINK
    return PaymentState.AUTOCHARGE


def total_rows(document: InvoiceDocument) -> tuple[TotalRow, ...]:
    """The summary under the lines; tax is always shown, as Stripe Tax will fill it."""
    rows = [TotalRow("Subtotal", document.subtotal_minor)]
    if document.discount_minor:
        rows.append(TotalRow("Discounts", -document.discount_minor))
    if document.pretax_credit_minor:
        rows.append(TotalRow("Credits", -document.pretax_credit_minor))
    rows.append(TotalRow("Tax", document.tax_minor))
    rows.append(TotalRow("Total", document.total_minor, "total"))
    if document.credit_minor:
        rows.append(TotalRow("Credits applied", -document.credit_minor))
    if document.amount_paid_minor:
        rows.append(TotalRow("Amount paid", -document.amount_paid_minor))
    rows.append(TotalRow("Amount due", amount_remaining_minor(document), "due"))
    return tuple(rows)


def _group_view(group: LineGroup) -> GroupView:
    return GroupView(
        label=group.label,
        lines=group.lines,
        impressions=group.kind in USAGE_KINDS,
    )


def invoice_pdf_context(*, document: InvoiceDocument, page_count: int = 1) -> dict[str, Any]:
    """Everything the template reads, decided here so the template only lays it out."""
    return {
        "page_count": page_count,
        "document": document,
        "currency": document.currency,
        "sender": SENDER,
        "logo": LOGO,
        "groups": tuple(_group_view(group) for group in document.groups),
        "totals": total_rows(document),
        "amount_remaining_minor": amount_remaining_minor(document),
        "payment_state": payment_state(document).value,
        "template_version": TEMPLATE_VERSION,
    }


def link_callback(uri: str, rel: str | None = None) -> str:
    """Resolve `invoices/<asset>` to our static file; anything else resolves to nothing.

    data: URIs pass through unchanged (they are part of the document). A remote URL, an
    absolute path or a path escaping the directory is refused, so a customer-controlled string
    that reached the template could never make the renderer fetch or read something.
    """
    if uri.startswith("data:"):
        return uri
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc or not parts.path.startswith(STATIC_PREFIX):
        return ""
    candidate = (STATIC_DIR / parts.path.removeprefix(STATIC_PREFIX)).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        return ""
    return str(candidate)


@contextmanager
def _source_date_epoch(timestamp: int) -> Iterator[None]:
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(timestamp))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def html_to_pdf(html: str, *, source_date_epoch: int) -> bytes:
    """xhtml2pdf under our lock, stamped with `source_date_epoch`.

    Warnings count as errors: xhtml2pdf drops an image it cannot read or markup it does not
    understand with only a warning, and an invoice missing its logo or a line must not be sent.
    """
    out = io.BytesIO()
    with _RENDER_LOCK, _source_date_epoch(source_date_epoch):
        try:
            result = pisa.pisaDocument(
                html,
                dest=out,
                link_callback=link_callback,
                resource_policy=_RESOURCE_POLICY,
                encoding="utf-8",
            )
        except Exception as exc:
            raise PdfRenderError(f"xhtml2pdf failed: {exc}") from exc
    if result.err or result.warn:
        problems = "; ".join(
            f"{mode}: {msg} at {fragment}" for mode, _, msg, fragment in result.log
        )
        raise PdfRenderError(f"xhtml2pdf could not render the invoice cleanly: {problems}")
    return out.getvalue()


def _render_with_page_count(*, document: InvoiceDocument, page_count: int) -> bytes:
    html = render_to_string(
        TEMPLATE_NAME, invoice_pdf_context(document=document, page_count=page_count)
    )
    return html_to_pdf(html, source_date_epoch=document.finalized_at)


def invoice_pdf_render(*, document: InvoiceDocument) -> RenderedPdf:
    """The invoice PDF; the same document and template version always give the same bytes.

    The footer's "Page N of M" takes M from the context rather than from xhtml2pdf's
    `<pdf:pagecount>`, which lays the whole document out twice: one layout for the usual
    one-page invoice, a second only when the first shows more pages.
    """
    started = time.perf_counter()
    content = _render_with_page_count(document=document, page_count=1)
    pages = len(PdfReader(io.BytesIO(content)).pages)
    if pages != 1:
        content = _render_with_page_count(document=document, page_count=pages)
    return RenderedPdf(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        render_ms=round((time.perf_counter() - started) * 1000),
        template_version=TEMPLATE_VERSION,
    )
