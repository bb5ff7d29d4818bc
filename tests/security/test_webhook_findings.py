"""Webhooks trust nothing they did not sign: stale or future signatures, fields of the wrong
type, signed event data that is not an event, providers we do not use, the other Stripe mode.

Each post is answered 4xx (never 5xx) and changes no delivery.
"""

import json
import time
from io import StringIO

import pytest
import stripe as stripe_lib
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from billing_project.models import BillingEvent
from billing_project.stripe_webhook import webhook_endpoint_url
from invoices.models import InvoiceDelivery, TrackingEvent
from tests.factories import EmailAttemptFactory, InvoiceDeliveryFactory
from tests.fixtures.stripe import sign_event
from tests.harness.mailgun_server import signed_tracking_payload, tracking_signature

pytestmark = pytest.mark.django_db

URL = "/anymail/mailgun/tracking/"
MESSAGE_ID = "<20261201060000.51aa01@notify.adventive.com>"
CUSTOMER = "ap@harbour.example"
KEY = "harness-webhook-signing-key"


@pytest.fixture
def client():
    return Client(raise_request_exception=False)  # a 500 is a finding, shown as a status


@pytest.fixture
def delivered():
    delivery = InvoiceDeliveryFactory(
        sent=True, mailgun_message_id=MESSAGE_ID, state=InvoiceDelivery.State.DELIVERED
    )
    EmailAttemptFactory(
        delivery=delivery, recipient=CUSTOMER, status="sent", mailgun_message_id=MESSAGE_ID
    )
    return delivery


def bounce(**kwargs) -> dict:
    return signed_tracking_payload(
        KEY, event="failed", message_id=MESSAGE_ID, recipient=CUSTOMER, **kwargs
    )


def post(client, payload, content_type="application/json"):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(URL, data=body, content_type=content_type)


def state(delivery) -> str:
    return InvoiceDelivery.objects.get(pk=delivery.pk).state


def test_a_fresh_signed_bounce_moves_the_delivery(client, delivered):
    """Control: the refusals below are not refusing everything."""
    assert post(client, bounce()).status_code == 200
    assert state(delivered) == InvoiceDelivery.State.BOUNCED


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(-3 * 365 * 86400, id="three years old"),
        pytest.param(-16 * 60, id="16 minutes old"),
        pytest.param(10 * 60, id="ten minutes in the future"),
    ],
)
def test_a_signature_outside_the_window_is_refused(client, delivered, offset):
    response = post(client, bounce(signed_at=time.time() + offset))
    assert response.status_code == 400
    assert state(delivered) == InvoiceDelivery.State.DELIVERED
    assert TrackingEvent.objects.count() == 0


def test_a_signature_fourteen_minutes_old_is_still_accepted(client, delivered):
    assert post(client, bounce(signed_at=time.time() - 14 * 60)).status_code == 200


def _with_signature(**fields) -> dict:
    payload = bounce()
    payload["signature"].update(fields)
    return payload


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"token": "tökén" * 10}, id="non-ascii token"),
        pytest.param({"timestamp": "\uff11\uff17\uff17\uff10"}, id="non-ascii digits timestamp"),
        pytest.param({"signature": "é" * 64}, id="non-ascii signature"),
        pytest.param({"token": 12345}, id="token a number"),
        pytest.param({"token": ["a"]}, id="token a list"),
        pytest.param({"timestamp": {"t": 1}}, id="timestamp an object"),
        pytest.param({"timestamp": 1.5e300}, id="timestamp a huge float"),
        pytest.param({"signature": None}, id="signature null"),
        pytest.param({"timestamp": True}, id="timestamp a boolean"),
    ],
)
def test_signature_fields_of_the_wrong_type_get_400(client, delivered, fields):
    response = post(client, _with_signature(**fields))
    assert response.status_code == 400
    assert state(delivered) == InvoiceDelivery.State.DELIVERED


def test_an_integer_timestamp_as_mailgun_documents_it_is_accepted(client, delivered):
    payload = bounce()
    stamp = int(time.time())
    token = payload["signature"]["token"]
    payload["signature"] = {
        "timestamp": stamp,
        "token": token,
        "signature": tracking_signature(KEY, str(stamp), token),
    }
    assert post(client, payload).status_code == 200


def test_a_form_encoded_post_with_non_ascii_fields_gets_400(client, delivered):
    response = client.post(URL, {"token": "ü", "timestamp": "1", "signature": "ß"})
    assert response.status_code == 400


def _event_data(mutate) -> dict:
    payload = bounce()
    mutate(payload["event-data"])
    return payload


MALFORMED = {
    "no event": lambda d: d.pop("event"),
    "event a number": lambda d: d.update(event=7),
    "message null": lambda d: d.update(message=None),
    "headers a list": lambda d: d["message"].update(headers=[]),
    "message-id a number": lambda d: d["message"]["headers"].update({"message-id": 5}),
    "NUL in the recipient": lambda d: d.update(recipient="ap@harbour.example\x00"),
    "NUL in a tag": lambda d: d.update(tags=["a\x00b"]),
    "recipient a list": lambda d: d.update(recipient=["ap@harbour.example"]),
    "recipient 5,000 characters": lambda d: d.update(recipient="a" * 5000 + "@x.example"),
    "timestamp a string": lambda d: d.update(timestamp="yesterday"),
    "timestamp out of range": lambda d: d.update(timestamp=1e20),
    "delivery-status a string": lambda d: d.update({"delivery-status": "bounced"}),
    "user-variables a list": lambda d: d.update({"user-variables": []}),
    "client-info a string": lambda d: d.update({"client-info": "x"}),
    "nested 100 deep": lambda d: d.update({"user-variables": json.loads("[" * 100 + "]" * 100)}),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_signed_event_data_that_does_not_parse_is_406_and_recorded(client, delivered, case):
    payload = _event_data(MALFORMED[case])
    response = post(client, payload)
    assert response.status_code == 406, response.content
    assert state(delivered) == InvoiceDelivery.State.DELIVERED
    assert TrackingEvent.objects.count() == 0
    refusal = BillingEvent.objects.get(name="mailgun_webhook_refused")
    assert refusal.dimensions["token"] == payload["signature"]["token"]
    assert "event-data" in refusal.dimensions["reason"]


def test_the_same_malformed_event_unsigned_is_400_and_not_recorded(client, delivered):
    payload = _event_data(MALFORMED["message null"])
    payload["signature"]["signature"] = "0" * 64
    assert post(client, payload).status_code == 400
    assert not BillingEvent.objects.filter(name="mailgun_webhook_refused").exists()


def test_deeply_nested_json_body_gets_400(client, delivered):
    body = '{"signature": ' + "[" * 5000 + "]" * 5000 + "}"
    assert post(client, body).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/anymail/mailgun/inbound/",
        "/anymail/mailgun/inbound_mime/",
        "/anymail/postmark/tracking/",
        "/anymail/sendgrid/tracking/",
        "/anymail/sparkpost/tracking/",
        "/anymail/amazon_ses/tracking/",
        "/anymail/mailjet/tracking/",
        "/anymail/resend/tracking/",
    ],
)
def test_only_the_mailgun_tracking_url_is_routed(client, path):
    response = client.post(path, data="{}", content_type="application/json")
    assert response.status_code == 404


# --- Stripe -----------------------------------------------------------------------------------


@pytest.fixture
def endpoint_url(stripe):
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    return webhook_endpoint_url("http://testserver").removeprefix("http://testserver")


@pytest.fixture
def event(stripe):
    customer = stripe_lib.Customer.create(email="ap@harbour.example")
    return next(e for e in stripe.store.events if e["data"]["object"]["id"] == customer.id)


def _triggers() -> int:
    return apps.get_model("djstripe.WebhookEventTrigger").objects.count()


def test_a_live_mode_event_on_the_test_mode_endpoint_is_refused(client, endpoint_url, event):
    assert settings.STRIPE_LIVE_MODE is False
    payload, headers = sign_event({**event, "livemode": True})
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 400
    assert b"live-mode event" in response.content
    assert _triggers() == 0


def test_the_same_event_in_its_own_mode_is_accepted(client, endpoint_url, event):
    payload, headers = sign_event({**event, "livemode": False})
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 200
    assert _triggers() == 1


def test_a_stripe_signature_from_the_future_is_refused(client, endpoint_url, event):
    payload, headers = sign_event(event, timestamp=int(time.time()) + 3600)
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 400
    assert b"in the future" in response.content
    assert _triggers() == 0


@pytest.mark.parametrize("header", ["t=1e3,v1=ab", "t=,v1=ab", "v1=ab", "t=1,t=2,v1=ab"])
def test_a_stripe_signature_header_without_one_numeric_timestamp_is_400(
    client, endpoint_url, event, header
):
    response = client.post(
        endpoint_url,
        data=json.dumps(event),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
    assert response.status_code == 400
