"""Webhook delivery as Stripe does it: each event goes to every enabled endpoint that listens
for its type, signed with that endpoint's secret, retried with backoff until a 2xx answer.

For tests it can also deliver an event twice (`duplicate_next`) or deliver a batch in reverse
order (`reorder`), and it keeps a record of every attempt (`attempts`). `auto=True` (the
default) delivers from a background thread as events happen; `auto=False` leaves them queued
until `deliver_pending()` is called, for deterministic tests.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .signing import signature_header

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass
class Delivery:
    event_id: str
    endpoint_id: str
    attempt: int = 0
    due: float = field(default_factory=time.monotonic)


@dataclass
class Attempt:
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    duration_ms: float
    at: float


class WebhookDispatcher:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.auto = True
        self.retry_delays = [5.0, 30.0, 120.0, 600.0]
        self.timeout = 10.0
        self.duplicate_next = 0
        self.reorder = False
        self.attempts: list[Attempt] = []
        self._queue: list[Delivery] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def reset(self) -> None:
        self.stop()
        with self._lock:
            self._queue.clear()
            self.attempts.clear()
            self.duplicate_next = 0
            self.reorder = False
            self.auto = True
            self.retry_delays = [5.0, 30.0, 120.0, 600.0]

    def on_event(self, event: dict[str, Any]) -> None:
        store = self.server.store
        endpoints = [
            endpoint
            for endpoint in store.all("webhook_endpoint")
            if endpoint["status"] == "enabled"
            and ("*" in endpoint["enabled_events"] or event["type"] in endpoint["enabled_events"])
        ]
        if not endpoints:
            return
        with store.lock:
            event["pending_webhooks"] = len(endpoints)
        with self._lock:
            for endpoint in endpoints:
                self._queue.append(Delivery(event["id"], endpoint["id"]))
            self._lock.notify_all()
        if self.auto:
            self._ensure_thread()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def deliver_pending(self, *, include_future: bool = True) -> list[Attempt]:
        """Deliver every queued delivery now (retries included when `include_future`)."""
        done: list[Attempt] = []
        while True:
            batch = self._take(include_future=include_future)
            if not batch:
                return done
            for delivery in batch:
                done.extend(self._deliver(delivery))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue and not getattr(self, "_busy", False):
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            thread = self._thread
            self._lock.notify_all()
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread = None
            self._stopping = False

    def _take(self, *, include_future: bool) -> list[Delivery]:
        with self._lock:
            now = time.monotonic()
            batch = [d for d in self._queue if include_future or d.due <= now]
            for delivery in batch:
                self._queue.remove(delivery)
        if self.reorder:
            batch.reverse()
        return batch

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping or not self.auto:
                    return
                now = time.monotonic()
                due = [d for d in self._queue if d.due <= now]
                if not due:
                    wait = min((d.due for d in self._queue), default=now + 0.5) - now
                    self._lock.wait(timeout=max(0.01, min(wait, 0.5)))
                    continue
                self._busy = True
            try:
                for delivery in self._take(include_future=False):
                    self._deliver(delivery)
            finally:
                with self._lock:
                    self._busy = False

    def _deliver(self, delivery: Delivery) -> list[Attempt]:
        store = self.server.store
        event = store.objects.get("event", {}).get(delivery.event_id)
        endpoint = store.objects.get("webhook_endpoint", {}).get(delivery.endpoint_id)
        if event is None or endpoint is None:
            return []
        copies = 1
        with self._lock:
            if self.duplicate_next > 0:
                self.duplicate_next -= 1
                copies = 2
        attempts = [self._post(event, endpoint, delivery) for _ in range(copies)]
        if any(a.status is not None and 200 <= a.status < 300 for a in attempts):
            with store.lock:
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        elif delivery.attempt < len(self.retry_delays):
            delay = self.retry_delays[delivery.attempt]
            with self._lock:
                self._queue.append(
                    Delivery(
                        delivery.event_id,
                        delivery.endpoint_id,
                        attempt=delivery.attempt + 1,
                        due=time.monotonic() + delay,
                    )
                )
                self._lock.notify_all()
        return attempts

    def _post(self, event: dict[str, Any], endpoint: dict[str, Any], delivery: Delivery) -> Attempt:
        rendered = dict(event, api_version=endpoint.get("api_version") or event.get("api_version"))
        payload = json.dumps(rendered)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(endpoint["secret"], payload),
        }
        request = urllib.request.Request(
            endpoint["url"], data=payload.encode(), headers=headers, method="POST"
        )
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = exc.read()[:500].decode(errors="replace")
        except (OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempt = Attempt(
            event_id=event["id"],
            event_type=event["type"],
            endpoint_id=endpoint["id"],
            url=endpoint["url"],
            attempt=delivery.attempt + 1,
            status=status,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            at=time.time(),
        )
        with self._lock:
            self.attempts.append(attempt)
        return attempt
