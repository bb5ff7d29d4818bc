"""Thin events (API v2) and their delivery to event destinations.

Stripe reports some problems only after the fact, as v2 events: a meter event it accepted
(200) but could not use becomes part of a `v1.billing.meter.error_report_triggered` event
(`v1.billing.meter.no_meter_found` when no meter has its event name). An event destination
receives a *thin* notification, signed like a webhook (`Stripe-Signature: t=…,v1=…` with the
destination's signing secret), holding only the event id, type and related object; the full
event, with its `data`, is fetched from `GET /v2/core/events/{id}`.
https://docs.stripe.com/event-destinations#thin-payload
https://docs.stripe.com/api/v2/core/events/object

Errors are gathered and reported together `server.meter_error_report_delay` seconds after the
first one (None: only when `server.flush_meter_errors()` is called).
"""

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .signing import signature_header
from .store import Store

KIND = "v2.core.event"
DESTINATION = "v2.core.event_destination"
ERROR_REPORT = "v1.billing.meter.error_report_triggered"
NO_METER = "v1.billing.meter.no_meter_found"
SAMPLES_PER_TYPE = 3


def iso(timestamp: float) -> str:
    """v2 timestamps: RFC 3339 strings with milliseconds."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class ThinAttempt:
    event_id: str
    event_type: str
    destination_id: str
    url: str
    status: int | None
    error: str | None


def meter_error_record(
    server: Any, *, meter_id: str | None, code: str, message: str, identifier: str
) -> None:
    """Remember a meter event that was accepted but cannot be used; report it later."""
    store: Store = server.store
    with store.lock:
        store.meter_errors.append(
            {
                "meter": meter_id,
                "code": code,
                "message": message,
                "identifier": identifier,
                "at": time.time(),
            }
        )
    delay = server.meter_error_report_delay
    if delay is None:
        return
    with server.meter_error_timer_lock:
        if server.meter_error_timer is None:
            timer = threading.Timer(delay, server.flush_meter_errors)
            timer.daemon = True
            server.meter_error_timer = timer
            timer.start()


def meter_errors_flush(server: Any) -> list[dict[str, Any]]:
    """Turn the gathered errors into one v2 event per meter and deliver them."""
    store: Store = server.store
    with server.meter_error_timer_lock:
        server.meter_error_timer = None
    with store.lock:
        errors, store.meter_errors = store.meter_errors, []
    by_meter: dict[str | None, list[dict[str, Any]]] = {}
    for error in errors:
        by_meter.setdefault(error["meter"], []).append(error)
    events = []
    for meter_id, group in by_meter.items():
        event = _report(store, meter_id, group)
        store.put(KIND, event)
        events.append(event)
        deliver(server, event)
    return events


def _report(store: Store, meter_id: str | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    by_code: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        by_code.setdefault(error["code"], []).append(error)
    count = len(errors)
    event: dict[str, Any] = {
        "id": store.new_id("evt_test"),
        "object": KIND,
        "context": None,
        "created": iso(time.time()),
        "data": {
            "developer_message_summary": (
                "There is 1 invalid event" if count == 1 else f"There are {count} invalid events"
            ),
            "reason": {
                "error_count": count,
                "error_types": [
                    {
                        "code": code,
                        "error_count": len(items),
                        "sample_errors": [
                            {
                                "error_message": item["message"],
                                "request": {"identifier": item["identifier"]},
                            }
                            for item in items[:SAMPLES_PER_TYPE]
                        ],
                    }
                    for code, items in by_code.items()
                ],
            },
            "validation_end": iso(max(e["at"] for e in errors) + 1),
            "validation_start": iso(min(e["at"] for e in errors)),
        },
        "livemode": False,
        "reason": None,
        "type": ERROR_REPORT if meter_id else NO_METER,
    }
    if meter_id:
        event["related_object"] = {
            "id": meter_id,
            "type": "billing.meter",
            "url": f"/v1/billing/meters/{meter_id}",
        }
    return event


def thin(event: dict[str, Any]) -> dict[str, Any]:
    """The notification an event destination receives: the event without its `data`."""
    return {key: value for key, value in event.items() if key not in ("data", "changes")}


def deliver(server: Any, event: dict[str, Any]) -> list[ThinAttempt]:
    attempts = []
    for destination in server.store.all(DESTINATION):
        if destination["status"] != "enabled" or event["type"] not in destination["enabled_events"]:
            continue
        if destination["event_payload"] != "thin" or destination["type"] != "webhook_endpoint":
            continue
        attempts.append(_post(server, event, destination))
    return attempts


def _post(server: Any, event: dict[str, Any], destination: dict[str, Any]) -> ThinAttempt:
    payload = json.dumps(thin(event))
    secret = server.store.private_of(destination["id"])["signing_secret"]
    url = destination["webhook_endpoint"]["url"]
    request = urllib.request.Request(
        url,
        data=payload.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature_header(secret, payload),
        },
    )
    status: int | None = None
    error: str | None = None
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = exc.read()[:500].decode(errors="replace")
    except (OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    attempt = ThinAttempt(event["id"], event["type"], destination["id"], url, status, error)
    with server.store.lock:
        server.store.thin_attempts.append(attempt)
    return attempt
