"""Reconciliation's one boundary to Stripe: every invoice created in a time window, with all
of its lines, read fresh from the API in bulk (list pages of 100), never per account.

A month of 10,000 accounts is about 20,000 invoices (~120 MB of JSON). Two choices keep that
fast: the window is cut into slices listed concurrently (each its own cursor: Stripe answers
a page in hundreds of milliseconds, so sequential pages would take minutes), and responses
are decoded as plain dicts (the one Stripe client's raw answers: stripe-python's response
objects decode every JSON object into an OrderedDict, several times slower). Connection
errors, 409, 429 and 5xx are retried by that client, paced by its rate limit.
"""

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from billing_project import stripe_api
from billing_project.classifier import LineKind, classify_stripe_line
from billing_project.errors import ExternalServiceError
from billing_project.stripe_api import StripeApiError

PAGE_SIZE = 100
NETWORK_RETRIES = 2
SLICES = 4

OnPage = Callable[[int], None] | None


@dataclass
class StripeSnapshot:
    """What Stripe holds for a window: invoices (each with its complete `lines.data`) and,
    when some line carries no `metadata.kind`, the catalog to classify it by."""

    invoices: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Invoice id -> the credit notes issued against it (with all their lines).
    credit_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0


class _Reader:
    """List pages through the one Stripe client, counting requests and items."""

    def __init__(self, on_page: OnPage) -> None:
        self.on_page = on_page
        self.lock = threading.Lock()
        self.requests = 0
        self.items = 0

    def list_all(self, path: str, **params: Any) -> list[dict]:
        items: list[dict[str, Any]] = []
        for item in stripe_api.pages(path, retries=NETWORK_RETRIES, **params):
            items.append(item)
            if path == "/v1/invoices":
                with self.lock:
                    self.items += 1
                    seen = self.items
                if self.on_page is not None and seen % PAGE_SIZE == 0:
                    self.on_page(seen)
        with self.lock:
            self.requests += 1 + len(items) // PAGE_SIZE
        return items

    def complete_lines(self, invoice: dict[str, Any]) -> None:
        """An invoice embeds only its first lines; page the rest through its lines list."""
        embedded = invoice.get("lines") or {"data": [], "has_more": False}
        if not embedded.get("has_more"):
            return
        lines = stripe_api.invoice_lines(invoice)
        invoice["lines"] = {**embedded, "data": lines, "has_more": False}
        with self.lock:
            self.requests += 1 + (len(lines) - len(embedded["data"])) // PAGE_SIZE

    def credit_notes_for(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        """The credit notes of an invoice that has any, each with all its lines."""
        notes = self.list_all("/v1/credit_notes", invoice=invoice["id"])
        for note in notes:
            embedded = note.get("lines") or {"data": [], "has_more": False}
            if embedded.get("has_more"):
                after = embedded["data"][-1]["id"] if embedded["data"] else None
                rest = self.list_all(f"/v1/credit_notes/{note['id']}/lines", starting_after=after)
                note["lines"] = {**embedded, "data": embedded["data"] + rest, "has_more": False}
        return notes

    def invoices_slice(self, gte: int, lt: int) -> list[dict[str, Any]]:
        invoices = self.list_all("/v1/invoices", created={"gte": gte, "lt": lt})
        for invoice in invoices:
            self.complete_lines(invoice)
        return invoices


def _slices(gte: int, lt: int, count: int) -> list[tuple[int, int]]:
    step = max(1, -(-(lt - gte) // count))
    return [(start, min(start + step, lt)) for start in range(gte, lt, step)]


def stripe_invoices_in_window(
    *,
    created_gte: int,
    created_lt: int,
    kinds: Mapping[str, str] | None = None,
    on_page: OnPage = None,
) -> StripeSnapshot:
    """Every invoice created in [created_gte, created_lt) with all its lines; Stripe's catalog
    too if a line's kind is neither in its own metadata nor in `kinds` (the catalog we made).
    Raises ExternalServiceError when Stripe cannot be read."""
    reader = _Reader(on_page)
    snapshot = StripeSnapshot()
    try:
        with ThreadPoolExecutor(max_workers=SLICES, thread_name_prefix="stripe-list") as pool:
            parts = pool.map(
                lambda bounds: reader.invoices_slice(*bounds),
                _slices(created_gte, created_lt, SLICES),
            )
            snapshot.invoices = [invoice for part in parts for invoice in part]
        for invoice in snapshot.invoices:
            credited = (invoice.get("pre_payment_credit_notes_amount") or 0) + (
                invoice.get("post_payment_credit_notes_amount") or 0
            )
            if credited:
                snapshot.credit_notes[invoice["id"]] = reader.credit_notes_for(invoice)
        if any(
            classify_stripe_line(line, kinds=kinds) == LineKind.OTHER
            for invoice in snapshot.invoices
            for line in invoice["lines"]["data"]
        ):
            snapshot.prices = {p["id"]: p for p in reader.list_all("/v1/prices")}
            snapshot.products = {p["id"]: p for p in reader.list_all("/v1/products")}
    except StripeApiError as exc:
        raise ExternalServiceError(
            f"Stripe could not be read: {exc.message}", service="stripe"
        ) from exc
    snapshot.requests = reader.requests
    return snapshot
