"""How long `invoice_pdf_render` takes for a one-page and a twenty-page invoice.

Each size is rendered once to warm up (template and font caches), then `--runs` times; the
median and the maximum of `RenderedPdf.render_ms` are printed with the page count produced.
Run: `.venv/bin/python bench/pdf_render.py [--runs 10]`.
"""

import argparse
import io
import os
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

import django

django.setup()

import pypdf

from billing_project.classifier import LineKind
from invoices.documents import DocumentLine, InvoiceDocument
from invoices.pdf import invoice_pdf_render

# One flat line, the three impression lines and managed-service jobs to fill the pages.
ONE_PAGE_JOBS = 4
TWENTY_PAGE_JOBS = 720


def invoice(jobs: int) -> InvoiceDocument:
    month = (date(2026, 10, 1), date(2026, 11, 1))
    lines = [
        DocumentLine(LineKind.FLAT, "Adventive Platform", 1, "250000", 250_000, *month),
        DocumentLine(LineKind.ST, "Standard impressions", 1_234_567, "0.25", 308_642, *month),
        DocumentLine(LineKind.RM, "Rich media impressions", 456_789, "0.4125", 188_425, *month),
        DocumentLine(LineKind.CV, "Conversions", 12_000, "1.5", 18_000, *month),
    ]
    lines += [
        DocumentLine(LineKind.MANAGED, f"Campaign QA, job {n}", 3, "12500", 37_500, None, None)
        for n in range(jobs)
    ]
    total = sum(line.amount_minor for line in lines)
    return InvoiceDocument(
        stripe_invoice_id="in_bench",
        number="ADV-BENCH-0001",
        currency="usd",
        acct_id=1,
        customer_name="Bench Customer",
        customer_email="ap@bench.example",
        customer_address="1 Main Street\nSpringfield IL 62701\nUS",
        issued_on=date(2026, 11, 1),
        due_on=date(2026, 12, 1),
        period_start=month[0],
        period_end=month[1],
        collection_method="send_invoice",
        hosted_invoice_url="https://invoice.stripe.com/i/acct_bench/test_bench?s=ap",
        lines=tuple(lines),
        subtotal_minor=total,
        discount_minor=0,
        tax_minor=0,
        total_minor=total,
        amount_paid_minor=0,
        credit_minor=0,
        amount_due_minor=total,
        finalized_at=1_793_491_200,
    )


def measure(jobs: int, runs: int) -> tuple[int, float, int]:
    document = invoice(jobs)
    pages = len(pypdf.PdfReader(io.BytesIO(invoice_pdf_render(document=document).content)).pages)
    timings = [invoice_pdf_render(document=document).render_ms for _ in range(runs)]
    return pages, statistics.median(timings), max(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"invoice_pdf_render, {args.runs} runs each after one warm-up")
    for label, jobs in (("1 page", ONE_PAGE_JOBS), ("20 pages", TWENTY_PAGE_JOBS)):
        pages, median, worst = measure(jobs, args.runs)
        print(f"{label:>9}: {pages} page(s), median {median:.0f} ms, max {worst} ms")


if __name__ == "__main__":
    main()
