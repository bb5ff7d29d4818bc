"""The one boundary to Stripe: one configured client, one error mapping, one pager, the rate limit.

Every Stripe call of the application goes through `request()` (or the helpers built on it):
- one `stripe.StripeClient` per process, at the pinned API version, pointed at
  `STRIPE_API_BASE` when set, with stripe-python's own retries off: retrying is decided here,
  once, and by the callers that keep their own attempt counts (the usage outbox, deliveries);
- answers are plain dicts (the JSON Stripe sent), never `StripeObject`s;
- errors become `StripeApiError` (`missing`, `refused` or `unavailable`, with Stripe's code,
  param and any `Retry-After`), so callers never import stripe-python's exception classes;
- requests are paced by a token bucket at `STRIPE_REQUESTS_PER_SECOND` (Stripe allows 100 a
  second in live mode and 25 in test mode, per account: the setting is this process's share);
  a 429 is retried after its `Retry-After` up to `retries` times, then surfaces as
  `unavailable` with the wait Stripe asked for;
- no call is made inside a database transaction (`STRIPE_CALLS_IN_TRANSACTION`): a round trip
  of ~200 ms would hold the transaction's row locks and connection for that long.
"""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import stripe
from django.conf import settings
from django.db import connections

from .errors import ExternalServiceError

logger = logging.getLogger("billing.stripe")

PAGE_SIZE = 100
# Connection failures and 5xx of idempotent reads are retried this often (writes carry
# idempotency keys, so they are safe to retry too).
DEFAULT_RETRIES = 2
MAX_RETRY_AFTER_SECONDS = 10.0


class StripeApiError(ExternalServiceError):
    """Stripe did not do what was asked.

    `kind` is `missing` (404), `refused` (another 4xx: Stripe answered clearly no) or
    `unavailable` (429, 5xx, timeouts, connection failures: the outcome is unknown, retry)."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        stripe_code: str = "",
        param: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, service="stripe")
        self.kind = kind
        self.status = status
        self.stripe_code = stripe_code or ""
        self.param = param or ""
        self.retry_after = retry_after

    @property
    def missing(self) -> bool:
        return self.kind == "missing"

    @property
    def unavailable(self) -> bool:
        return self.kind == "unavailable"


def error_from(exc: stripe.StripeError) -> StripeApiError:
    """The one mapping of stripe-python's exceptions onto ours."""
    status = exc.http_status
    text = exc.user_message or str(exc) or type(exc).__name__
    message = " ".join(str(part) for part in (status or "", exc.code or "", text) if part)
    if isinstance(exc, stripe.APIConnectionError) or status is None:
        kind = "unavailable"
    elif status == 404:
        kind = "missing"
    elif status in (409, 429) or status >= 500:
        kind = "unavailable"
    else:
        kind = "refused"
    return StripeApiError(
        message[:1000],
        kind=kind,
        status=status,
        stripe_code=exc.code or "",
        param=getattr(exc, "param", "") or "",
        retry_after=_retry_after(exc),
    )


def _retry_after(exc: stripe.StripeError) -> int | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0, int(float(value))) if value is not None else None
    except ValueError:
        return None


class _TokenBucket:
    """At most `rate` requests a second on average, bursts of up to `rate`; thread-safe."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


_state_lock = threading.Lock()
_client: tuple[tuple, stripe.StripeClient] | None = None
_bucket: tuple[float, _TokenBucket] | None = None


def client() -> stripe.StripeClient:
    """The process's client for the configured key, API version and base address."""
    global _client
    key = (settings.STRIPE_SECRET_KEY, settings.STRIPE_API_VERSION, settings.STRIPE_API_BASE)
    with _state_lock:
        if _client is None or _client[0] != key:
            base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
            _client = (
                key,
                stripe.StripeClient(
                    settings.STRIPE_SECRET_KEY,
                    stripe_version=settings.STRIPE_API_VERSION,
                    base_addresses=base,
                    max_network_retries=0,
                ),
            )
        return _client[1]


def _limiter() -> _TokenBucket:
    global _bucket
    rate = float(settings.STRIPE_REQUESTS_PER_SECOND)
    with _state_lock:
        if _bucket is None or _bucket[0] != rate:
            _bucket = (rate, _TokenBucket(rate))
        return _bucket[1]


class StripeCallInTransaction(RuntimeError):
    """A Stripe call was attempted inside a database transaction."""


def _open_transactions() -> list[str]:
    """Aliases of connections inside a transaction of the application's own (a test case's
    wrapping transaction does not count)."""
    return [
        alias
        for alias in connections
        if connections[alias].connection is not None
        and any(
            not getattr(block, "_from_testcase", False)
            for block in connections[alias].atomic_blocks
        )
    ]


def _outside_transactions(method: str, path: str) -> None:
    open_in = _open_transactions()
    if not open_in:
        return
    message = f"Stripe {method.upper()} {path} inside a database transaction on {open_in}"
    if settings.STRIPE_CALLS_IN_TRANSACTION == "refuse":
        raise StripeCallInTransaction(message)
    logger.error(message)


def request(
    method: str,
    path: str,
    *,
    idempotency_key: str | None = None,
    retries: int = DEFAULT_RETRIES,
    **params: Any,
) -> dict[str, Any]:
    """One Stripe API call, paced; the decoded JSON answer. Raises StripeApiError.

    `unavailable` answers (429, 5xx, connection failures) are retried `retries` times, after
    Stripe's `Retry-After` when it gives one (capped), else after a short backoff."""
    options: dict[str, Any] = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    _outside_transactions(method, path)
    attempt = 0
    while True:
        _limiter().take()
        try:
            return client().raw_request(method, path, **params, **options).data
        except stripe.StripeError as exc:
            error = error_from(exc)
        if not error.unavailable or attempt >= retries:
            raise error
        attempt += 1
        wait = error.retry_after if error.retry_after is not None else 0.25 * 2**attempt
        time.sleep(min(float(wait), MAX_RETRY_AFTER_SECONDS))


def retrieve(path: str, **params: Any) -> dict[str, Any] | None:
    """GET one object; None when Stripe has no such object (or it was deleted)."""
    try:
        found = request("get", path, **params)
    except StripeApiError as error:
        if error.missing:
            return None
        raise
    return None if found.get("deleted") else found


def pages(
    path: str, *, starting_after: str | None = None, retries: int = DEFAULT_RETRIES, **params: Any
) -> Iterator[dict[str, Any]]:
    """Every item of a list endpoint (after `starting_after`), page by page."""
    after = starting_after
    while True:
        page_params = {"limit": PAGE_SIZE, **params}
        if after:
            page_params["starting_after"] = after
        page = request("get", path, retries=retries, **page_params)
        yield from page["data"]
        if not page.get("has_more") or not page["data"]:
            return
        after = page["data"][-1]["id"]


def invoice_lines(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """Every line of an invoice: the embedded ones, then the rest from the lines endpoint
    (Stripe embeds only the first lines and says `has_more`)."""
    embedded = invoice.get("lines") or {"data": [], "has_more": False}
    lines = list(embedded.get("data") or [])
    if embedded.get("has_more"):
        after = lines[-1]["id"] if lines else None
        lines.extend(pages(f"/v1/invoices/{invoice['id']}/lines", starting_after=after))
    return lines


def with_all_lines(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice with its complete `lines.data` (paged past the embedded ones)."""
    lines = invoice_lines(invoice)
    return {**invoice, "lines": {**(invoice.get("lines") or {}), "data": lines, "has_more": False}}
