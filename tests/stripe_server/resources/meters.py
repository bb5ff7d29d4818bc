"""Billing meters, meter events and meter event summaries.

Stripe validates most meter event problems asynchronously (reported later through
`v1.billing.meter.error_report_triggered` with codes such as `no_meter`,
`meter_event_customer_not_found` or `timestamp_too_far_in_past`). This server rejects them
synchronously with those same codes, so a test sees a bad event at the call that sent it.
A repeated `identifier` is rejected as Stripe does: 400 "An event already exists with
identifier ...". Time is the customer's time: a customer on a test clock lives at the clock's
frozen time, so the 35-day / 5-minute timestamp window and `received_at` follow the clock.
"""

import copy
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..app import Request, list_page, route
from ..clocks import customer_time
from ..store import Store, StripeError, missing, shape
from ..thin_events import meter_error_record
from .catalog import missing_param, one_of, required
from .common import to_int

METER = "billing.meter"
EVENT = "billing.meter_event"
PAST_WINDOW = 35 * 86400
FUTURE_WINDOW = 5 * 60
WINDOWS = {"hour": 3600, "day": 86400}
_WHOLE = re.compile(r"^-?\d+$")

EXPANDERS: dict[tuple[str | None, str], Any] = {}
_INFLIGHT_LOCK = threading.Lock()


@contextmanager
def _in_flight(request: Request, customer_id: str, event_name: str) -> Iterator[None]:
    """Count concurrent meter event calls per customer and event name: the highest count seen
    is kept in the store's `meter_event_concurrency` (Stripe allows one at a time). The call
    lasts at least the server's `meter_event_delay`."""
    store, lane = request.store, (customer_id, event_name)
    inflight, peak = store.meter_event_inflight, store.meter_event_concurrency
    with _INFLIGHT_LOCK:
        inflight[lane] = inflight.get(lane, 0) + 1
        peak[lane] = max(peak.get(lane, 0), inflight[lane])
    try:
        if request.server.meter_event_delay:
            time.sleep(request.server.meter_event_delay)
        yield
    finally:
        with _INFLIGHT_LOCK:
            inflight[lane] -= 1


def _meter(store: Store, meter_id: str, param: str = "id") -> dict[str, Any]:
    with store.lock:
        meter = store.objects.get(METER, {}).get(meter_id)
    if meter is None:
        raise missing("billing meter", meter_id, param)
    return meter


def _event_name_taken(store: Store, event_name: str, meter_id: str | None) -> None:
    for other in store.all(METER):
        if (
            other["event_name"] == event_name
            and other["status"] == "active"
            and other["id"] != meter_id
        ):
            raise StripeError(
                f"An active meter (`{other['id']}`) already uses the event_name `{event_name}`.",
                param="event_name",
                code="resource_already_exists",
            )


def _payload_key(given: Any, param: str) -> str:
    if not isinstance(given, dict):
        raise StripeError(f"Invalid {param}: must be a hash", param=param)
    return str(required(given, "event_payload_key", f"{param}[event_payload_key]"))


@route("POST", r"/v1/billing/meters")
def meter_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    display_name = required(params, "display_name")
    event_name = required(params, "event_name")
    aggregation = required(params, "default_aggregation")
    if not isinstance(aggregation, dict):
        raise StripeError(
            "Invalid default_aggregation: must be a hash", param="default_aggregation"
        )
    formula = one_of(
        required(aggregation, "formula", "default_aggregation[formula]"),
        ("count", "last", "sum"),
        "default_aggregation[formula]",
    )
    mapping = {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    if "customer_mapping" in params:
        given = params["customer_mapping"]
        mapping["event_payload_key"] = _payload_key(given, "customer_mapping")
        mapping["type"] = one_of(
            required(given, "type", "customer_mapping[type]"),
            ("by_id",),
            "customer_mapping[type]",
        )
    value_key = "value"
    if "value_settings" in params:
        value_key = _payload_key(params["value_settings"], "value_settings")
    window = params.get("event_time_window") or None
    if window is not None:
        one_of(window, ("day", "hour"), "event_time_window")
    with store.lock:
        _event_name_taken(store, event_name, None)
        now = store.now()
        meter = shape(METER)
        meter.update(
            id=store.new_id("mtr_test"),
            created=now,
            updated=now,
            customer_mapping=mapping,
            default_aggregation={"formula": formula},
            display_name=display_name,
            event_name=event_name,
            event_time_window=window,
            livemode=False,
            status="active",
            status_transitions={"deactivated_at": None},
            value_settings={"event_payload_key": value_key},
        )
        store.put(METER, meter)
    return copy.deepcopy(meter)


@route("GET", r"/v1/billing/meters/(?P<id>[^/]+)")
def meter_retrieve(request: Request) -> dict[str, Any]:
    return copy.deepcopy(_meter(request.store, request.match["id"]))


@route("POST", r"/v1/billing/meters/(?P<id>[^/]+)")
def meter_update(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    meter = _meter(store, request.match["id"])
    if "display_name" in params:
        with store.lock:
            meter["display_name"] = required(params, "display_name")
            meter["updated"] = store.now()
    return copy.deepcopy(meter)


@route("POST", r"/v1/billing/meters/(?P<id>[^/]+)/deactivate")
def meter_deactivate(request: Request) -> dict[str, Any]:
    store = request.store
    meter = _meter(store, request.match["id"])
    with store.lock:
        if meter["status"] != "active":
            raise StripeError(f"The meter `{meter['id']}` is already inactive.")
        now = store.now()
        meter.update(status="inactive", updated=now, status_transitions={"deactivated_at": now})
    return copy.deepcopy(meter)


@route("POST", r"/v1/billing/meters/(?P<id>[^/]+)/reactivate")
def meter_reactivate(request: Request) -> dict[str, Any]:
    store = request.store
    meter = _meter(store, request.match["id"])
    with store.lock:
        if meter["status"] == "active":
            raise StripeError(f"The meter `{meter['id']}` is already active.")
        _event_name_taken(store, meter["event_name"], meter["id"])
        meter.update(
            status="active", updated=store.now(), status_transitions={"deactivated_at": None}
        )
    return copy.deepcopy(meter)


@route("GET", r"/v1/billing/meters")
def meter_list(request: Request) -> dict[str, Any]:
    items = request.store.all(METER)
    if status := request.params.get("status"):
        one_of(status, ("active", "inactive"), "status")
        items = [m for m in items if m["status"] == status]
    return copy.deepcopy(list_page(request, items, "/v1/billing/meters"))


def _event_meter(
    store: Store, event_name: str
) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """The active meter for an event name, or (the inactive one, the error Stripe reports)."""
    meters = [m for m in store.all(METER) if m["event_name"] == event_name]
    active = [m for m in meters if m["status"] == "active"]
    if active:
        return active[0], None
    if meters:
        return meters[0], (
            "archived_meter",
            f"The meter for event_name `{event_name}` is inactive; events for it are not used.",
        )
    return None, ("no_meter", f"No active meter was found for event_name `{event_name}`.")


def _payload_problem(
    store: Store, meter: dict[str, Any], payload: dict[str, Any]
) -> tuple[str | None, int | None, tuple[str, str] | None]:
    """(customer id, value, error code and message) for a payload against its meter."""
    customer_key = meter["customer_mapping"]["event_payload_key"]
    customer_id = payload.get(customer_key)
    if not customer_id:
        return (
            None,
            None,
            (
                "meter_event_no_customer_defined",
                f"Customer mapping key {customer_key} not found in payload.",
            ),
        )
    with store.lock:
        known = customer_id in store.objects.get("customer", {})
    if not known:
        return (
            None,
            None,
            (
                "meter_event_customer_not_found",
                f"No customer found for the provided key {customer_key}: {customer_id}.",
            ),
        )
    formula = meter["default_aggregation"]["formula"]
    value_key = meter["value_settings"]["event_payload_key"]
    if formula == "count" and value_key not in payload:
        return customer_id, None, None
    raw = payload.get(value_key)
    if raw is None:
        return (
            customer_id,
            None,
            (
                "meter_event_invalid_value",
                f"Value key {value_key} not found in payload.",
            ),
        )
    if not _WHOLE.match(str(raw)):
        return (
            customer_id,
            None,
            (
                "meter_event_invalid_value",
                f"Invalid payload[{value_key}]: meter event values must be whole numbers, got "
                f"'{raw}'.",
            ),
        )
    return customer_id, int(raw), None


@route("POST", r"/v1/billing/meter_events")
def meter_event_create(request: Request) -> dict[str, Any]:
    """Stripe accepts a meter event first and validates it later: an unknown customer, a
    missing or bad value, or no active meter for the event name is answered 200 and reported
    afterwards as a v2 event (`thin_events`). Only the request itself (required parameters,
    identifier, the timestamp window, a reused identifier) is refused at once."""
    params = request.params
    event_name = required(params, "event_name")
    payload = required(params, "payload")
    if not isinstance(payload, dict):
        raise StripeError("Invalid payload: must be a hash", param="payload")
    # Counted by the default customer key: concurrency is a property of the call, not of the
    # meter it turns out to reach.
    with _in_flight(request, str(payload.get("stripe_customer_id", "")), event_name):
        return _meter_event_create(request, event_name, payload)


def _meter_event_create(request: Request, event_name: str, payload: dict) -> dict[str, Any]:
    params, store = request.params, request.store
    identifier = params.get("identifier") or str(uuid.uuid4())
    if len(identifier) > 100:
        raise StripeError("Invalid identifier: must be at most 100 characters", param="identifier")
    meter, problem = _event_meter(store, event_name)
    customer_id: str | None = None
    value: int | None = None
    if meter is not None and problem is None:
        customer_id, value, problem = _payload_problem(store, meter, payload)
    now = customer_time(store, customer_id)
    timestamp = to_int(params["timestamp"], "timestamp") if "timestamp" in params else now
    if timestamp < now - PAST_WINDOW:
        raise StripeError(
            f"Invalid timestamp {timestamp}: it must be within the past 35 calendar days of "
            f"the customer's current time ({now}).",
            param="timestamp",
            code="timestamp_too_far_in_past",
        )
    if timestamp > now + FUTURE_WINDOW:
        raise StripeError(
            f"Invalid timestamp {timestamp}: it must be no more than 5 minutes after the "
            f"customer's current time ({now}).",
            param="timestamp",
            code="timestamp_in_future",
        )
    event = shape(EVENT)
    event.update(
        created=now,
        event_name=event_name,
        identifier=identifier,
        livemode=False,
        payload={str(key): str(val) for key, val in payload.items()},
        timestamp=timestamp,
    )
    with store.lock:
        if identifier in store.objects.get(EVENT, {}):
            raise StripeError(
                f"An event already exists with identifier {identifier}.", param="identifier"
            )
        store.put(
            EVENT,
            {
                "id": identifier,
                "event": event,
                "meter": meter["id"] if meter else None,
                "customer": customer_id,
                "value": value,
                "timestamp": timestamp,
                "received_at": now,
                "invalid": problem is not None,
            },
        )
    if problem is not None:
        meter_error_record(
            request.server,
            meter_id=meter["id"] if meter else None,
            code=problem[0],
            message=problem[1],
            identifier=identifier,
        )
    return copy.deepcopy(event)


def _records(
    store: Store,
    *,
    customer_id: str,
    meter_id: str,
    start: int,
    end: int,
    received_before: int | None = None,
) -> list[dict[str, Any]]:
    return [
        record
        for record in store.all(EVENT)
        if record["meter"] == meter_id
        and record["customer"] == customer_id
        and not record.get("invalid")
        and start <= record["timestamp"] < end
        and (received_before is None or record["received_at"] <= received_before)
    ]


def _aggregate(formula: str, records: list[dict[str, Any]]) -> int:
    if formula == "count":
        return len(records)
    if formula == "last":
        if not records:
            return 0
        latest = max(records, key=lambda r: (r["timestamp"], r["received_at"]))
        return latest["value"] or 0
    return sum(record["value"] or 0 for record in records)


def usage_total(
    store: Store,
    *,
    customer_id: str,
    meter_id: str,
    start: int,
    end: int,
    received_before: int | None = None,
) -> int:
    """This customer's usage on this meter for events with `start <= timestamp < end`,
    aggregated by the meter's formula (`sum` adds the values), optionally only counting events
    received by `received_before`. The sum can be negative; Stripe bills a negative period
    as quantity 0."""
    meter = _meter(store, meter_id)
    records = _records(
        store,
        customer_id=customer_id,
        meter_id=meter_id,
        start=start,
        end=end,
        received_before=received_before,
    )
    return _aggregate(meter["default_aggregation"]["formula"], records)


def _aligned(value: int, step: int, param: str, unit: str) -> None:
    if value % step:
        raise StripeError(f"Invalid {param}: must be aligned with {unit} boundaries.", param=param)


@route("GET", r"/v1/billing/meters/(?P<id>[^/]+)/event_summaries")
def meter_event_summaries(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    meter = _meter(store, request.match["id"])
    customer_id = required(params, "customer")
    with store.lock:
        if customer_id not in store.objects.get("customer", {}):
            raise missing_param("customer", customer_id, "customer")
    start = to_int(required(params, "start_time"), "start_time")
    end = to_int(required(params, "end_time"), "end_time")
    grouping = params.get("value_grouping_window") or None
    step, unit = 60, "minute"
    if grouping is not None:
        one_of(grouping, ("day", "hour"), "value_grouping_window")
        step, unit = WINDOWS[grouping], grouping
    _aligned(start, step, "start_time", unit)
    _aligned(end, step, "end_time", unit)
    if end <= start:
        raise StripeError("end_time must be after start_time.", param="end_time")
    records = _records(store, customer_id=customer_id, meter_id=meter["id"], start=start, end=end)
    windows = [(start, end)]
    if grouping is not None:
        starts = sorted({start + (r["timestamp"] - start) // step * step for r in records})
        windows = [(ws, ws + step) for ws in reversed(starts)]
    formula = meter["default_aggregation"]["formula"]
    summaries = []
    for window_start, window_end in windows:
        inside = [r for r in records if window_start <= r["timestamp"] < window_end]
        summary = shape("billing.meter_event_summary")
        summary.update(
            id=f"mtrusg_test_{window_start:011d}{window_end:011d}",
            aggregated_value=_aggregate(formula, inside),
            start_time=window_start,
            end_time=window_end,
            livemode=False,
            meter=meter["id"],
        )
        summaries.append(summary)
    return list_page(request, summaries, f"/v1/billing/meters/{meter['id']}/event_summaries")
