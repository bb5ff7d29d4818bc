"""Hostile posts to the Stripe webhook: each answered 4xx, the database left unchanged."""

import json
import time
from io import StringIO

import pytest
import stripe as stripe_lib
from django.apps import apps
from django.core.management import call_command

from billing_project.stripe_webhook import webhook_endpoint_url
from tests.fixtures.stripe import sign_event
from tests.stripe_server import signature_header

pytestmark = pytest.mark.django_db

WATCHED = (
    "djstripe.WebhookEventTrigger",
    "djstripe.Event",
    "djstripe.Customer",
    "django_q.OrmQ",
    "core.BillingEvent",
    "core.Alert",
    "invoices.InvoiceDelivery",
)


def snapshot() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in WATCHED}


@pytest.fixture
def endpoint_url(stripe):
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    return webhook_endpoint_url("http://testserver").removeprefix("http://testserver")


@pytest.fixture
def event(stripe):
    customer = stripe_lib.Customer.create(email="ap@juniper.example")
    return next(e for e in stripe.store.events if e["data"]["object"]["id"] == customer.id)


def signed(payload: str, *, secret: str | None = None, timestamp: int | None = None) -> dict:
    from django.conf import settings

    header = signature_header(
        secret or settings.STRIPE_WEBHOOK_SECRET,
        payload,
        int(time.time()) if timestamp is None else timestamp,
    )
    return {"HTTP_STRIPE_SIGNATURE": header}


def hostile_request(case: str, event: dict) -> tuple[str, dict]:
    body = json.dumps(event)
    if case == "no signature header":
        return body, {}
    if case == "garbage signature header":
        return body, {"HTTP_STRIPE_SIGNATURE": "t=abc,v1="}
    if case == "signed with another secret":
        return body, signed(body, secret="whsec_someone_else")
    if case == "replayed after the tolerance":
        return body, signed(body, timestamp=int(time.time()) - 3600)
    if case == "body changed after signing":
        return body.replace("juniper", "evil"), signed(body)
    if case == "malformed JSON, correctly signed":
        broken = body[:-7]
        return broken, signed(broken)
    if case == "JSON without an event id, correctly signed":
        return "{}", signed("{}")
    if case == "oversized, correctly signed":
        huge = json.dumps({**event, "padding": "x" * (2 * 1024 * 1024)})
        return huge, signed(huge)
    raise AssertionError(case)


CASES = {
    "no signature header": 400,
    "garbage signature header": 400,
    "signed with another secret": 400,
    "replayed after the tolerance": 400,
    "body changed after signing": 400,
    "malformed JSON, correctly signed": 400,
    "JSON without an event id, correctly signed": 400,
    "oversized, correctly signed": 413,
}


@pytest.mark.parametrize(("case", "status"), CASES.items())
def test_hostile_post_is_refused_and_changes_nothing(client, endpoint_url, event, case, status):
    body, headers = hostile_request(case, event)
    before = snapshot()
    response = client.post(endpoint_url, data=body, content_type="application/json", **headers)
    assert response.status_code == status
    assert response.content  # says why
    assert snapshot() == before


def test_unknown_endpoint_and_wrong_method_change_nothing(client, endpoint_url, event):
    before = snapshot()
    payload, headers = sign_event(event)
    unknown = "/stripe/webhook/00000000-0000-0000-0000-000000000000/"
    assert (
        client.post(unknown, data=payload, content_type="application/json", **headers).status_code
        == 404
    )
    assert client.get(endpoint_url).status_code == 405
    assert (
        client.put(endpoint_url, data=payload, content_type="application/json").status_code == 405
    )
    assert snapshot() == before


def test_the_same_valid_post_twice_is_processed_once(
    client, endpoint_url, event, django_capture_on_commit_callbacks
):
    payload, headers = sign_event(event)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                endpoint_url, data=payload, content_type="application/json", **headers
            )
        assert response.status_code == 200
    counts = snapshot()
    assert counts["djstripe.Event"] == 1
    assert counts["djstripe.Customer"] == 1  # mirrored once, by the first
