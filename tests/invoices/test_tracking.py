"""Mailgun tracking webhooks through Anymail's endpoint: signed, kept once, customer-only state."""

import json
import threading
from datetime import UTC, datetime

import pytest
from anymail.message import AnymailMessage
from django.conf import settings
from django.db import connections

from billing_project.models import BillingEvent
from invoices.emails import invoice_email_send
from invoices.models import DeliveryEvent, InvoiceDelivery, TrackingEvent
from invoices.tracking import tracking_event_record
from tests.factories import EmailAttemptFactory, InvoiceDeliveryFactory
from tests.harness.mailgun_server import signed_tracking_payload

URL = "/anymail/mailgun/tracking/"
MESSAGE_ID = "<20260301060000.4f2a9c@notify.adventive.com>"
CUSTOMER = "ap@northwind.example"
BCC = "2658568@bcc.hubspot.com"
SENT_AT = datetime(2026, 3, 1, 6, 0, tzinfo=UTC).timestamp()
State = InvoiceDelivery.State


@pytest.fixture
def attempt():
    delivery = InvoiceDeliveryFactory(sent=True, mailgun_message_id=MESSAGE_ID)
    return EmailAttemptFactory(
        delivery=delivery,
        recipient=CUSTOMER,
        status="sent",
        mailgun_message_id=MESSAGE_ID,
    )


def post(client, *, event="delivered", message_id=MESSAGE_ID, recipient=CUSTOMER, **kwargs):
    payload = signed_tracking_payload(
        settings.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"],
        event=event,
        message_id=message_id,
        recipient=recipient,
        **kwargs,
    )
    return client.post(URL, data=json.dumps(payload), content_type="application/json")


def tracking_steps(delivery):
    return list(
        DeliveryEvent.objects.filter(delivery=delivery, step__startswith="tracking_").values_list(
            "step", "state_from", "state_to"
        )
    )


@pytest.mark.django_db
def test_customer_delivered_moves_sent_to_delivered_with_a_timeline_row(client, attempt):
    response = post(client, event_id="evt-delivered", timestamp=SENT_AT + 5)

    assert response.status_code == 200
    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert tracking_steps(delivery) == [("tracking_delivered", "sent", "delivered")]
    row = TrackingEvent.objects.get()
    assert (row.event_type, row.message_id, row.recipient) == ("delivered", MESSAGE_ID, CUSTOMER)
    assert (row.delivery_id, row.attempt_id) == (delivery.pk, attempt.pk)
    assert row.occurred_at == datetime(2026, 3, 1, 6, 0, 5, tzinfo=UTC)
    assert row.data["mailgun"]["event"] == "delivered"


@pytest.mark.django_db
def test_bare_message_id_from_mailgun_matches_the_bracketed_stored_id(client, attempt):
    post(client, message_id=MESSAGE_ID.strip("<>"), event_id="evt-bare")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.DELIVERED
    assert TrackingEvent.objects.get().delivery_id == attempt.delivery_id


@pytest.mark.django_db
def test_replayed_webhook_is_kept_once_and_adds_no_second_timeline_row(client, attempt):
    payload = signed_tracking_payload(
        settings.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"],
        event="opened",
        message_id=MESSAGE_ID,
        recipient=CUSTOMER,
        event_id="evt-replayed",
    )
    body = json.dumps(payload)

    first = client.post(URL, data=body, content_type="application/json")
    second = client.post(URL, data=body, content_type="application/json")

    assert (first.status_code, second.status_code) == (200, 200)
    assert TrackingEvent.objects.count() == 1
    assert tracking_steps(attempt.delivery) == [("tracking_opened", "", "")]


@pytest.mark.django_db
@pytest.mark.parametrize("bcc_first", [True, False], ids=["bcc-first", "customer-first"])
def test_bcc_delivered_never_hides_the_customer_bounce(client, attempt, bcc_first):
    events = [
        {"event": "delivered", "recipient": BCC, "event_id": "evt-bcc-delivered"},
        {"event": "failed", "recipient": CUSTOMER, "event_id": "evt-customer-bounced"},
    ]
    for event in events if bcc_first else reversed(events):
        assert post(client, **event).status_code == 200

    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == State.BOUNCED
    assert TrackingEvent.objects.count() == 2
    changes = [step for step in tracking_steps(delivery) if step[1]]
    assert changes == [("tracking_bounced", "sent", "bounced")]
    bcc_row = DeliveryEvent.objects.get(delivery=delivery, step="tracking_delivered")
    assert "not the invoice recipient" in bcc_row.message
    bounced = BillingEvent.objects.get(name="email_bounced")
    assert bounced.dimensions["recipient"] == CUSTOMER
    assert bounced.dimensions["stripe_invoice_id"] == delivery.stripe_invoice_id


@pytest.mark.django_db
def test_ids_from_an_anymail_send_match_mailgun_webhooks_for_the_same_message(client, mailgun):
    message = AnymailMessage(
        subject="Invoice 7FE1103-0001",
        body="Your invoice is attached.",
        from_email=settings.BILLING_FROM_EMAIL,
        to=[CUSTOMER],
        bcc=[BCC],
    )
    message_id = invoice_email_send(message)
    attempt = EmailAttemptFactory(
        delivery=InvoiceDeliveryFactory(sent=True, mailgun_message_id=message_id),
        recipient=CUSTOMER,
        status="sent",
        mailgun_message_id=message_id,
    )

    for event, recipient in (("failed", CUSTOMER), ("delivered", BCC)):
        payload = mailgun.tracking_payload(event=event, recipient=recipient)
        response = client.post(URL, data=json.dumps(payload), content_type="application/json")
        assert response.status_code == 200

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.BOUNCED
    assert TrackingEvent.objects.filter(delivery=attempt.delivery).count() == 2


@pytest.mark.django_db
def test_customer_bounce_after_delivered_ends_bounced_and_late_delivered_does_not_undo_it(
    client, attempt
):
    post(client, event="delivered", event_id="evt-1")
    post(client, event="failed", event_id="evt-2")
    post(client, event="delivered", event_id="evt-3")

    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == State.BOUNCED
    assert [step for step in tracking_steps(delivery) if step[1]] == [
        ("tracking_delivered", "sent", "delivered"),
        ("tracking_bounced", "delivered", "bounced"),
    ]


@pytest.mark.django_db
def test_bcc_bounce_leaves_the_customer_state_alone(client, attempt):
    post(client, event="delivered", event_id="evt-customer")
    post(client, event="failed", recipient=BCC, event_id="evt-bcc-bounce")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.DELIVERED
    assert not BillingEvent.objects.filter(name="email_bounced").exists()


@pytest.mark.django_db
def test_temporary_failure_keeps_the_state_and_adds_a_timeline_row(client, attempt):
    response = post(
        client, event="failed", extra={"severity": "temporary"}, event_id="evt-deferred"
    )

    assert response.status_code == 200
    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == State.SENT
    assert TrackingEvent.objects.get().event_type == "deferred"
    assert tracking_steps(delivery) == [("tracking_deferred", "", "")]
    assert not BillingEvent.objects.filter(name="email_bounced").exists()


@pytest.mark.django_db
def test_mailgun_rejection_counts_as_a_bounce(client, attempt):
    post(client, event="rejected", event_id="evt-rejected")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.BOUNCED


@pytest.mark.django_db
def test_complaint_wins_over_delivered_in_either_order(client, attempt):
    post(client, event="complained", event_id="evt-complained")
    post(client, event="delivered", event_id="evt-delivered")

    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == State.COMPLAINED
    assert [step for step in tracking_steps(delivery) if step[1]] == [
        ("tracking_complained", "sent", "complained")
    ]
    complained = BillingEvent.objects.get(name="email_complained")
    assert complained.dimensions["account_id"] == delivery.account.acct_id


@pytest.mark.django_db
def test_complaint_after_delivered_moves_to_complained(client, attempt):
    post(client, event="delivered", event_id="evt-delivered")
    post(client, event="complained", event_id="evt-complained")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.COMPLAINED


@pytest.mark.django_db
def test_opened_sets_opened_at_once_and_keeps_the_state(client, attempt):
    post(client, event="opened", event_id="evt-open-1", timestamp=SENT_AT + 60)
    post(client, event="opened", event_id="evt-open-2", timestamp=SENT_AT + 3600)

    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.opened_at == datetime(2026, 3, 1, 6, 1, tzinfo=UTC)
    assert delivery.state == State.SENT
    assert tracking_steps(delivery) == [("tracking_opened", "", ""), ("tracking_opened", "", "")]


@pytest.mark.django_db
def test_bcc_open_is_not_the_customer_opening(client, attempt):
    post(client, event="opened", recipient=BCC, event_id="evt-bcc-open")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.opened_at is None
    assert tracking_steps(attempt.delivery) == [("tracking_opened", "", "")]


@pytest.mark.django_db
def test_recipient_matches_whatever_the_case_or_display_name(client):
    attempt = EmailAttemptFactory(
        delivery=InvoiceDeliveryFactory(sent=True),
        recipient="Northwind AP <AP@Northwind.Example>",
        status="sent",
        mailgun_message_id=MESSAGE_ID,
    )

    post(client, event="failed", recipient=CUSTOMER, event_id="evt-case")

    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.BOUNCED


@pytest.mark.django_db
def test_unknown_message_id_is_kept_without_a_delivery(client, attempt):
    response = post(
        client, message_id="<20260301.other@notify.adventive.com>", event_id="evt-unknown"
    )

    assert response.status_code == 200
    row = TrackingEvent.objects.get()
    assert (row.delivery_id, row.attempt_id) == (None, None)
    assert row.message_id == "<20260301.other@notify.adventive.com>"
    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.SENT
    assert tracking_steps(attempt.delivery) == []


@pytest.mark.django_db
def test_bad_signature_is_rejected_and_nothing_is_stored(client, attempt):
    payload = signed_tracking_payload(
        "not-the-signing-key", event="failed", message_id=MESSAGE_ID, recipient=CUSTOMER
    )

    response = client.post(URL, data=json.dumps(payload), content_type="application/json")

    assert response.status_code == 400
    assert not TrackingEvent.objects.exists()
    attempt.delivery.refresh_from_db()
    assert attempt.delivery.state == State.SENT


@pytest.mark.django_db
def test_tampered_body_fails_the_signature(client, attempt):
    payload = signed_tracking_payload(
        settings.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"],
        event="delivered",
        message_id=MESSAGE_ID,
        recipient=CUSTOMER,
    )
    payload["signature"]["timestamp"] = str(int(payload["signature"]["timestamp"]) + 1)

    response = client.post(URL, data=json.dumps(payload), content_type="application/json")

    assert response.status_code == 400
    assert not TrackingEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("known", [True, False], ids=["known-message", "unknown-message"])
def test_concurrent_duplicates_keep_one_row(known):
    message_id = MESSAGE_ID if known else "<20260301.nobody@notify.adventive.com>"
    attempt = EmailAttemptFactory(
        delivery=InvoiceDeliveryFactory(sent=True),
        recipient=CUSTOMER,
        status="sent",
        mailgun_message_id=MESSAGE_ID,
    )
    barrier = threading.Barrier(2)
    results: list[TrackingEvent | None] = []
    errors: list[Exception] = []

    def record() -> None:
        try:
            barrier.wait()
            results.append(
                tracking_event_record(
                    event_id="evt-concurrent",
                    event_type="delivered",
                    message_id=message_id,
                    recipient=CUSTOMER,
                    occurred_at=datetime(2026, 3, 1, 6, 0, 5, tzinfo=UTC),
                    data={},
                )
            )
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result is None for result in results) == [False, True]
    assert TrackingEvent.objects.count() == 1
    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.state == (State.DELIVERED if known else State.SENT)
    assert len(tracking_steps(delivery)) == (1 if known else 0)
