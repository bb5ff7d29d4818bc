"""Mailgun tracking events (through Anymail): delivery outcomes for our invoice emails.

They arrive by the tracking webhook and, for what the webhook missed, by asking Mailgun
(`invoices.outcomes`); both go through `tracking_event_apply`.

Anymail checks the webhook's signature but not replays, and Mailgun redelivers a webhook until
it is answered, so each event is kept once on its `event_id` (the signature token). Only the
invoice's `to` recipient moves the delivery's state: the HubSpot BCC has its own deliveries and
bounces, and its `delivered` must never hide the customer's bounce. Outcomes only move forward
(sent < delivered < bounced < complained), so events arriving out of order end the same way.
"""

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import QueryDict
from django.utils import timezone

from billing_project.datapoints import datapoint_record

from .mailgun import normalise_message_id
from .models import EmailAttempt, InvoiceDelivery, TrackingEvent
from .services import delivery_event_add

logger = logging.getLogger("billing.invoices")

State = InvoiceDelivery.State

# What the `to` recipient's event says about the delivery, and how strongly: a state is only
# ever replaced by a stronger one. A complaint proves the message arrived, so it outranks a bounce.
OUTCOMES: dict[str, str] = {
    EventType.DELIVERED: State.DELIVERED,
    EventType.BOUNCED: State.BOUNCED,
    EventType.REJECTED: State.BOUNCED,
    EventType.COMPLAINED: State.COMPLAINED,
}
RANK: dict[str, int] = {State.SENT: 0, State.DELIVERED: 1, State.BOUNCED: 2, State.COMPLAINED: 3}
DATAPOINTS: dict[str, str] = {State.BOUNCED: "email_bounced", State.COMPLAINED: "email_complained"}


@receiver(tracking, dispatch_uid="invoices.tracking.mailgun_tracking_received")
def mailgun_tracking_received(
    sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> None:
    """Record one Mailgun tracking event; other ESPs are not ours to read."""
    if esp_name != "Mailgun":
        return
    tracking_event_apply(event=event, source=TrackingEvent.Source.WEBHOOK)


def tracking_event_apply(
    *, event: AnymailTrackingEvent, source: str, event_id: str | None = None
) -> TrackingEvent | None:
    """The one path for a Mailgun event, from the webhook or from asking Mailgun.

    Anymail's event (its types, recipient, message id) is kept once and applied to its delivery:
    deduplicated on `event_id` and on Mailgun's own event id, so the same event reported by the
    webhook and by a lookup moves the delivery once; only the `to` recipient moves the state;
    states only move forward. Returns None for an event already kept.
    """
    mailgun_data = _mailgun_event_data(event.esp_event)
    return tracking_event_record(
        event_id=event_id or event.event_id,
        event_type=event.event_type,
        message_id=event.message_id or "",
        recipient=event.recipient or "",
        occurred_at=event.timestamp or timezone.now(),
        source=source,
        mailgun_event_key=mailgun_event_key(mailgun_data),
        data={
            "reject_reason": event.reject_reason,
            "description": event.description,
            "mta_response": event.mta_response,
            "tags": event.tags,
            "metadata": event.metadata,
            "mailgun": mailgun_data,
        },
    )


def mailgun_event_key(event_data: dict[str, Any]) -> str | None:
    """Mailgun's event id with its timestamp's whole seconds (the id alone is unique only
    within a day). The webhook and the events API write the same timestamp with different
    precision (`1765000000.123456`, `1765000000.123`), so only the whole seconds are kept,
    truncated exactly (no float rounding)."""
    event_id, timestamp = event_data.get("id"), event_data.get("timestamp")
    if not event_id or timestamp is None or isinstance(timestamp, bool):
        return None
    try:
        seconds = int(Decimal(str(timestamp).strip()))
    except (InvalidOperation, ValueError):
        return None
    return f"{event_id}@{seconds}"


def tracking_event_record(
    *,
    event_id: str,
    event_type: str,
    message_id: str,
    recipient: str,
    occurred_at: datetime,
    data: dict[str, Any],
    source: str = TrackingEvent.Source.WEBHOOK,
    mailgun_event_key: str | None = None,
) -> TrackingEvent | None:
    """Keep a tracking event once and apply it to its delivery; a replay returns None.

    Idempotent and race-safe on `event_id` and `mailgun_event_key`. An event for a message we
    did not send (or do not know yet) is kept without a delivery rather than refused, so
    Mailgun stops redelivering it.
    """
    message_id = normalise_message_id(message_id) if message_id.strip("<> ") else ""
    with transaction.atomic():
        attempt = (
            EmailAttempt.objects.filter(mailgun_message_id=message_id).order_by("-id").first()
            if message_id
            else None
        )
        delivery = (
            InvoiceDelivery.objects.select_for_update().get(pk=attempt.delivery_id)
            if attempt is not None
            else None
        )
        try:
            with transaction.atomic():
                row = TrackingEvent.objects.create(
                    event_id=event_id,
                    mailgun_event_key=mailgun_event_key,
                    source=source,
                    event_type=event_type,
                    message_id=message_id,
                    recipient=recipient,
                    delivery=delivery,
                    attempt=attempt,
                    occurred_at=occurred_at,
                    data=data,
                )
        except IntegrityError:
            return None
        if attempt is None or delivery is None:
            logger.info(
                "tracking event for an unknown message",
                extra={"event_id": event_id, "event_type": event_type, "message_id": message_id},
            )
            return row
        _apply(delivery, attempt, row)
    return row


def _apply(delivery: InvoiceDelivery, attempt: EmailAttempt, row: TrackingEvent) -> None:
    is_customer = _same_address(row.recipient, attempt.recipient)
    step = f"tracking_{row.event_type}"
    message = row.recipient if is_customer else f"{row.recipient} (not the invoice recipient)"
    details = {
        "event_id": row.event_id,
        "occurred_at": row.occurred_at.isoformat(),
        "source": row.source,
    }
    if row.event_type == EventType.DEFERRED:
        message = f"{message}: temporary failure, Mailgun retries"
    outcome = OUTCOMES.get(row.event_type) if is_customer else None
    previous = delivery.state
    if outcome and RANK.get(previous, len(RANK)) < RANK[outcome]:
        delivery.state = outcome
        delivery.save(update_fields=["state", "updated_at"])
        delivery_event_add(
            delivery=delivery, step=step, message=message, state_from=previous, data=details
        )
        if outcome in DATAPOINTS:
            _outcome_datapoint(delivery, row, outcome)
    else:
        if is_customer and row.event_type == EventType.OPENED and delivery.opened_at is None:
            delivery.opened_at = row.occurred_at
            delivery.save(update_fields=["opened_at", "updated_at"])
        delivery_event_add(delivery=delivery, step=step, message=message, data=details)


def _outcome_datapoint(delivery: InvoiceDelivery, row: TrackingEvent, outcome: str) -> None:
    """A bounce or complaint counted once, when it moves the delivery's state."""
    datapoint_record(
        name=DATAPOINTS[outcome],
        dimensions={
            "account_id": delivery.account.acct_id if delivery.account_id else None,
            "stripe_invoice_id": delivery.stripe_invoice_id,
            "inv_uuid": delivery.inv_uuid,
            "recipient": row.recipient,
            "reason": (row.data or {}).get("reject_reason"),
        },
        at=row.occurred_at,
    )


def _same_address(left: str, right: str) -> bool:
    """Whether two addresses (bare or with a display name) name the same mailbox."""
    return parseaddr(left)[1].casefold() == parseaddr(right)[1].casefold() != ""


def _mailgun_event_data(esp_event: Any) -> dict[str, Any]:
    """Mailgun's own fields: `event-data` of a JSON webhook, the form of a legacy one."""
    if isinstance(esp_event, QueryDict):
        return esp_event.dict()
    if isinstance(esp_event, dict):
        return dict(esp_event.get("event-data") or {})
    return {}


def tracking_events_relink(*, attempt: EmailAttempt) -> int:
    """Apply tracking events that arrived before we knew the message was ours.

    A send interrupted after Mailgun accepted it learns its message id only at recovery; the
    tracking events received meanwhile were kept as unknown and are applied now, in order.
    """
    if not attempt.mailgun_message_id:
        return 0
    with transaction.atomic():
        delivery = InvoiceDelivery.objects.select_for_update().get(pk=attempt.delivery_id)
        rows = list(
            TrackingEvent.objects.select_for_update()
            .filter(message_id=attempt.mailgun_message_id, delivery__isnull=True)
            .order_by("occurred_at", "id")
        )
        for row in rows:
            row.delivery = delivery
            row.attempt = attempt
            row.save(update_fields=["delivery", "attempt"])
            _apply(delivery, attempt, row)
    return len(rows)
