"""The dj-stripe webhook endpoint: signature checks, storage, duplicates, the release command."""

import json
import time
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from djstripe.models import Customer, Event, WebhookEndpoint, WebhookEventTrigger

from billing_project.stripe_webhook import webhook_endpoint_url
from tests.fixtures.stripe import sign_event

pytestmark = pytest.mark.django_db

BASE_URL = "http://testserver"


@pytest.fixture
def endpoint_url():
    call_command("setup_webhook_endpoint", base_url=BASE_URL, stdout=StringIO())
    return webhook_endpoint_url(BASE_URL).removeprefix(BASE_URL)


@pytest.fixture
def customer_event(stripe):
    customer = stripe_customer_create(email="ap@northwind.example", acct_id="1042")
    event = next(e for e in stripe.store.events if e["type"] == "customer.created")
    assert event["data"]["object"]["id"] == customer.id
    return event


def stripe_customer_create(**metadata):
    email = metadata.pop("email")
    return stripe.Customer.create(email=email, name="Northwind Traders", metadata=metadata)


def post(client, url, payload, headers):
    return client.post(url, data=payload, content_type="application/json", **headers)


def test_setup_command_records_endpoint_with_pinned_version_and_env_secret(settings):
    out = StringIO()
    call_command("setup_webhook_endpoint", base_url="https://billing.example.com", stdout=out)
    endpoint = WebhookEndpoint.objects.get(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID)
    assert endpoint.secret == settings.STRIPE_WEBHOOK_SECRET
    assert endpoint.api_version == stripe.api_version == settings.STRIPE_API_VERSION
    assert (
        endpoint.url
        == f"https://billing.example.com/stripe/webhook/{settings.STRIPE_WEBHOOK_UUID}/"
    )
    assert endpoint.url in out.getvalue()


def test_setup_command_is_idempotent_and_follows_a_rotated_secret(settings):
    call_command("setup_webhook_endpoint", base_url=BASE_URL, stdout=StringIO())
    out = StringIO()
    call_command("setup_webhook_endpoint", base_url=BASE_URL, stdout=out)
    assert out.getvalue().startswith("Unchanged")
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated_secret"
    call_command("setup_webhook_endpoint", base_url=BASE_URL, stdout=StringIO())
    assert WebhookEndpoint.objects.count() == 1
    assert WebhookEndpoint.objects.get().secret == "whsec_rotated_secret"


def test_setup_command_dry_run_writes_nothing():
    out = StringIO()
    call_command("setup_webhook_endpoint", base_url=BASE_URL, dry_run=True, stdout=out)
    assert "Would create" in out.getvalue()
    assert not WebhookEndpoint.objects.exists()


def test_setup_command_register_creates_the_endpoint_in_stripe(stripe):
    out = StringIO()
    call_command("setup_webhook_endpoint", base_url=BASE_URL, register=True, stdout=out)
    registered = stripe.store.all("webhook_endpoint")
    assert len(registered) == 1
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.id == registered[0]["id"]
    assert endpoint.secret == registered[0]["secret"]
    assert "invoice.finalized" in registered[0]["enabled_events"]


def test_signed_event_is_accepted_stored_and_synced(
    client, endpoint_url, customer_event, django_capture_on_commit_callbacks
):
    payload, headers = sign_event(customer_event)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, endpoint_url, payload, headers)
    assert response.status_code == 200, response.content
    event = Event.objects.get(id=customer_event["id"])
    assert event.type == "customer.created"
    customer = Customer.objects.get(id=customer_event["data"]["object"]["id"])
    assert customer.email == "ap@northwind.example"
    assert customer.metadata == {"acct_id": "1042"}


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "old_timestamp", "missing_header", "malformed_json", "body_changed"],
)
def test_bad_webhook_is_refused_with_400_and_nothing_processed(
    client, endpoint_url, customer_event, tamper
):
    payload, headers = sign_event(customer_event)
    if tamper == "wrong_secret":
        payload, headers = sign_event(customer_event, secret="whsec_not_ours")
    elif tamper == "old_timestamp":
        payload, headers = sign_event(customer_event, timestamp=int(time.time()) - 301)
    elif tamper == "missing_header":
        headers = {}
    elif tamper == "malformed_json":
        payload = payload[:-5]
        _, headers = sign_event(customer_event)
        headers = {"HTTP_STRIPE_SIGNATURE": sign_raw(payload)}
    elif tamper == "body_changed":
        payload = payload.replace("ap@northwind.example", "evil@example.com")
    response = post(client, endpoint_url, payload, headers)
    assert response.status_code == 400
    assert not Event.objects.exists()
    assert not Customer.objects.exists()
    assert not WebhookEventTrigger.objects.filter(processed=True).exists()


def sign_raw(payload: str) -> str:
    from django.conf import settings

    from tests.stripe_server import signature_header

    return signature_header(settings.STRIPE_WEBHOOK_SECRET, payload)


def test_unknown_endpoint_uuid_is_404(client, customer_event):
    payload, headers = sign_event(customer_event)
    response = post(
        client, "/stripe/webhook/00000000-0000-0000-0000-000000000000/", payload, headers
    )
    assert response.status_code == 404
    assert not Event.objects.exists()


def test_same_event_delivered_twice_is_processed_once(client, endpoint_url, customer_event, stripe):
    payload, headers = sign_event(customer_event)
    first = post(client, endpoint_url, payload, headers)
    fetches_after_first = len(stripe.store.requests)
    second = post(client, endpoint_url, json.dumps(customer_event), sign_event(customer_event)[1])
    assert first.status_code == second.status_code == 200
    assert Event.objects.filter(id=customer_event["id"]).count() == 1
    assert WebhookEventTrigger.objects.count() == 2
    assert len(stripe.store.requests) == fetches_after_first


def test_registering_again_after_stripe_forgot_the_endpoint_moves_the_row_to_the_new_id(stripe):
    call_command("setup_webhook_endpoint", base_url=BASE_URL, register=True, stdout=StringIO())
    first = WebhookEndpoint.objects.get().id
    stripe.reset()  # a fresh Stripe-compatible server (make run starts one each time)
    call_command("setup_webhook_endpoint", base_url=BASE_URL, register=True, stdout=StringIO())
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.id != first
    assert endpoint.id == stripe.store.all("webhook_endpoint")[0]["id"]
    assert endpoint.secret == stripe.store.all("webhook_endpoint")[0]["secret"]
