"""Reconciliation's one boundary to Stripe: every invoice created in a time window, with all
of its lines, read fresh from the API in bulk (list pages of 100), never per account.

A month of 10,000 accounts is about 20,000 invoices (~120 MB of JSON). Two choices keep that
fast: the window is cut into slices listed concurrently (each its own cursor: Stripe answers
a page in hundreds of milliseconds, so sequential pages would take minutes), and responses
are decoded as plain dicts. stripe-python's HTTP client does the requests (its retries on
connection errors, 409 and 5xx, `Stripe-Should-Retry`); its response objects are skipped
because they decode every JSON object into an OrderedDict, several times slower.
"""

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import stripe
from django.conf import settings

from billing_project.classifier import kind_from_metadata
from billing_project.errors import ExternalServiceError

PAGE_SIZE = 100
NETWORK_RETRIES = 2
SLICES = 4

OnPage = Callable[[int], None] | None


class _Unreadable(Exception):
    pass


@dataclass
class StripeSnapshot:
    """What Stripe holds for a window: invoices (each with its complete `lines.data`) and,
    when some line carries no `metadata.kind`, the catalog to classify it by."""

    invoices: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0


class _Reader:
    """GET list pages from the Stripe API as plain dicts; counts requests and items."""

    def __init__(self, on_page: OnPage) -> None:
        self.http = stripe.new_default_http_client()
        self.base = (settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE).rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}",
            "Stripe-Version": settings.STRIPE_API_VERSION,
            "User-Agent": f"Stripe/v1 PythonBindings/{stripe.VERSION} billing-reconciliation",
        }
        self.on_page = on_page
        self.lock = threading.Lock()
        self.requests = 0
        self.items = 0

    def get(self, path: str, params: list[tuple[str, Any]]) -> dict[str, Any]:
        url = f"{self.base}{path}?{urlencode(params)}"
        body, status, _ = self.http.request_with_retries(
            "get", url, self.headers, max_network_retries=NETWORK_RETRIES
        )
        with self.lock:
            self.requests += 1
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _Unreadable(f"{path} answered {status} with a body that is not JSON") from exc
        if status >= 400:
            message = (data.get("error") or {}).get("message") or "no message"
            raise _Unreadable(f"{path} answered {status}: {message}")
        return data

    def list_all(self, path: str, params: list[tuple[str, Any]] | None = None) -> list[dict]:
        items: list[dict[str, Any]] = []
        after = None
        while True:
            page_params = [*(params or []), ("limit", PAGE_SIZE)]
            if after:
                page_params.append(("starting_after", after))
            page = self.get(path, page_params)
            items.extend(page["data"])
            with self.lock:
                self.items += len(page["data"])
                seen = self.items
            if self.on_page is not None and path == "/v1/invoices":
                self.on_page(seen)
            if not page.get("has_more") or not page["data"]:
                return items
            after = page["data"][-1]["id"]

    def complete_lines(self, invoice: dict[str, Any]) -> None:
        """An invoice embeds only its first lines; page the rest through its lines list."""
        lines = invoice.get("lines") or {"data": [], "has_more": False}
        if not lines.get("has_more"):
            return
        data = list(lines["data"])
        after = data[-1]["id"] if data else None
        while True:
            params: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
            if after:
                params.append(("starting_after", after))
            page = self.get(f"/v1/invoices/{invoice['id']}/lines", params)
            data.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        invoice["lines"] = {**lines, "data": data, "has_more": False}

    def invoices_slice(self, gte: int, lt: int) -> list[dict[str, Any]]:
        invoices = self.list_all("/v1/invoices", [("created[gte]", gte), ("created[lt]", lt)])
        for invoice in invoices:
            self.complete_lines(invoice)
        return invoices


def _slices(gte: int, lt: int, count: int) -> list[tuple[int, int]]:
    step = max(1, -(-(lt - gte) // count))
    return [(start, min(start + step, lt)) for start in range(gte, lt, step)]


def stripe_invoices_in_window(
    *, created_gte: int, created_lt: int, on_page: OnPage = None
) -> StripeSnapshot:
    """Every invoice created in [created_gte, created_lt) with all its lines; the catalog too
    if a line needs it for its kind. Raises ExternalServiceError when Stripe cannot be read."""
    reader = _Reader(on_page)
    snapshot = StripeSnapshot()
    try:
        with ThreadPoolExecutor(max_workers=SLICES, thread_name_prefix="stripe-list") as pool:
            parts = pool.map(
                lambda bounds: reader.invoices_slice(*bounds),
                _slices(created_gte, created_lt, SLICES),
            )
            snapshot.invoices = [invoice for part in parts for invoice in part]
        if any(
            kind_from_metadata(line.get("metadata")) == "other"
            for invoice in snapshot.invoices
            for line in invoice["lines"]["data"]
        ):
            snapshot.prices = {p["id"]: p for p in reader.list_all("/v1/prices")}
            snapshot.products = {p["id"]: p for p in reader.list_all("/v1/products")}
    except (stripe.StripeError, _Unreadable) as exc:
        message = getattr(exc, "user_message", None) or str(exc)
        raise ExternalServiceError(
            f"Stripe could not be read: {message}", service="stripe"
        ) from exc
    snapshot.requests = reader.requests
    return snapshot
