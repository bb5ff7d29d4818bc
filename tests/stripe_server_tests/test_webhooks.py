"""Events reach registered endpoints signed exactly as Stripe signs them, with retries."""

import json

import pytest
import stripe

from tests.harness.http_capture import CaptureServer


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    stripe_server.webhooks.auto = False
    stripe_server.webhooks.retry_delays = [0.0, 0.0, 0.0]
    return stripe_server


@pytest.fixture
def receiver():
    with CaptureServer() as capture:
        yield capture


def endpoint(receiver, events=("customer.created", "customer.updated")):
    return stripe.WebhookEndpoint.create(
        url=receiver.url("/hook"), enabled_events=list(events), api_version=stripe.api_version
    )


def test_event_is_delivered_signed_with_the_endpoint_secret(server, receiver):
    hook = endpoint(receiver)
    customer = stripe.Customer.create(email="ap@northwind.example")
    attempts = server.webhooks.deliver_pending()
    assert [(a.event_type, a.status, a.attempt) for a in attempts] == [("customer.created", 200, 1)]
    request = receiver.requests[0]
    payload = request["body"].decode()
    event = stripe.Webhook.construct_event(
        payload, request["headers"]["Stripe-Signature"], hook.secret
    )
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    assert event.api_version == stripe.api_version
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload, request["headers"]["Stripe-Signature"], "whsec_other"
        )
    assert stripe.Event.retrieve(event.id).pending_webhooks == 0


def test_only_enabled_event_types_are_sent(server, receiver):
    endpoint(receiver, events=("invoice.finalized",))
    stripe.Customer.create(email="ap@northwind.example")
    assert server.webhooks.deliver_pending() == []
    assert receiver.requests == []


def test_wildcard_endpoint_receives_everything_and_disabled_receives_nothing(server, receiver):
    hook = endpoint(receiver, events=("*",))
    stripe.Customer.create(email="a@example.com")
    assert len(server.webhooks.deliver_pending()) == 1
    stripe.WebhookEndpoint.modify(hook.id, disabled=True)
    stripe.Customer.create(email="b@example.com")
    assert server.webhooks.deliver_pending() == []


def test_non_2xx_answers_are_retried_until_accepted(server, receiver):
    endpoint(receiver)
    receiver.script = [500, 503]
    stripe.Customer.create(email="ap@northwind.example")
    attempts = server.webhooks.deliver_pending()
    assert [(a.status, a.attempt) for a in attempts] == [(500, 1), (503, 2), (200, 3)]
    assert len({json.loads(r["body"])["id"] for r in receiver.requests}) == 1
    undelivered = stripe.Event.list(delivery_success=False)
    assert undelivered.data == []


def test_an_endpoint_that_never_accepts_leaves_the_event_pending(server, receiver):
    endpoint(receiver)
    receiver.status = 400
    stripe.Customer.create(email="ap@northwind.example")
    attempts = server.webhooks.deliver_pending()
    assert len(attempts) == 1 + len(server.webhooks.retry_delays)
    assert [e.type for e in stripe.Event.list(delivery_success=False).data] == ["customer.created"]


def test_duplicate_delivery_sends_the_same_event_twice(server, receiver):
    endpoint(receiver)
    server.webhooks.duplicate_next = 1
    stripe.Customer.create(email="ap@northwind.example")
    server.webhooks.deliver_pending()
    ids = [json.loads(r["body"])["id"] for r in receiver.requests]
    assert len(ids) == 2
    assert ids[0] == ids[1]


def test_reordered_delivery_sends_a_batch_newest_first(server, receiver):
    endpoint(receiver)
    server.webhooks.reorder = True
    customer = stripe.Customer.create(email="ap@northwind.example")
    stripe.Customer.modify(customer.id, name="Northwind Traders")
    server.webhooks.deliver_pending()
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == [
        "customer.updated",
        "customer.created",
    ]


def test_background_delivery_happens_without_being_asked(server, receiver):
    server.webhooks.auto = True
    endpoint(receiver)
    stripe.Customer.create(email="ap@northwind.example")
    assert server.webhooks.wait_idle(timeout=10)
    assert [a.status for a in server.webhooks.attempts] == [200]


def test_events_list_filters_by_type_and_created(server):
    first = stripe.Customer.create(email="a@example.com")
    stripe.Customer.modify(first.id, name="A")
    events = stripe.Event.list(type="customer.*")
    assert [e.type for e in events.data] == ["customer.updated", "customer.created"]
    created = events.data[-1].created
    assert len(stripe.Event.list(created={"gte": created}).data) == 2
    assert stripe.Event.list(created={"lt": created}).data == []
    assert [e.type for e in stripe.Event.list(type="customer.updated").data] == ["customer.updated"]
    assert stripe.Event.retrieve(events.data[0].id).data.object.name == "A"
