"""Delivery outcomes asked of Mailgun, for what the tracking webhook did not bring.

Mailgun retries a failed webhook post for hours, except delivery notifications, which it
never retries: one lost `delivered` post would leave an invoice `sent` forever. So a scheduled
task asks Mailgun's events API (with its documented filters only: `message-id`, `event`,
`tags`, `severity` and a time window) about

- every email `sent` for at least `BILLING_OUTCOME_LOOKUP_AFTER_SECONDS` without a final
  outcome (delivered, bounced, complained), for as long as Mailgun keeps its events, at most
  `BILLING_OUTCOME_LOOKUP_BATCH` a run, least recently asked first (so emails that never get
  an outcome do not starve newer ones), and
- the recent permanent failures and complaints of our invoice emails, which may follow a
  `delivered` (a late bounce, a spam complaint).

What it finds goes through `tracking_event_apply`, the path of the webhook itself: kept once
(the same event from both is applied once), only the `to` recipient moves the state, and states
only move forward. The timeline and the tracking-event list say which source each came from.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .mailgun import (
    CLOCK_SKEW_SECONDS,
    EVENTS_PAGE_LIMIT,
    MailgunUnavailable,
    mailgun_backend_in_use,
    mailgun_events,
)
from .models import EmailAttempt, InvoiceDelivery, TrackingEvent
from .tracking import mailgun_event_key, tracking_event_apply

logger = logging.getLogger("billing.invoices")

State = InvoiceDelivery.State
# Mailgun keeps events for at least 3 days on every plan: an outcome older than that is gone.
LOOKUP_FOR = timedelta(days=3)
OUTCOME_EVENTS = "delivered OR failed OR rejected OR complained"


@dataclass
class OutcomeLookupReport:
    asked: int = 0
    applied: int = 0
    unavailable: list[str] = field(default_factory=list)


def delivery_outcomes_lookup(*, now: datetime | None = None) -> OutcomeLookupReport:
    """Ask Mailgun about sent emails without an outcome and about recent failures; apply them.

    Safe to run at any time and concurrently: every event is kept once. A Mailgun that does
    not answer leaves everything as it was, for the next run.
    """
    report = OutcomeLookupReport()
    if not mailgun_backend_in_use():
        return report
    now = now or timezone.now()
    for attempt in _attempts_without_outcome(now):
        report.asked += 1
        begin = attempt.sent_at - timedelta(seconds=CLOCK_SKEW_SECONDS)
        query = {
            "message-id": attempt.mailgun_message_id.strip("<>"),
            "event": OUTCOME_EVENTS,
            **_window(begin, now),
        }
        if _apply_all(query, report):
            EmailAttempt.objects.filter(pk=attempt.pk).update(outcome_asked_at=now)
    recent = now - timedelta(seconds=settings.BILLING_OUTCOME_RECENT_SECONDS)
    for query in (
        {"event": "failed", "severity": "permanent", "tags": "invoice"},
        {"event": "complained", "tags": "invoice"},
    ):
        _apply_all({**query, **_window(recent, now)}, report)
    return report


def _attempts_without_outcome(now: datetime) -> list[EmailAttempt]:
    settled = now - timedelta(seconds=settings.BILLING_OUTCOME_LOOKUP_AFTER_SECONDS)
    return list(
        EmailAttempt.objects.filter(
            status=EmailAttempt.Status.SENT,
            delivery__state=State.SENT,
            sent_at__lte=settled,
            sent_at__gte=now - LOOKUP_FOR,
        )
        .exclude(mailgun_message_id="")
        .exclude(mailgun_message_id__startswith="local-")
        .order_by(F("outcome_asked_at").asc(nulls_first=True), "sent_at", "id")[
            : settings.BILLING_OUTCOME_LOOKUP_BATCH
        ]
    )


def _window(begin: datetime, now: datetime) -> dict[str, str]:
    end = now + timedelta(seconds=CLOCK_SKEW_SECONDS)
    return {
        "begin": str(int(begin.timestamp())),
        "end": str(int(end.timestamp())),
        "ascending": "yes",
        "limit": str(EVENTS_PAGE_LIMIT),
    }


def _apply_all(query: dict[str, str], report: OutcomeLookupReport) -> bool:
    """Apply every event Mailgun lists for `query`; False when Mailgun did not answer."""
    parser = MailgunTrackingWebhookView(webhook_signing_key="unused: events are not signed")
    try:
        for item in mailgun_events(query):
            key = mailgun_event_key(item)
            if key is None or TrackingEvent.objects.filter(mailgun_event_key=key).exists():
                continue
            event = parser.esp_to_anymail_event({"event-data": item})
            if tracking_event_apply(
                event=event, source=TrackingEvent.Source.LOOKUP, event_id=f"lookup:{key}"
            ):
                report.applied += 1
    except MailgunUnavailable as exc:
        logger.warning("Mailgun outcome lookup unavailable", extra={"error": str(exc)})
        report.unavailable.append(str(exc))
        return False
    return True
