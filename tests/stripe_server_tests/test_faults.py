"""Fault injection the usage outbox relies on: a lost answer after the work was done, rate
limits that are not saved as idempotent results, and concurrency per customer and meter."""

import threading

import pytest

from tests.stripe_server_tests.test_protocol import raw


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def test_a_fault_after_the_work_loses_only_the_answer(server):
    server.fail_next(1, status=500, path="/v1/customers", after=True)
    status, _, _ = raw(server, "POST", "/v1/customers", body="email=a%40b.example")
    assert status == 500
    customers = server.store.all("customer")
    assert [c["email"] for c in customers] == ["a@b.example"]


def test_a_rate_limited_request_is_not_saved_under_its_idempotency_key(server):
    server.fail_next(1, status=429, path="/v1/customers")
    headers = {"Idempotency-Key": "k-1"}
    assert (
        raw(server, "POST", "/v1/customers", body="email=x%40y.example", headers=headers)[0] == 429
    )
    status, replay_headers, body = raw(
        server, "POST", "/v1/customers", body="email=x%40y.example", headers=headers
    )
    assert status == 200
    assert body["email"] == "x@y.example"
    assert "Idempotent-Replayed" not in replay_headers


def test_concurrent_meter_event_calls_are_counted_per_customer_and_event_name(server):
    server.meter_event_delay = 0.2
    body = "event_name=calls&payload[stripe_customer_id]=cus_1&payload[value]=1"
    threads = [
        threading.Thread(
            target=raw, args=(server, "POST", "/v1/billing/meter_events"), kwargs={"body": body}
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.store.meter_event_concurrency[("cus_1", "calls")] == 3
    assert server.store.meter_event_inflight[("cus_1", "calls")] == 0
