"""Billing meters, meter events and summaries on the Stripe-compatible server."""

import time

import pytest
import stripe

from tests.stripe_server.resources.meters import usage_total
from tests.stripe_server.store import shape

DAY = 86400


@pytest.fixture
def server(stripe):
    return stripe


@pytest.fixture
def meter(server):
    return stripe.billing.Meter.create(
        display_name="API requests",
        event_name="api_requests",
        default_aggregation={"formula": "sum"},
    )


@pytest.fixture
def customer(server):
    return stripe.Customer.create(email="ap@northwind.example")


def record(customer, value, **params):
    payload = {"stripe_customer_id": customer.id, "value": str(value)}
    return stripe.billing.MeterEvent.create(event_name="api_requests", payload=payload, **params)


def invalid(call, *args, **params):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call(*args, **params)
    return caught.value


def midnight(days_ago):
    now = int(time.time())
    return now - now % DAY - days_ago * DAY


def test_meter_defaults_and_lifecycle(server, meter):
    assert meter.id.startswith("mtr_")
    assert meter.status == "active"
    assert meter.customer_mapping.to_dict() == {
        "event_payload_key": "stripe_customer_id",
        "type": "by_id",
    }
    assert meter.value_settings.event_payload_key == "value"
    assert meter.default_aggregation.formula == "sum"

    renamed = stripe.billing.Meter.modify(meter.id, display_name="Requests")
    assert renamed.display_name == "Requests"
    error = invalid(stripe.billing.Meter.modify, meter.id, event_name="other")
    assert error.param == "event_name"

    inactive = stripe.billing.Meter.deactivate(meter.id)
    assert inactive.status == "inactive"
    assert inactive.status_transitions.deactivated_at is not None
    assert stripe.billing.Meter.list(status="active").data == []
    assert [m.id for m in stripe.billing.Meter.list(status="inactive").data] == [meter.id]
    active = stripe.billing.Meter.reactivate(meter.id)
    assert (active.status, active.status_transitions.deactivated_at) == ("active", None)


def test_meter_requires_its_fields(server):
    error = invalid(stripe.billing.Meter.create, display_name="x", event_name="x")
    assert (error.http_status, error.param) == (400, "default_aggregation")
    error = invalid(
        stripe.billing.Meter.create,
        display_name="x",
        event_name="x",
        default_aggregation={"formula": "max"},
    )
    assert error.param == "default_aggregation[formula]"
    error = invalid(stripe.billing.Meter.retrieve, "mtr_missing")
    assert (error.http_status, error.code) == (404, "resource_missing")


def test_event_name_is_unique_among_active_meters(server, meter):
    error = invalid(
        stripe.billing.Meter.create,
        display_name="Again",
        event_name="api_requests",
        default_aggregation={"formula": "sum"},
    )
    assert error.param == "event_name"
    stripe.billing.Meter.deactivate(meter.id)
    successor = stripe.billing.Meter.create(
        display_name="Successor", event_name="api_requests", default_aggregation={"formula": "sum"}
    )
    assert successor.status == "active"
    error = invalid(stripe.billing.Meter.reactivate, meter.id)
    assert error.param == "event_name"


def test_meter_event_is_returned_as_stripe_shows_it(server, meter, customer):
    before = int(time.time())
    event = record(customer, 25, identifier="req-1")
    assert event.object == "billing.meter_event"
    assert event.identifier == "req-1"
    assert event.payload.to_dict() == {"stripe_customer_id": customer.id, "value": "25"}
    assert before <= event.timestamp <= int(time.time())
    generated = record(customer, 1)
    assert generated.identifier and generated.identifier != "req-1"


def test_repeated_identifier_is_rejected(server, meter, customer):
    record(customer, 5, identifier="invoice-42-line-1")
    error = invalid(record, customer, 5, identifier="invoice-42-line-1")
    assert error.http_status == 400
    assert error.param == "identifier"
    assert error.user_message == "An event already exists with identifier invoice-42-line-1."
    now = int(time.time())
    assert (
        usage_total(server.store, customer_id=customer.id, meter_id=meter.id, start=0, end=now + 60)
        == 5
    )


def reported_codes(server) -> list[tuple[str, str | None, str]]:
    """(event type, meter id, error code) of every error report made so far."""
    return [
        (
            event["type"],
            (event.get("related_object") or {}).get("id"),
            error_type["code"],
        )
        for event in server.flush_meter_errors()
        for error_type in event["data"]["reason"]["error_types"]
    ]


def test_unusable_meter_events_are_accepted_then_reported_by_code(server, meter, customer):
    server.meter_error_report_delay = None
    accepted = stripe.billing.MeterEvent.create(
        event_name="unknown_event", payload={"stripe_customer_id": customer.id, "value": "1"}
    )
    assert accepted.event_name == "unknown_event"
    assert reported_codes(server) == [("v1.billing.meter.no_meter_found", None, "no_meter")]

    stripe.billing.MeterEvent.create(event_name="api_requests", payload={"value": "1"})
    stripe.billing.MeterEvent.create(
        event_name="api_requests", payload={"stripe_customer_id": "cus_missing", "value": "1"}
    )
    for bad in ("1.5", "ten", ""):
        record(customer, bad)
    report = "v1.billing.meter.error_report_triggered"
    assert sorted(reported_codes(server)) == [
        (report, meter.id, "meter_event_customer_not_found"),
        (report, meter.id, "meter_event_invalid_value"),
        (report, meter.id, "meter_event_no_customer_defined"),
    ]
    stripe.billing.Meter.deactivate(meter.id)
    record(customer, 1)
    assert reported_codes(server) == [(report, meter.id, "archived_meter")]
    now = int(time.time())
    assert (
        usage_total(server.store, customer_id=customer.id, meter_id=meter.id, start=0, end=now + 60)
        == 0
    )


def test_custom_payload_keys_are_followed(server, customer):
    server.meter_error_report_delay = None
    meter = stripe.billing.Meter.create(
        display_name="Tokens",
        event_name="tokens",
        default_aggregation={"formula": "sum"},
        customer_mapping={"event_payload_key": "account", "type": "by_id"},
        value_settings={"event_payload_key": "tokens"},
    )
    stripe.billing.MeterEvent.create(
        event_name="tokens", payload={"account": customer.id, "tokens": "300"}
    )
    stripe.billing.MeterEvent.create(
        event_name="tokens", payload={"stripe_customer_id": customer.id, "tokens": "1"}
    )
    [report] = server.flush_meter_errors()
    [error_type] = report["data"]["reason"]["error_types"]
    assert error_type["code"] == "meter_event_no_customer_defined"
    assert error_type["sample_errors"][0]["error_message"] == (
        "Customer mapping key account not found in payload."
    )
    now = int(time.time())
    assert (
        usage_total(server.store, customer_id=customer.id, meter_id=meter.id, start=0, end=now + 60)
        == 300
    )


def test_timestamp_must_be_within_35_days_past_and_5_minutes_ahead(server, meter, customer):
    now = int(time.time())
    assert record(customer, 1, timestamp=now - 35 * DAY + 120).timestamp == now - 35 * DAY + 120
    assert record(customer, 1, timestamp=now + 4 * 60).timestamp == now + 240
    past = invalid(record, customer, 1, timestamp=now - 35 * DAY - 120)
    assert (past.param, past.code) == ("timestamp", "timestamp_too_far_in_past")
    assert "35 calendar days" in past.user_message
    future = invalid(record, customer, 1, timestamp=now + 6 * 60)
    assert (future.param, future.code) == ("timestamp", "timestamp_in_future")
    assert "5 minutes" in future.user_message


def test_a_test_clock_customers_time_governs_the_timestamp_window(server, meter):
    frozen = midnight(60) + 12 * 3600
    clock = {**shape("test_helpers.test_clock"), "id": "clock_meters", "frozen_time": frozen}
    server.store.put("test_helpers.test_clock", clock)
    customer = stripe.Customer.create(email="clock@northwind.example", test_clock="clock_meters")

    defaulted = record(customer, 3)
    assert defaulted.timestamp == frozen
    assert defaulted.created == frozen
    assert record(customer, 4, timestamp=frozen - 10 * DAY).timestamp == frozen - 10 * DAY
    ahead = invalid(record, customer, 1, timestamp=frozen + 3600)
    assert ahead.code == "timestamp_in_future"
    real_now = invalid(record, customer, 1, timestamp=int(time.time()))
    assert real_now.code == "timestamp_in_future"
    too_old = invalid(record, customer, 1, timestamp=frozen - 36 * DAY)
    assert too_old.code == "timestamp_too_far_in_past"

    total = usage_total(
        server.store,
        customer_id=customer.id,
        meter_id=meter.id,
        start=frozen - 30 * DAY,
        end=frozen + 1,
    )
    assert total == 7
    assert (
        usage_total(
            server.store,
            customer_id=customer.id,
            meter_id=meter.id,
            start=frozen - 30 * DAY,
            end=frozen + 1,
            received_before=frozen - 1,
        )
        == 0
    )
    clock["frozen_time"] = frozen + 2 * DAY
    record(customer, 10, timestamp=frozen - DAY)
    assert (
        usage_total(
            server.store,
            customer_id=customer.id,
            meter_id=meter.id,
            start=frozen - 30 * DAY,
            end=frozen + 1,
            received_before=frozen,
        )
        == 7
    )


def test_summaries_sum_values_per_customer_in_the_window(server, meter, customer):
    other = stripe.Customer.create(email="other@example.com")
    start = midnight(3)
    record(customer, 10, timestamp=start + 60)
    record(customer, 15, timestamp=start + DAY + 3600)
    record(customer, 7, timestamp=start + 2 * DAY + 5)
    record(customer, 1000, timestamp=start - 1)
    record(other, 500, timestamp=start + 60)

    (whole,) = stripe.billing.Meter.list_event_summaries(
        meter.id, customer=customer.id, start_time=start, end_time=start + 3 * DAY
    ).data
    assert whole.object == "billing.meter_event_summary"
    assert (whole.aggregated_value, whole.start_time, whole.end_time, whole.meter) == (
        32,
        start,
        start + 3 * DAY,
        meter.id,
    )
    daily = stripe.billing.Meter.list_event_summaries(
        meter.id,
        customer=customer.id,
        start_time=start,
        end_time=start + 3 * DAY,
        value_grouping_window="day",
    )
    assert [(s.start_time, s.aggregated_value) for s in daily.data] == [
        (start + 2 * DAY, 7),
        (start + DAY, 15),
        (start, 10),
    ]
    paged = stripe.billing.Meter.list_event_summaries(
        meter.id,
        customer=customer.id,
        start_time=start,
        end_time=start + 3 * DAY,
        value_grouping_window="hour",
        limit=2,
    )
    assert paged.has_more is True
    assert [s.aggregated_value for s in paged.auto_paging_iter()] == [7, 15, 10]
    empty = stripe.billing.Meter.list_event_summaries(
        meter.id, customer=customer.id, start_time=start - DAY, end_time=start - 60
    )
    assert [s.aggregated_value for s in empty.data] == [0]


def test_summary_times_must_align(server, meter, customer):
    start = midnight(2)
    error = invalid(
        stripe.billing.Meter.list_event_summaries,
        meter.id,
        customer=customer.id,
        start_time=start + 30,
        end_time=start + DAY,
    )
    assert error.param == "start_time"
    error = invalid(
        stripe.billing.Meter.list_event_summaries,
        meter.id,
        customer=customer.id,
        start_time=start + 60,
        end_time=start + DAY,
        value_grouping_window="hour",
    )
    assert error.param == "start_time"
    error = invalid(
        stripe.billing.Meter.list_event_summaries,
        meter.id,
        customer=customer.id,
        start_time=start,
        end_time=start + DAY,
        value_grouping_window="week",
    )
    assert error.param == "value_grouping_window"
    error = invalid(
        stripe.billing.Meter.list_event_summaries, meter.id, start_time=start, end_time=start + 60
    )
    assert error.param == "customer"


def test_count_and_last_formulas(server, customer):
    count = stripe.billing.Meter.create(
        display_name="Logins", event_name="logins", default_aggregation={"formula": "count"}
    )
    last = stripe.billing.Meter.create(
        display_name="Seats", event_name="seats", default_aggregation={"formula": "last"}
    )
    now = int(time.time())
    for _ in range(3):
        stripe.billing.MeterEvent.create(
            event_name="logins", payload={"stripe_customer_id": customer.id}
        )
    for offset, seats in ((-300, "4"), (-100, "9"), (-200, "6")):
        stripe.billing.MeterEvent.create(
            event_name="seats",
            payload={"stripe_customer_id": customer.id, "value": seats},
            timestamp=now + offset,
        )
    window = {"customer_id": customer.id, "start": now - DAY, "end": now + 60}
    assert usage_total(server.store, meter_id=count.id, **window) == 3
    assert usage_total(server.store, meter_id=last.id, **window) == 9
