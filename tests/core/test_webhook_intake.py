"""Webhook intake: the request verifies and stores; a task records the event and runs our handlers
without calling Stripe; dj-stripe's mirror of the objects follows as its own step."""

from datetime import timedelta
from io import StringIO

import pytest
import stripe as stripe_lib
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from djstripe.models import Account, Customer, Event, WebhookEventTrigger
from djstripe.models import Invoice as DjstripeInvoice

from billing_project.models import Alert, StripeMirror
from billing_project.stripe_mirror import stripe_mirror_update, stripe_mirrors_resume
from billing_project.stripe_webhook import webhook_endpoint_url
from billing_project.webhook_intake import webhook_trigger_process, webhook_triggers_resume
from invoices.models import InvoiceDelivery
from tests.fixtures.stripe import sign_event
from tests.invoices.scenarios import billed_customer, finalized_event

pytestmark = pytest.mark.django_db

BASE_URL = "http://testserver"


@pytest.fixture
def endpoint_url():
    call_command("setup_webhook_endpoint", base_url=BASE_URL, stdout=StringIO())
    return webhook_endpoint_url(BASE_URL).removeprefix(BASE_URL)


@pytest.fixture
def customer_event(stripe):
    customer = stripe_lib.Customer.create(email="ap@bluefin.example", metadata={"acct_id": "1007"})
    return next(
        e
        for e in stripe.store.events
        if e["type"] == "customer.created" and e["data"]["object"]["id"] == customer.id
    )


@pytest.fixture
def queued(monkeypatch):
    """Tasks go to the ORM queue instead of running inline, as under a real worker."""
    monkeypatch.setattr(Conf, "SYNC", False)


def post(client, url, event):
    payload, headers = sign_event(event)
    return client.post(url, data=payload, content_type="application/json", **headers)


def test_the_request_stores_and_enqueues_without_calling_stripe(
    client, endpoint_url, customer_event, stripe, queued
):
    calls_before = len(stripe.store.requests)
    response = post(client, endpoint_url, customer_event)
    assert response.status_code == 200
    trigger = WebhookEventTrigger.objects.get()
    assert response.content.decode() == str(trigger.pk)
    assert trigger.valid is True
    assert trigger.processed is False
    assert len(stripe.store.requests) == calls_before
    assert not Event.objects.exists()
    assert OrmQ.objects.count() == 1


def test_the_task_records_the_event_without_calling_stripe_then_the_mirror_follows(
    client, endpoint_url, customer_event, stripe, queued
):
    post(client, endpoint_url, customer_event)
    trigger = WebhookEventTrigger.objects.get()
    Account.get_or_retrieve_for_api_key(settings.STRIPE_SECRET_KEY)  # known once per key
    calls_before = len(stripe.store.requests)
    webhook_trigger_process(trigger_id=trigger.pk)
    assert stripe.store.requests[calls_before:] == []
    trigger.refresh_from_db()
    assert trigger.processed is True
    assert Event.objects.get(id=customer_event["id"]).type == "customer.created"
    mirror = StripeMirror.objects.get(event_id=customer_event["id"])
    assert mirror.state == StripeMirror.State.PENDING
    assert not Customer.objects.exists()

    assert stripe_mirror_update(event_id=customer_event["id"]) == StripeMirror.State.DONE
    assert Customer.objects.get(id=customer_event["data"]["object"]["id"]).metadata == {
        "acct_id": "1007"
    }
    assert stripe_mirror_update(event_id=customer_event["id"]) == StripeMirror.State.DONE


def test_a_refused_post_is_neither_stored_nor_enqueued(
    client, endpoint_url, customer_event, queued
):
    payload, headers = sign_event(customer_event, secret="whsec_not_ours")
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 400
    assert not WebhookEventTrigger.objects.exists()
    assert not OrmQ.objects.exists()


def test_processing_twice_does_nothing_the_second_time(
    client, endpoint_url, customer_event, stripe, queued
):
    post(client, endpoint_url, customer_event)
    trigger = WebhookEventTrigger.objects.get()
    webhook_trigger_process(trigger_id=trigger.pk)
    calls = len(stripe.store.requests)
    webhook_trigger_process(trigger_id=trigger.pk)
    assert len(stripe.store.requests) == calls
    assert Event.objects.count() == 1


def test_a_failed_processing_is_kept_alerted_once_and_resumed_until_it_succeeds(
    client, endpoint_url, customer_event, stripe, queued, monkeypatch
):
    post(client, endpoint_url, customer_event)
    trigger = WebhookEventTrigger.objects.get()
    OrmQ.objects.all().delete()
    # dj-stripe reads the key's Stripe account once, before the event can be recorded.
    monkeypatch.setattr(stripe_lib, "max_network_retries", 0)
    stripe.fail_next(2, status=500, path="/v1/account")
    for _ in range(2):
        with pytest.raises(stripe_lib.APIError):
            webhook_trigger_process(trigger_id=trigger.pk)
    trigger.refresh_from_db()
    assert trigger.processed is False
    assert trigger.exception
    assert not Event.objects.exists()
    alerts = Alert.objects.filter(route=Alert.Route.OPERATIONS, title__contains="webhook")
    assert alerts.count() == 1
    assert str(trigger.pk) in alerts.get().body
    assert OrmQ.objects.count() == 1  # the endpoint status check, once
    OrmQ.objects.all().delete()

    assert webhook_triggers_resume(now=timezone.now()) == 0  # failed less than a minute ago
    assert webhook_triggers_resume(now=timezone.now() + timedelta(minutes=2)) == 1
    assert OrmQ.objects.count() == 1
    webhook_trigger_process(trigger_id=trigger.pk)
    trigger.refresh_from_db()
    assert trigger.processed is True
    assert Event.objects.filter(id=customer_event["id"]).exists()
    assert webhook_triggers_resume(now=timezone.now() + timedelta(minutes=2)) == 0


def test_a_failing_mirror_is_alerted_once_retried_with_backoff_and_never_blocks_the_event(
    client, endpoint_url, stripe, queued, monkeypatch
):
    _, customer = billed_customer()
    event = finalized_event(stripe, customer.id)
    post(client, endpoint_url, event)
    webhook_trigger_process(trigger_id=WebhookEventTrigger.objects.get().pk)
    assert Event.objects.filter(id=event["id"]).exists()
    assert InvoiceDelivery.objects.filter(stripe_invoice_id=event["data"]["object"]["id"])
    # dj-stripe's copy of the invoice needs the customer, which it reads from Stripe once.
    monkeypatch.setattr(stripe_lib, "max_network_retries", 0)
    stripe.fail_next(2, status=500, path="/v1/customers")
    now = timezone.now()
    assert stripe_mirror_update(event_id=event["id"], now=now) == "pending"
    mirror = StripeMirror.objects.get()
    assert mirror.attempts == 1 and "Injected failure" in mirror.last_error
    assert mirror.next_attempt_at == now + timedelta(seconds=60)
    assert stripe_mirrors_resume(now=now + timedelta(seconds=30)) == 0
    assert stripe_mirrors_resume(now=now + timedelta(seconds=61)) == 1
    assert stripe_mirror_update(event_id=event["id"], now=now + timedelta(seconds=61))
    assert StripeMirror.objects.get().attempts == 2
    assert Alert.objects.filter(title__contains="could not mirror").count() == 1

    later = now + timedelta(hours=1)
    assert stripe_mirror_update(event_id=event["id"], now=later) == "done"
    assert Customer.objects.filter(id=customer.id).exists()
    assert DjstripeInvoice.objects.filter(id=event["data"]["object"]["id"]).exists()


def test_a_trigger_whose_task_was_lost_is_resumed_after_half_an_hour(
    client, endpoint_url, customer_event, queued
):
    post(client, endpoint_url, customer_event)
    OrmQ.objects.all().delete()
    assert webhook_triggers_resume(now=timezone.now() + timedelta(minutes=5)) == 0
    assert webhook_triggers_resume(now=timezone.now() + timedelta(minutes=31)) == 1
    assert webhook_triggers_resume(now=timezone.now() + timedelta(days=4)) == 0


def test_many_events_failing_in_one_outage_raise_one_alert(
    client, endpoint_url, stripe, queued, monkeypatch
):
    monkeypatch.setattr(stripe_lib, "max_network_retries", 0)
    for n in range(3):
        stripe_lib.Customer.create(email=f"ap{n}@harbor.example")
    for event in [e for e in stripe.store.events if e["type"] == "customer.created"]:
        post(client, endpoint_url, event)
    stripe.fail_next(100, status=500, path="/v1/account")
    for trigger in WebhookEventTrigger.objects.all():
        with pytest.raises(stripe_lib.APIError):
            webhook_trigger_process(trigger_id=trigger.pk)
    assert WebhookEventTrigger.objects.exclude(exception="").count() == 3
    assert Alert.objects.filter(title__contains="could not be processed").count() == 1
