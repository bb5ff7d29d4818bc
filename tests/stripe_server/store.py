"""The server's state: objects by type, events, idempotency records. One lock guards it all."""

import copy
import json
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any

_FIXTURES = json.loads(Path(__file__).with_name("fixtures3.json").read_text())["resources"]
_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """Answered as Stripe's error JSON: `{"error": {"type", "message", "code", "param"}}`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        doc_url: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param
        if doc_url:
            self.body["error"]["doc_url"] = doc_url
        self.headers = headers or {}


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


def shape(resource: str) -> dict[str, Any]:
    """A fresh copy of Stripe's fixture object for a resource type (the current API shape)."""
    return copy.deepcopy(_FIXTURES[resource])


class Store:
    def __init__(self, *, account_id: str = "acct_1BillingHarness00") -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.idempotency: dict[tuple[str, str], tuple[str, int, bytes]] = {}
        self.account_id = account_id
        self.clock_offset = 0
        self.requests: list[dict[str, Any]] = []
        self.sequence: dict[str, int] = {}
        self.listeners: list[Any] = []
        # The server's own bookkeeping about an object that Stripe does not render on it
        # (an invoice's `days_until_due` request parameter), by object id.
        self.private: dict[str, dict[str, Any]] = {}
        self.api_version: str | None = None
        # How an object is rendered in answers and event snapshots (set by the server).
        self.renderer: Any = lambda obj: obj
        # Called with every event before it is recorded (the server checks its shape).
        self.checker: Any = lambda event: None
        # (customer, meter event name) -> calls in flight now / the most seen at once.
        self.meter_event_inflight: dict[tuple[str, str], int] = {}
        self.meter_event_concurrency: dict[tuple[str, str], int] = {}
        # Meter events accepted but not usable, until reported as a v2 event (thin_events).
        self.meter_errors: list[dict[str, Any]] = []
        self.thin_attempts: list[Any] = []

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    @staticmethod
    def new_id(prefix: str) -> str:
        return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))

    def private_of(self, object_id: str) -> dict[str, Any]:
        with self.lock:
            return self.private.setdefault(object_id, {})

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.objects.setdefault(kind, {})[obj["id"]] = obj
            self.sequence.setdefault(obj["id"], len(self.sequence))
        return obj

    def get(self, kind: str, object_id: str, *, label: str | None = None) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.get(kind, {}).get(object_id)
        if obj is None:
            raise missing(label or kind, object_id)
        return obj

    def find(self, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            for objects in self.objects.values():
                if object_id in objects:
                    return objects[object_id]
        return None

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.objects.get(kind, {}).values())

    def delete(self, kind: str, object_id: str) -> dict[str, Any]:
        with self.lock:
            obj = self.get(kind, object_id)
            del self.objects[kind][object_id]
        return obj

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        previous_attributes: dict[str, Any] | None = None,
        api_version: str | None = None,
    ) -> dict[str, Any]:
        """Record the event Stripe would emit for a state change (a snapshot of the object)."""
        event = shape("event")
        event.update(
            id=self.new_id("evt"),
            created=self.now(),
            type=event_type,
            api_version=api_version or self.api_version,
            livemode=False,
            pending_webhooks=0,
            request={"id": self.new_id("req"), "idempotency_key": None},
            data={"object": copy.deepcopy(self.renderer(obj))},
        )
        if previous_attributes:
            event["data"]["previous_attributes"] = previous_attributes
        self.checker(event)
        with self.lock:
            self.events.append(event)
            self.objects.setdefault("event", {})[event["id"]] = event
            self.sequence[event["id"]] = len(self.sequence)
        for listener in self.listeners:
            listener(event)
        return event
