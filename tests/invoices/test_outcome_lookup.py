"""Outcomes the tracking webhook never brought are asked of Mailgun's events API."""

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from invoices.models import InvoiceDelivery, TrackingEvent
from invoices.tasks import delivery_outcomes_lookup_task
from tests.harness.mailgun_server import tracking_signature
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

State = InvoiceDelivery.State
SENT = datetime(2026, 2, 1, 3, tzinfo=UTC)
TRACKING_URL = "/anymail/mailgun/tracking/"


def _sent_delivery(client, server, endpoint_url, capture, **customer_fields):
    _, customer = billed_customer(**customer_fields)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, capture)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == State.SENT, delivery.last_error
    return delivery


def _signed_now(mailgun, payload):
    """The same event as Mailgun would post it now: signed at the moment of posting."""
    stamp = str(int(time.time()))
    token = payload["signature"]["token"]
    signature = tracking_signature(mailgun.webhook_signing_key, stamp, token)
    return {**payload, "signature": {"timestamp": stamp, "token": token, "signature": signature}}


def _post_webhook(client, payload):
    return client.post(TRACKING_URL, data=json.dumps(payload), content_type="application/json")


@pytest.mark.django_db
def test_a_dropped_delivered_webhook_is_found_by_the_lookup_within_the_set_time(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        traveller.move_to(SENT + timedelta(seconds=20))
        # Mailgun delivers and logs it; its webhook post is lost and never retried.
        dropped = mailgun.tracking_payload(event="delivered")

        traveller.move_to(SENT + timedelta(minutes=10))
        early = delivery_outcomes_lookup_task()
        delivery.refresh_from_db()
        assert early["asked"] == 0  # not yet the set time
        assert delivery.state == State.SENT
        # A second email, sent later, is delivered too; its webhook is lost as well. It is not
        # due yet when the first is asked about: only a lookup that asks Mailgun for the first
        # message's id alone leaves it alone.
        later = _sent_delivery(
            client,
            server,
            endpoint_url,
            django_capture_on_commit_callbacks,
            acct_id=1043,
            email="ap@contoso.example",
        )
        traveller.move_to(SENT + timedelta(minutes=10, seconds=20))
        mailgun.tracking_payload(event="delivered", message_id=later.mailgun_message_id)

        traveller.move_to(
            SENT + timedelta(seconds=settings.BILLING_OUTCOME_LOOKUP_AFTER_SECONDS + 60)
        )
        report = delivery_outcomes_lookup_task()
        delivery.refresh_from_db()
        later.refresh_from_db()
        assert report["asked"] == 1
        assert report["applied"] == 1
        assert delivery.state == State.DELIVERED
        assert later.state == State.SENT  # asked about only once it is due
        row = delivery.events.get(step="tracking_delivered")
        assert row.data["source"] == TrackingEvent.Source.LOOKUP
        assert row.state_from == State.SENT

        # The webhook arriving late after all is the same event: kept once, no second row.
        assert _post_webhook(client, _signed_now(mailgun, dropped)).status_code == 200
        assert delivery_outcomes_lookup_task()["applied"] == 0
    assert delivery.events.filter(step="tracking_delivered").count() == 1
    assert TrackingEvent.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db
def test_a_customer_bounce_with_the_bcc_delivered_ends_bounced_through_the_lookup(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        traveller.move_to(SENT + timedelta(seconds=30))
        mailgun.tracking_payload(event="failed")  # the customer's mailbox does not exist
        traveller.move_to(SENT + timedelta(seconds=40))
        mailgun.tracking_payload(event="delivered", recipient=settings.BILLING_BCC_ADDRESS)

        traveller.move_to(SENT + timedelta(hours=1))
        delivery_outcomes_lookup_task()
    delivery.refresh_from_db()
    assert delivery.state == State.BOUNCED
    steps = list(delivery.events.values_list("step", "state_to", "message"))
    assert ("tracking_bounced", State.BOUNCED, "ap@northwind.example") in steps
    assert (
        "tracking_delivered",
        "",
        f"{settings.BILLING_BCC_ADDRESS} (not the invoice recipient)",
    ) in steps


@pytest.mark.django_db
def test_a_late_complaint_after_delivered_is_found_among_recent_complaints(
    client,
    admin_client,
    server,
    mailgun,
    s3_bucket,
    endpoint_url,
    django_capture_on_commit_callbacks,
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        traveller.move_to(SENT + timedelta(seconds=20))
        assert _post_webhook(client, mailgun.tracking_payload(event="delivered")).status_code == 200
        delivery.refresh_from_db()
        assert delivery.state == State.DELIVERED

        traveller.move_to(SENT + timedelta(hours=23))
        # Neither is a permanent failure of an invoice email, and their posts are lost too:
        # a temporary failure (Mailgun retries; only `severity=permanent` is asked for) and
        # another system's bounce through the same domain (not tagged `invoice`).
        mailgun.tracking_payload(event="failed", extra={"severity": "temporary"})
        mailgun.tracking_payload(
            event="failed",
            message_id="<20260202030000.5e6f@notify.adventive.com>",
            recipient="someone@elsewhere.example",
            tags=["password-reset"],
        )
        traveller.move_to(SENT + timedelta(days=1))
        mailgun.tracking_payload(event="complained")  # its webhook post is lost
        traveller.move_to(SENT + timedelta(days=1, minutes=10))
        delivery_outcomes_lookup_task()
        delivery_outcomes_lookup_task()  # a second run applies nothing again
    delivery.refresh_from_db()
    assert delivery.state == State.COMPLAINED
    assert delivery.events.filter(step="tracking_complained").count() == 1
    sources = dict(
        TrackingEvent.objects.filter(delivery=delivery).values_list("event_type", "source")
    )
    assert sources == {"delivered": "webhook", "complained": "lookup"}
    assert TrackingEvent.objects.count() == 2  # nothing kept of the other two failures
    # The operator sees on the timeline which outcome came from where.
    page = admin_client.get(
        reverse("admin:invoices_invoicedelivery_change", args=[delivery.pk])
    ).content.decode()
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S)
    delivered = next(row for row in rows if "tracking_delivered" in row)
    complained = next(row for row in rows if "tracking_complained" in row)
    assert "Tracking webhook" in delivered and "Mailgun events lookup" not in delivered
    assert "Mailgun events lookup" in complained


@pytest.mark.django_db
def test_mailgun_not_answering_leaves_the_delivery_as_it_was(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    with time_machine.travel(SENT, tick=False) as traveller:
        delivery = _sent_delivery(client, server, endpoint_url, django_capture_on_commit_callbacks)
        mailgun.tracking_payload(event="delivered")
        traveller.move_to(SENT + timedelta(hours=1))
        settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "key-wrong"}
        report = delivery_outcomes_lookup_task()
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert report["unavailable"] and "HTTP 401" in report["unavailable"][0]


@pytest.mark.django_db
def test_emails_that_never_get_an_outcome_do_not_starve_newer_ones(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks, settings
):
    settings.BILLING_OUTCOME_LOOKUP_BATCH = 2
    capture = django_capture_on_commit_callbacks
    with time_machine.travel(SENT, tick=False) as traveller:
        # Two emails Mailgun never reports an outcome for (more than one run's batch, with
        # the newer one below).
        silent = [
            _sent_delivery(client, server, endpoint_url, capture, acct_id=acct_id, email=email)
            for acct_id, email in ((2001, "ap@one.example"), (2002, "ap@two.example"))
        ]
        traveller.move_to(SENT + timedelta(minutes=10))
        newer = _sent_delivery(
            client, server, endpoint_url, capture, acct_id=2003, email="ap@three.example"
        )
        traveller.move_to(SENT + timedelta(minutes=10, seconds=20))
        mailgun.tracking_payload(event="delivered", message_id=newer.mailgun_message_id)

        traveller.move_to(SENT + timedelta(hours=1))
        first = delivery_outcomes_lookup_task()
        newer.refresh_from_db()
        assert first["asked"] == 2
        assert newer.state == State.SENT  # the two oldest were asked first

        traveller.move_to(SENT + timedelta(hours=1, minutes=10))
        second = delivery_outcomes_lookup_task()
    newer.refresh_from_db()
    assert second["asked"] == 2
    assert newer.state == State.DELIVERED
    for delivery in silent:
        delivery.refresh_from_db()
        assert delivery.state == State.SENT
