"""Hostile posts to the Mailgun tracking webhook: 4xx, nothing stored, no state changed."""

import json

import pytest
from django.apps import apps
from django.conf import settings

from tests.factories import EmailAttemptFactory, InvoiceDeliveryFactory
from tests.harness.mailgun_server import signed_tracking_payload

pytestmark = pytest.mark.django_db

URL = "/anymail/mailgun/tracking/"
MESSAGE_ID = "<20260301060000.77aa01@notify.adventive.com>"
CUSTOMER = "ap@keystone.example"
WATCHED = (
    "invoices.TrackingEvent",
    "invoices.DeliveryEvent",
    "invoices.InvoiceDelivery",
    "core.BillingEvent",
    "core.Alert",
)


def snapshot() -> dict:
    counts = {label: apps.get_model(label).objects.count() for label in WATCHED}
    counts["states"] = sorted(
        apps.get_model("invoices.InvoiceDelivery").objects.values_list("pk", "state")
    )
    return counts


@pytest.fixture
def attempt():
    delivery = InvoiceDeliveryFactory(sent=True, mailgun_message_id=MESSAGE_ID)
    return EmailAttemptFactory(
        delivery=delivery, recipient=CUSTOMER, status="sent", mailgun_message_id=MESSAGE_ID
    )


def good_payload(**overrides) -> dict:
    return signed_tracking_payload(
        settings.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"],
        event="failed",
        message_id=MESSAGE_ID,
        recipient=CUSTOMER,
        **overrides,
    )


def body_for(case: str) -> tuple[str, str]:
    if case == "malformed JSON":
        return json.dumps(good_payload())[:-9], "application/json"
    if case == "JSON that is not an object":
        return "[1, 2, 3]", "application/json"
    if case == "no signature block":
        payload = good_payload()
        del payload["signature"]
        return json.dumps(payload), "application/json"
    if case == "signed with another key":
        payload = signed_tracking_payload(
            "someone-elses-key", event="failed", message_id=MESSAGE_ID, recipient=CUSTOMER
        )
        return json.dumps(payload), "application/json"
    if case == "event data changed after signing":
        payload = good_payload()
        payload["signature"]["token"] = payload["signature"]["token"][::-1]
        return json.dumps(payload), "application/json"
    if case == "oversized":
        payload = good_payload()
        payload["event-data"]["padding"] = "x" * (3 * 1024 * 1024)
        return json.dumps(payload), "application/json"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "malformed JSON",
        "JSON that is not an object",
        "no signature block",
        "signed with another key",
        "event data changed after signing",
        "oversized",
    ],
)
def test_hostile_tracking_post_is_refused_and_changes_nothing(client, attempt, case):
    body, content_type = body_for(case)
    before = snapshot()
    response = client.post(URL, data=body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert snapshot() == before


def test_a_replayed_tracking_post_changes_nothing_the_second_time(client, attempt):
    body = json.dumps(good_payload())
    assert client.post(URL, data=body, content_type="application/json").status_code == 200
    after_first = snapshot()
    assert client.post(URL, data=body, content_type="application/json").status_code == 200
    assert snapshot() == after_first
