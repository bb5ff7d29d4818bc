"""HTTP front of the Stripe-compatible server: auth, routing, form params, idempotency,
`expand[]`, list pagination and fault injection. Resources register routes with `route`."""

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import conformance, invoicing
from .forms import decode_form
from .store import Store, StripeError
from .webhooks import WebhookDispatcher

API_VERSION = "2026-08-26.dahlia"
ACCEPTED_KEY_PREFIXES = ("sk_test_", "rk_test_")


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    match: dict[str, str]
    api_key: str
    idempotency_key: str | None
    server: "StripeServer"

    @property
    def store(self) -> Store:
        return self.server.store


Handler = Callable[[Request], dict[str, Any]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        ROUTES.append((method, re.compile(f"^{pattern}$"), func))
        return func

    return register


def list_page(request: Request, items: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """Stripe list object, newest first, with `limit`, `starting_after`, `ending_before`."""
    order = request.store.sequence
    items = sorted(
        items, key=lambda obj: (obj.get("created", 0), order.get(obj["id"], 0)), reverse=True
    )
    try:
        limit = int(request.params.get("limit", 10))
    except ValueError as exc:
        raise StripeError("Invalid integer: limit", param="limit") from exc
    if not 1 <= limit <= 100:
        raise StripeError("Limit must be between 1 and 100.", param="limit")
    ids = [obj["id"] for obj in items]
    if after := request.params.get("starting_after"):
        if after not in ids:
            raise StripeError(f"No such object: '{after}'", param="starting_after")
        items = items[ids.index(after) + 1 :]
    elif before := request.params.get("ending_before"):
        if before not in ids:
            raise StripeError(f"No such object: '{before}'", param="ending_before")
        items = items[: ids.index(before)][-limit:]
    page = items[:limit]
    return {"object": "list", "data": page, "has_more": len(items) > limit, "url": url}


def _expand(server: "StripeServer", obj: Any, path: list[str]) -> Any:
    if not path or obj is None:
        return obj
    if isinstance(obj, list):
        return [_expand(server, item, path) for item in obj]
    if not isinstance(obj, dict):
        return obj
    head, rest = path[0], path[1:]
    if head == "data" and obj.get("object") == "list":
        obj["data"] = [_expand(server, item, rest) for item in obj["data"]]
        return obj
    expander = server.expanders.get((obj.get("object"), head))
    if head not in obj:
        if expander is None:
            return obj
        obj[head] = None
    value = obj[head]
    if isinstance(value, str):
        found = expander(server, obj) if expander else server.store.find(value)
        value = json.loads(json.dumps(found)) if found is not None else value
    elif value is None and expander is not None:
        value = expander(server, obj)
    elif isinstance(value, list):
        value = [
            json.loads(json.dumps(server.store.find(v) or v)) if isinstance(v, str) else v
            for v in value
        ]
    obj[head] = _expand(server, value, rest)
    return obj


class _Handler(BaseHTTPRequestHandler):
    server_version = "stripe-compatible/1.0"
    protocol_version = "HTTP/1.1"
    # Keep-alive answers written in two parts otherwise wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        app: StripeServer = self.server.app  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        split = urlsplit(self.path)
        if method == "GET" and split.path.startswith("/hosted/"):
            status, content_type, page = app.hosted_page(split.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        status, payload, headers = app.handle(
            method, split.path, split.query, body, dict(self.headers.items())
        )
        data = json.dumps(payload, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", app.store.new_id("req"))
        self.send_header("Stripe-Version", app.api_version)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class StripeServer:
    """A stateful Stripe-compatible API on 127.0.0.1. `start()`, `url`, `stop()`."""

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        from . import resources

        self.host = host
        self.port = port
        self.api_version = API_VERSION
        self.finalization_grace_seconds = 3600
        self.meter_event_delay = 0.0
        self._init_options()
        # Every answer is compared with stripe-python's resource types (a 500 on a mismatch).
        self.check_responses = True
        self.webhooks = WebhookDispatcher(self)
        self.store = self._new_store()
        self.expanders: dict[tuple[str | None, str], Callable] = dict(resources.EXPANDERS)
        self._faults: list[dict[str, Any]] = []
        self._faults_lock = threading.Lock()
        self.meter_error_timer: threading.Timer | None = None
        self.meter_error_timer_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "StripeServer":
        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="stripe-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.webhooks.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "StripeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _new_store(self) -> Store:
        store = Store()
        store.api_version = self.api_version
        store.renderer = invoicing.present
        store.checker = self._check_event
        store.listeners.append(self.webhooks.on_event)
        return store

    def _check_event(self, event: dict[str, Any]) -> None:
        if self.check_responses:
            conformance.check_object(event)

    def flush_meter_errors(self) -> list[dict[str, Any]]:
        """Report the unusable meter events gathered so far (v2 events, sent to destinations)."""
        from .thin_events import meter_errors_flush

        return meter_errors_flush(self)

    def reset(self) -> None:
        """Forget every object, event, delivery and fault (between tests)."""
        with self.meter_error_timer_lock:
            if self.meter_error_timer is not None:
                self.meter_error_timer.cancel()
                self.meter_error_timer = None
        self.webhooks.reset()
        self.store = self._new_store()
        self.finalization_grace_seconds = 3600
        self.meter_event_delay = 0.0
        self._init_options()
        with self._faults_lock:
            self._faults.clear()

    def _init_options(self) -> None:
        # Seconds before a test clock advance is carried out (None: before the answer is sent).
        self.test_clock_advance_delay: float | None = None
        # Stripe's rate limit, requests per second: 25 in test mode, 100 in live mode. Off
        # (None) unless a test sets it.
        self.rate_limit_per_second: int | None = None
        # Seconds between the first unusable meter event and its error report (None: only on
        # flush_meter_errors()).
        self.meter_error_report_delay: float | None = 0.5
        self._recent_requests: deque[float] = deque()
        self._rate_lock = threading.Lock()

    def _rate_limit(self) -> None:
        limit = self.rate_limit_per_second
        if not limit:
            return
        with self._rate_lock:
            now = time.monotonic()
            while self._recent_requests and self._recent_requests[0] <= now - 1.0:
                self._recent_requests.popleft()
            if len(self._recent_requests) >= limit:
                raise StripeError(
                    "Request rate limit exceeded. Learn more about rate limits here "
                    "https://stripe.com/docs/rate-limits.",
                    status=429,
                    code="rate_limit",
                    headers={"Retry-After": "1", "Stripe-Should-Retry": "true"},
                    doc_url="https://stripe.com/docs/error-codes/rate-limit",
                )
            self._recent_requests.append(now)

    def fail_next(
        self,
        count: int,
        *,
        status: int = 500,
        path: str | None = None,
        delay: float = 0.0,
        retry_after: int | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `count` calls (to paths starting with `path`) with an error. With
        `after`, each call is carried out first and only its answer is lost (a timeout or a
        5xx after Stripe did the work)."""
        with self._faults_lock:
            self._faults.append(
                {
                    "remaining": count,
                    "status": status,
                    "path": path,
                    "delay": delay,
                    "retry_after": retry_after,
                    "after": after,
                }
            )

    def _take_fault(self, path: str) -> dict[str, Any] | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault["remaining"] > 0 and (
                    fault["path"] is None or path.startswith(fault["path"])
                ):
                    fault["remaining"] -= 1
                    return dict(fault)
        return None

    def handle(
        self, method: str, path: str, query: str, body: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        lower = {key.lower(): value for key, value in headers.items()}
        # Stripe saves an idempotent result only for a request it started executing: not for
        # one refused before (authentication, rate limiting, an injected failure).
        executed = False
        try:
            api_key = self._authenticate(lower.get("authorization", ""))
            self._rate_limit()
            fault = self._take_fault(path)
            if fault is not None and not fault["after"]:
                raise self._fault_error(fault)
            params = self._params(method, path, query, body)
            idempotency_key = lower.get("idempotency-key") if method == "POST" else None
            if idempotency_key:
                replay = self._replay(api_key, idempotency_key, method, path, body)
                if replay is not None:
                    return replay
            handler, match = self._route(method, path)
            # Stripe's 400 for an unknown parameter or enum value, from stripe-python's types.
            conformance.check_request(method, path, params)
            request = Request(method, path, params, match, api_key, idempotency_key, self)
            executed = True
            result = invoicing.present(handler(request))
            if params.get("expand"):
                # Expansion rewrites the answer; never the stored objects it came from.
                result = json.loads(json.dumps(result))
            for expand_path in params.get("expand", []) or []:
                result = _expand(self, result, expand_path.split("."))
            if params.get("expand"):
                result = invoicing.present(result)
            if self.check_responses:
                conformance.check_object(result)
            status, out_headers = 200, {}
            if fault is not None:
                raise self._fault_error(fault)
        except StripeError as error:
            status, result, out_headers = error.status, error.body, error.headers
            idempotency_key = lower.get("idempotency-key") if method == "POST" else None
        if executed and idempotency_key and status < 500 and status != 429:
            fingerprint = hashlib.sha256(f"{method} {path} {body}".encode()).hexdigest()
            with self.store.lock:
                self.store.idempotency.setdefault(
                    (api_key, idempotency_key), (fingerprint, status, json.dumps(result).encode())
                )
        with self.store.lock:
            self.store.requests.append({"method": method, "path": path, "status": status})
        return status, result, out_headers

    @staticmethod
    def _fault_error(fault: dict[str, Any]) -> StripeError:
        if fault["delay"]:
            time.sleep(fault["delay"])
        extra = {}
        if fault["retry_after"] is not None:
            extra["Retry-After"] = str(fault["retry_after"])
        kind = "rate_limit" if fault["status"] == 429 else "api_error"
        return StripeError("Injected failure.", status=fault["status"], type=kind, headers=extra)

    def hosted_page(self, path: str) -> tuple[int, str, bytes]:
        """Stand-ins for Stripe's hosted invoice page and portal (no API key, like Stripe's)."""
        from html import escape

        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "invoices":
            invoice = self.store.objects.get("invoice", {}).get(parts[2])
            if invoice is not None:
                total = f"{invoice['amount_due'] / 100:,.2f} {invoice['currency'].upper()}"
                body = (
                    f"<h1>Invoice {escape(invoice['number'] or invoice['id'])}</h1>"
                    f"<p>Status: {escape(invoice['status'])}</p><p>Amount due: {total}</p>"
                )
                return 200, "text/html; charset=utf-8", f"<html><body>{body}</body></html>".encode()
        if len(parts) >= 3 and parts[1] == "portal":
            return (
                200,
                "text/html; charset=utf-8",
                b"<html><body><h1>Billing portal</h1></body></html>",
            )
        return 404, "text/html; charset=utf-8", b"<html><body>Not found</body></html>"

    def _authenticate(self, authorization: str) -> str:
        import base64

        key = ""
        if authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        elif authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode(errors="replace")
            key = decoded.partition(":")[0]
        if not key:
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                status=401,
            )
        if not key.startswith(ACCEPTED_KEY_PREFIXES):
            raise StripeError(
                f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}", status=401
            )
        return key

    def _replay(
        self, api_key: str, key: str, method: str, path: str, body: str
    ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        fingerprint = hashlib.sha256(f"{method} {path} {body}".encode()).hexdigest()
        with self.store.lock:
            stored = self.store.idempotency.get((api_key, key))
        if stored is None:
            return None
        if stored[0] != fingerprint:
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        return stored[1], json.loads(stored[2]), {"Idempotent-Replayed": "true"}

    @staticmethod
    def _params(method: str, path: str, query: str, body: str) -> dict[str, Any]:
        if method in ("GET", "DELETE"):
            return decode_form(query)
        if path.startswith("/v2/"):
            # The v2 API takes JSON bodies.
            try:
                decoded = json.loads(body) if body.strip() else {}
            except ValueError as exc:
                raise StripeError("Invalid JSON body.") from exc
            return decoded if isinstance(decoded, dict) else {}
        return decode_form(body)

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_known = False
        for route_method, pattern, handler in ROUTES:
            found = pattern.match(path)
            if found:
                path_known = True
                if route_method == method:
                    return handler, found.groupdict()
        if path_known:
            raise StripeError(f"Unrecognized request URL ({method}: {path}).", status=405)
        raise StripeError(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            status=404,
        )
