"""The same Mailgun event from the webhook and from the outcome lookup is kept once, however
each writes its timestamp; rows kept before the key existed are keyed by a data migration; a
bounce or complaint is counted only when it moves the delivery's state."""

import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.apps import apps
from django.db import connection

from billing_project.models import BillingEvent
from invoices.models import InvoiceDelivery, TrackingEvent
from invoices.tasks import delivery_outcomes_lookup_task
from invoices.tracking import mailgun_event_key
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

State = InvoiceDelivery.State
TRACKING_URL = "/anymail/mailgun/tracking/"
AT = 1765000000  # 2025-12-06 05:46:40 UTC
SENT = datetime.fromtimestamp(AT - 60, tz=UTC)
fill = importlib.import_module("invoices.migrations.0003_trackingevent_mailgun_event_key_fill")


def _sent_delivery(client, server, endpoint_url, capture):
    _, customer = billed_customer()
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, capture)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == State.SENT, delivery.last_error
    return delivery


def _post(client, payload):
    response = client.post(TRACKING_URL, data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    return response


@pytest.mark.parametrize(
    "written", [1765000000.123456, 1765000000.123, "1765000000.123456", "1765000000.9", AT]
)
def test_one_event_written_with_any_precision_has_one_key(written):
    assert mailgun_event_key({"id": "evt-1", "timestamp": written}) == f"evt-1@{AT}"
    assert fill.event_key({"id": "evt-1", "timestamp": written}) == f"evt-1@{AT}"


def test_an_event_without_id_or_a_readable_timestamp_has_no_key():
    assert mailgun_event_key({"id": "evt-1"}) is None
    assert mailgun_event_key({"id": "", "timestamp": AT}) is None
    assert mailgun_event_key({"id": "evt-1", "timestamp": "soon"}) is None
    assert mailgun_event_key({"id": "evt-1", "timestamp": AT + 1}) != f"evt-1@{AT}"


@pytest.mark.django_db
def test_the_webhook_and_the_lookup_writing_the_timestamp_differently_keep_one_event(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        # Mailgun logs the bounce with microseconds; its webhook post writes milliseconds.
        payload = mailgun.tracking_payload(event="failed", timestamp=1765000000.123456)
        payload["event-data"]["timestamp"] = 1765000000.123
        _post(client, payload)
        delivery.refresh_from_db()
        assert delivery.state == State.BOUNCED
        traveller.move_to(SENT + timedelta(hours=1))
        # The lookup's recent permanent failures list the same bounce again.
        report = delivery_outcomes_lookup_task()
    assert report["applied"] == 0
    assert delivery.events.filter(step="tracking_bounced").count() == 1
    kept = TrackingEvent.objects.filter(delivery=delivery)
    assert list(kept.values_list("event_type", "source")) == [("bounced", "webhook")]
    assert BillingEvent.objects.filter(name="email_bounced").count() == 1


@pytest.mark.django_db
def test_the_data_migration_keys_rows_kept_before_the_key_and_the_lookup_then_skips_them(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        payload = mailgun.tracking_payload(event="delivered", timestamp=1765000000.123456)
        _post(client, payload)
        # As migration 0002 left them: no key on the rows the webhook kept before it.
        TrackingEvent.objects.update(mailgun_event_key=None)
        fill.fill_event_keys(apps, connection.schema_editor())
        assert (
            TrackingEvent.objects.get().mailgun_event_key == f"{payload['event-data']['id']}@{AT}"
        )

        traveller.move_to(SENT + timedelta(hours=1))
        # Without its key, the lookup would keep the same delivered event a second time.
        report = delivery_outcomes_lookup_task()
    assert report["applied"] == 0
    assert TrackingEvent.objects.filter(delivery=delivery).count() == 1
    assert delivery.events.filter(step="tracking_delivered").count() == 1


@pytest.mark.django_db
def test_the_data_migration_keeps_the_key_on_the_first_of_two_rows_of_one_event(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False):
        _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        first = mailgun.tracking_payload(event="delivered", timestamp=1765000000.123456)
        _post(client, first)
        # The same Mailgun event again under another signature token, written in another
        # precision: before the key, both were kept.
        TrackingEvent.objects.update(mailgun_event_key=None)
        again = mailgun.tracking_payload(
            event="delivered",
            event_id=first["event-data"]["id"],
            timestamp=1765000000.123,
            token="another-signature-token-for-the-same-event",
        )
        _post(client, again)
        assert TrackingEvent.objects.count() == 2
    TrackingEvent.objects.update(mailgun_event_key=None)
    fill.fill_event_keys(apps, connection.schema_editor())
    keys = list(TrackingEvent.objects.order_by("id").values_list("mailgun_event_key", flat=True))
    assert keys == [f"{first['event-data']['id']}@{AT}", None]


@pytest.mark.django_db
def test_a_bounce_or_complaint_is_counted_only_when_it_moves_the_state(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        traveller.move_to(SENT + timedelta(seconds=30))
        _post(client, mailgun.tracking_payload(event="complained"))
        traveller.move_to(SENT + timedelta(seconds=40))
        _post(client, mailgun.tracking_payload(event="failed"))  # a bounce after the complaint
        traveller.move_to(SENT + timedelta(seconds=50))
        _post(client, mailgun.tracking_payload(event="complained"))  # a second complaint
    delivery.refresh_from_db()
    assert delivery.state == State.COMPLAINED
    assert BillingEvent.objects.filter(name="email_complained").count() == 1
    assert not BillingEvent.objects.filter(name="email_bounced").exists()
    assert TrackingEvent.objects.filter(delivery=delivery).count() == 3
