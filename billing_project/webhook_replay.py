"""Replay from Stripe's events API: the events Stripe holds (30 days) that we never processed.

For an endpoint Stripe disabled, or any gap in deliveries. Each missing event is stored as a
trigger, exactly as if Stripe had posted it, and goes through the same task; an event we already
hold (dj-stripe's `Event` row, or a trigger still waiting) is skipped, so a replay is safe to
repeat and to run while webhooks arrive.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from . import stripe_api
from .stripe_webhook import ENABLED_EVENTS
from .webhook_intake import webhook_trigger_enqueue

REPLAY_HEADER = "X-Billing-Replayed-From"


@dataclass
class ReplayReport:
    seen: int = 0
    replayed: list[str] = field(default_factory=list)
    already_held: int = 0


def stripe_events_since(since: datetime) -> list[dict]:
    """Our endpoint's event types created since `since`, oldest first. Network calls."""
    found = list(
        stripe_api.pages(
            "/v1/events", created={"gte": int(since.timestamp())}, types=ENABLED_EVENTS
        )
    )
    return sorted(found, key=lambda event: (event["created"], event["id"]))


def _pending_event_ids() -> set[str]:
    pending = WebhookEventTrigger.objects.filter(valid=True, processed=False).values_list(
        "body", flat=True
    )
    ids = set()
    for body in pending:
        try:
            ids.add(json.loads(body)["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def stripe_events_replay(
    *, since: datetime, dry_run: bool = False, progress: Callable[[str], None] | None = None
) -> ReplayReport:
    """Store and enqueue every event since `since` that we do not hold yet."""
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID).first()
    if endpoint is None:
        raise ValueError("no webhook endpoint recorded: run setup_webhook_endpoint first")
    events = stripe_events_since(since)
    report = ReplayReport(seen=len(events))
    held = set(Event.objects.filter(id__in=[e["id"] for e in events]).values_list("id", flat=True))
    held |= _pending_event_ids()
    for index, event in enumerate(events, start=1):
        if event["id"] in held:
            report.already_held += 1
            continue
        report.replayed.append(event["id"])
        if progress:
            progress(f"{index}/{len(events)} {event['id']} {event['type']}")
        if dry_run:
            continue
        with transaction.atomic():
            trigger = WebhookEventTrigger.objects.create(
                headers={REPLAY_HEADER: "stripe events API"},
                # Stripe writes decimal fields as JSON strings; stripe-python reads them as Decimal.
                body=json.dumps(event, default=str),
                remote_ip="127.0.0.1",
                valid=True,  # read from Stripe with our own key
                stripe_trigger_account=endpoint.djstripe_owner_account,
                webhook_endpoint=endpoint,
            )
            webhook_trigger_enqueue(trigger.pk)
    return report
