"""The Stripe- and Mailgun-compatible servers, in a process of their own driven over a pipe.

Outside the bench process, their work (JSON rendering, multipart parsing) neither holds the
interpreter that times the webhook requests nor hides in its CPU figure.

The Stripe-compatible server answers on three ports that share one store: `setup` (the bench
creates customers and subscriptions there), `web` (the app's gunicorn: dj-stripe's re-fetches)
and `worker` (the qcluster: the delivery's invoice and lines fetch). Each call on `web` and
`worker` is recorded with its handling time, so the two callers are counted apart.

Its responses go out with TCP_NODELAY (`keep_nagle=False`, the default): the server writes the
headers and the body separately, and on a keep-alive connection Nagle's algorithm holds the body
until the client's delayed ACK, about 40 ms per call, which real Stripe does not do.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

STRIPE_DOORS = ("web", "worker")
_PR_SET_PDEATHSIG = 1
# The events of a customer's life before its first invoice, which the bench posts ahead of the
# phases so dj-stripe already holds each customer (the common case: customers exist for months).
CUSTOMER_EVENTS = ("customer.created", "customer.subscription.created")


class _Door:
    """Hands requests to the Stripe-compatible server and records how long each one took."""

    def __init__(self, server: Any, label: str, log: list, lock: threading.Lock, delay: float):
        self._server = server
        self._label = label
        self._log = log
        self._lock = lock
        self._delay = delay

    def handle(self, method: str, path: str, query: str, body: str, headers: dict[str, str]):
        started = time.perf_counter()
        try:
            if self._delay:
                time.sleep(self._delay)
            return self._server.handle(method, path, query, body, headers)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._log.append((self._label, method, path, time.time(), elapsed))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stripe_fail(stripe: Any, mailgun: Any, options: dict[str, Any]) -> None:
    stripe.fail_next(**options)


def _stripe_rate_limit(stripe: Any, mailgun: Any, options: dict[str, Any]) -> None:
    """Stripe's rate limit on every door from now on (None: off)."""
    stripe.rate_limit_per_second = options.get("per_second")


def _stripe_heal(stripe: Any, mailgun: Any, _: Any) -> None:
    with stripe._faults_lock:
        stripe._faults.clear()


def _mailgun_fail(stripe: Any, mailgun: Any, options: dict[str, Any]) -> None:
    mailgun.fail_next(**options)


def _mailgun_heal(stripe: Any, mailgun: Any, _: Any) -> None:
    mailgun.reset_faults()


def _stripe_events(stripe: Any, mailgun: Any, invoice_ids: list[str]) -> list[dict]:
    """Every event of these invoices, in the order the server emitted them."""
    wanted = set(invoice_ids)
    with stripe.store.lock:
        found = [
            e
            for e in stripe.store.events
            if e["type"].startswith("invoice.") and e["data"]["object"].get("id") in wanted
        ]
        return json.loads(json.dumps(found))


def _meter_events(stripe: Any, mailgun: Any, _: Any) -> list[dict]:
    """Identifier, customer and value of every meter event the server accepted (one per
    identifier: the server refuses an identifier it already has)."""
    with stripe.store.lock:
        events = list(stripe.store.objects.get("billing.meter_event", {}).values())
    return [{"identifier": e["id"], "customer": e["customer"], "value": e["value"]} for e in events]


def _tracking_payload(stripe: Any, mailgun: Any, options: dict[str, Any]) -> dict:
    return mailgun.tracking_payload(**options)


# Fault injection and inspection for the fault suite (`bench/faults/`).
FAULT_COMMANDS = {
    "stripe_fail": _stripe_fail,
    "stripe_heal": _stripe_heal,
    "stripe_rate_limit": _stripe_rate_limit,
    "mailgun_fail": _mailgun_fail,
    "mailgun_heal": _mailgun_heal,
    "stripe_events": _stripe_events,
    "meter_events": _meter_events,
    "tracking_payload": _tracking_payload,
}


def _serve(conn: Any, config: dict[str, Any]) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops us over the pipe
    from tests.harness.mailgun_server import MailgunServer
    from tests.stripe_server import StripeServer
    from tests.stripe_server import app as stripe_app

    stripe_app._Handler.disable_nagle_algorithm = not config["keep_nagle"]
    stripe = StripeServer(port=0).start()
    stripe.webhooks.auto = False  # the bench posts the events itself
    calls: list[tuple[str, str, str, float, float]] = []
    calls_lock = threading.Lock()
    doors: dict[str, ThreadingHTTPServer] = {}
    for label in STRIPE_DOORS:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), stripe_app._Handler)
        httpd.daemon_threads = True
        httpd.app = _Door(stripe, label, calls, calls_lock, config["stripe_delay"])
        threading.Thread(target=httpd.serve_forever, name=f"stripe-{label}", daemon=True).start()
        doors[label] = httpd
    mailgun = MailgunServer(
        domain=config["mailgun_domain"],
        api_key=config["mailgun_api_key"],
        webhook_signing_key=config["mailgun_signing_key"],
        port=0,
    )
    mailgun.start()
    conn.send(
        {
            "stripe": {
                "setup": stripe.url,
                **{label: f"http://127.0.0.1:{d.server_address[1]}" for label, d in doors.items()},
            },
            "mailgun_api_url": mailgun.api_url,
        }
    )
    try:
        while True:
            try:
                command, argument = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send("stopped")
                return
            if command == "finalized_events":
                with stripe.store.lock:
                    events = [
                        e
                        for e in stripe.store.events
                        if e["type"] == "invoice.finalized"
                        and e["data"]["object"].get("billing_reason") == "subscription_cycle"
                    ]
                    conn.send(json.loads(json.dumps(events)))
            elif command == "customer_events":
                with stripe.store.lock:
                    events = [e for e in stripe.store.events if e["type"] in CUSTOMER_EVENTS]
                    conn.send(json.loads(json.dumps(events)))
            elif command in FAULT_COMMANDS:
                try:
                    answer = FAULT_COMMANDS[command](stripe, mailgun, argument)
                except Exception as exc:  # handed back to the caller, who raises it
                    answer = RuntimeError(f"{command}: {type(exc).__name__}: {exc}")
                conn.send(answer)
            elif command == "stripe_calls":
                with calls_lock:
                    taken = list(calls)
                    calls.clear()
                conn.send(taken)
            elif command == "messages":
                conn.send(
                    [
                        {
                            "invoice": m.user_variables.get("stripe_invoice_id"),
                            "id": m.id,
                            "delivery_id": m.user_variables.get("delivery_id"),
                            "at": m.timestamp,
                            "template": m.template,
                            "to": m.to,
                            "bcc": m.bcc,
                            "attachments": [(a.filename, len(a.content)) for a in m.attachments],
                        }
                        for m in mailgun.messages
                    ]
                )
            else:
                conn.send(ValueError(f"unknown command {command!r}"))
    finally:
        mailgun.stop()
        for httpd in doors.values():
            httpd.shutdown()
            httpd.server_close()
        stripe.stop()


class StandInServers:
    """Start with `start()`, ask with `call(command)`, stop with `stop()` (idempotent)."""

    def __init__(
        self,
        *,
        mailgun_domain: str,
        mailgun_api_key: str,
        mailgun_signing_key: str,
        keep_nagle: bool = False,
        stripe_delay: float = 0.0,
    ) -> None:
        self.config = {
            "mailgun_domain": mailgun_domain,
            "mailgun_api_key": mailgun_api_key,
            "mailgun_signing_key": mailgun_signing_key,
            "keep_nagle": keep_nagle,
            "stripe_delay": stripe_delay,
        }
        self.urls: dict[str, Any] = {}
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._process.pid

    def start(self, timeout: float = 60) -> StandInServers:
        # fork, before the bench starts any thread: spawn would also start multiprocessing's
        # resource tracker, a process that outlives the run's last step.
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.config), name="bench-delivery-servers", daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(timeout):
            raise RuntimeError("the stand-in servers did not start")
        self.urls = self._conn.recv()
        return self

    def call(self, command: str, argument: Any = None) -> Any:
        with self._lock:
            self._conn.send((command, argument))
            answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.is_alive():
                self._conn.send(("stop", None))
                if self._conn.poll(15):
                    self._conn.recv()
        except (OSError, EOFError):
            pass
        process.join(timeout=15)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        self._conn.close()
