"""Meter events accepted first and validated later: the error report is a v2 thin event sent to
an event destination, signed like a webhook, whose full event is fetched from
`GET /v2/core/events/{id}` — checked with stripe-python's own v2 event parsing."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def client(server):
    return stripe.StripeClient(
        "sk_test_MeterErrors000000000000000",
        base_addresses={"api": server.url},
        max_network_retries=0,
    )


@pytest.fixture
def receiver():
    """An HTTP endpoint that keeps what it is sent (body, headers)."""
    received: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, dict(self.headers.items())))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/stripe/thin", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def meter(server):
    return stripe.billing.Meter.create(
        display_name="Impressions",
        event_name="impressions",
        default_aggregation={"formula": "sum"},
    )


@pytest.fixture
def customer(server):
    return stripe.Customer.create(email="ap@northwind.example")


def destination(client, url):
    return client.v2.core.event_destinations.create(
        {
            "name": "meter errors",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": [
                "v1.billing.meter.error_report_triggered",
                "v1.billing.meter.no_meter_found",
            ],
            "webhook_endpoint": {"url": url},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )


def test_an_unknown_customer_is_accepted_then_reported(server, meter, client, receiver):
    url, received = receiver
    server.meter_error_report_delay = None
    created = destination(client, url)
    secret = created.webhook_endpoint.signing_secret
    assert secret.startswith("whsec_")

    accepted = stripe.billing.MeterEvent.create(
        event_name="impressions",
        payload={"stripe_customer_id": "cus_Unknown", "value": "40"},
        identifier="acct-7:2026-01-05:ST",
    )
    assert accepted.identifier == "acct-7:2026-01-05:ST"
    assert received == []  # not yet validated

    server.flush_meter_errors()

    [(body, headers)] = received
    notification = client.parse_event_notification(body, headers["Stripe-Signature"], secret)
    assert isinstance(
        notification,
        stripe.events.V1BillingMeterErrorReportTriggeredEventNotification,
    )
    assert notification.related_object.id == meter.id
    assert notification.related_object.url == f"/v1/billing/meters/{meter.id}"
    thin = json.loads(body)
    assert "data" not in thin
    assert thin["object"] == "v2.core.event"

    event = notification.fetch_event()
    assert event.type == "v1.billing.meter.error_report_triggered"
    [error_type] = event.data.reason.error_types
    assert error_type.code == "meter_event_customer_not_found"
    assert error_type.error_count == 1
    assert error_type.sample_errors[0]["request"]["identifier"] == "acct-7:2026-01-05:ST"
    assert notification.fetch_related_object().id == meter.id


def test_a_bad_notification_signature_is_refused_by_stripe_python(server, meter, client, receiver):
    url, received = receiver
    server.meter_error_report_delay = None
    destination(client, url)
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": "cus_Unknown", "value": "1"}
    )
    server.flush_meter_errors()

    [(body, headers)] = received
    with pytest.raises(stripe.SignatureVerificationError):
        client.parse_event_notification(body, headers["Stripe-Signature"], "whsec_wrong")


def test_errors_are_grouped_into_one_report_per_meter_after_the_delay(
    server, meter, customer, client, receiver
):
    url, received = receiver
    server.meter_error_report_delay = 0.2
    destination(client, url)
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": customer.id, "value": "1.5"}
    )
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": customer.id}
    )
    stripe.billing.MeterEvent.create(
        event_name="impressions", payload={"stripe_customer_id": customer.id, "value": "3"}
    )

    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)

    [(body, _)] = received
    event = client.v2.core.events.retrieve(json.loads(body)["id"])
    assert event.data.reason.error_count == 2
    [error_type] = event.data.reason.error_types
    assert error_type.code == "meter_event_invalid_value"
    assert event.data.developer_message_summary == "There are 2 invalid events"


def test_a_missing_meter_is_reported_as_no_meter_found(server, client, receiver, customer):
    url, received = receiver
    server.meter_error_report_delay = None
    destination(client, url)
    stripe.billing.MeterEvent.create(
        event_name="nobody_listens", payload={"stripe_customer_id": customer.id, "value": "1"}
    )
    server.flush_meter_errors()

    [(body, _)] = received
    thin = json.loads(body)
    assert thin["type"] == "v1.billing.meter.no_meter_found"
    assert client.v2.core.events.retrieve(thin["id"]).data.reason.error_types[0].code == (
        "no_meter"
    )


def test_the_request_itself_is_still_refused_at_once(server, meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.billing.MeterEvent.create(event_name="impressions")
    assert caught.value.param == "payload"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.billing.MeterEvent.create(
            event_name="impressions",
            payload={"stripe_customer_id": customer.id, "value": "1"},
            timestamp=int(time.time()) - 40 * 86_400,
        )
    assert caught.value.code == "timestamp_too_far_in_past"


def test_an_unknown_v2_event_is_not_found(server, client):
    with pytest.raises(stripe.StripeError) as caught:
        client.v2.core.events.retrieve("evt_test_missing")
    assert caught.value.http_status == 404
