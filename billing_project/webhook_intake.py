"""Stripe webhook intake: verify and store in the request, handle in the worker.

dj-stripe's own view verifies the signature and then syncs the event's objects from Stripe
(customer, invoice, subscription: several API calls and about ninety SQL statements) inside the
request. Here the request only verifies and stores the trigger row and enqueues it (the task
row is written through the ORM broker on the same connection, so both commit together).

The task then, in one transaction and without any network call: records dj-stripe's `Event`
row (a duplicate event id is dropped there), runs our handlers from the event as Stripe signed
it (`billing_project.stripe_events`), and notes that dj-stripe's mirror of the event's objects
is due. The mirror (`billing_project.stripe_mirror`) runs as its own task: when it fails
(a shape dj-stripe cannot read, Stripe unavailable), it is alerted and retried on its own,
and no delivery waits for it.

django-q2 does not retry a task that raised, and Stripe no longer retries once we answered 200,
so a trigger whose handling failed (or whose task was lost) is resumed by
`webhook_triggers_resume` (every minute) for as long as Stripe itself would have retried
(three days), with an operations alert when it first fails.
"""

import logging
from datetime import timedelta
from traceback import format_exc

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django_q.tasks import async_task
from djstripe.models import Account, Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.settings import djstripe_settings

from .alerts import alert_raise
from .stripe_events import stripe_event_dispatch
from .stripe_mirror import stripe_mirror_record

logger = logging.getLogger("billing.webhooks")

PROCESS_TASK = "billing_project.tasks.webhook_trigger_process_task"
MONITOR_TASK = "billing_project.tasks.monitor_check_task"
ENDPOINT_MONITOR = "stripe_webhook_endpoint"
RETRY_AFTER = timedelta(minutes=1)
# Longer than a burst's queue could hold a trigger: no task of its own is still pending.
LOST_AFTER = timedelta(minutes=30)
RESUME_WINDOW = timedelta(days=3)
RESUME_BATCH = 1000
EXCEPTION_MAX_LENGTH = WebhookEventTrigger._meta.get_field("exception").max_length


def _api_key(trigger: WebhookEventTrigger) -> str:
    account = trigger.stripe_trigger_account
    return (account.default_api_key if account else None) or djstripe_settings.get_default_api_key(
        trigger.webhook_endpoint.livemode
    )


def webhook_trigger_enqueue(trigger_id: int) -> None:
    async_task(PROCESS_TASK, trigger_id, task_name=f"stripe-webhook-{trigger_id}")


def webhook_trigger_record(
    *, request: HttpRequest, endpoint: WebhookEndpoint
) -> WebhookEventTrigger:
    """Verify what Stripe posted (dj-stripe's check); store and enqueue it only if valid.

    A post that fails verification is logged (address, reason) and never stored, so nobody
    can fill the database by posting to the endpoint; the returned trigger is then unsaved.
    """
    trigger = WebhookEventTrigger(
        headers=dict(request.headers),
        body=request.body.decode(request.encoding or "utf-8", errors="replace"),
        remote_ip=get_remote_ip(request),
        stripe_trigger_account=endpoint.djstripe_owner_account,
        webhook_endpoint=endpoint,
    )
    trigger.valid = trigger.validate(secret=endpoint.secret, api_key=_api_key(trigger))
    if not trigger.valid:
        logger.warning(
            "stripe webhook refused: signature or payload not valid",
            extra={"remote_ip": trigger.remote_ip, "body_bytes": len(request.body)},
        )
        return trigger
    trigger.save()
    webhook_trigger_enqueue(trigger.pk)
    return trigger


def webhook_trigger_process(*, trigger_id: int) -> None:
    """Handle one stored trigger once; a processed trigger is left alone.

    A duplicate of an event already handled finds dj-stripe's `Event` row and does nothing.
    On failure the error is kept on the trigger (and alerted the first time) and re-raised.
    """
    trigger = WebhookEventTrigger.objects.select_related(
        "webhook_endpoint", "stripe_trigger_account"
    ).get(pk=trigger_id)
    if trigger.processed or not trigger.valid:
        return
    first_failure = not trigger.exception
    # One alert per outage, not per event: only when no other trigger is failing already.
    outage_known = (
        WebhookEventTrigger.objects.filter(valid=True, processed=False)
        .exclude(pk=trigger.pk)
        .exclude(exception="")
        .exists()
    )
    try:
        _handle(trigger)
    except Exception as exc:
        trigger.exception = str(exc)[:EXCEPTION_MAX_LENGTH] or type(exc).__name__
        trigger.traceback = format_exc()
        trigger.save(update_fields=["exception", "traceback", "updated"])
        if first_failure and not outage_known:
            event = trigger.json_body
            alert_raise(
                route="operations",
                title=f"Stripe webhook {event.get('type', '?')} could not be processed",
                body=(
                    f"Trigger {trigger.pk} (event {event.get('id', '?')}): {trigger.exception}. "
                    "It is retried every minute for three days."
                ),
                dimensions={"trigger_id": trigger.pk, "event_id": event.get("id", "")},
            )
            # Stripe disables an endpoint that keeps failing: look at its status now.
            async_task(MONITOR_TASK, ENDPOINT_MONITOR, task_name="monitor-after-webhook-error")
        raise


def _handle(trigger: WebhookEventTrigger) -> None:
    api_key = _api_key(trigger)
    # dj-stripe links the Event to the key's Stripe account, read from Stripe once and kept:
    # before the transaction, never inside it.
    Account.get_or_retrieve_for_api_key(api_key)
    with transaction.atomic():
        event = stripe_event_handle(event=trigger.json_body, api_key=api_key)
        trigger.event = event
        trigger.processed = True
        trigger.exception = trigger.traceback = ""
        trigger.save()


def stripe_event_handle(*, event: dict, api_key: str | None = None) -> Event:
    """Record a verified event (dj-stripe's `Event` row) and run our handlers, once per event
    id; dj-stripe's mirror of its objects is queued for after commit. No network call, except
    dj-stripe's one-time read of the key's Stripe account, done before any transaction."""
    api_key = api_key or djstripe_settings.get_default_api_key(bool(event.get("livemode")))
    if not transaction.get_connection().in_atomic_block:
        Account.get_or_retrieve_for_api_key(api_key)
    with transaction.atomic():
        recorded, new = _event_record(event, api_key)
        if new:
            stripe_event_dispatch(event)
            stripe_mirror_record(event_id=recorded.id, event_type=recorded.type)
    return recorded


def _event_record(data: dict, api_key: str) -> tuple[Event, bool]:
    """dj-stripe's Event row for this event, without dj-stripe's handlers; new or not."""
    existing = Event.objects.filter(id=data["id"]).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Event._create_from_stripe_object(data, api_key=api_key), True
    except IntegrityError:  # the same event, handled concurrently by another trigger
        return Event.objects.get(id=data["id"]), False


def webhook_triggers_resume(*, now=None) -> int:
    """Re-enqueue valid triggers left unprocessed: failed a minute ago, or never run."""
    now = now or timezone.now()
    failed = ~Q(exception="") & Q(updated__lt=now - RETRY_AFTER)
    lost = Q(created__lt=now - LOST_AFTER)
    stuck = (
        WebhookEventTrigger.objects.filter(
            valid=True, processed=False, created__gte=now - RESUME_WINDOW
        )
        .filter(failed | lost)
        .values_list("pk", flat=True)
    )
    # Read the ids first: enqueueing closes an old database connection (django-q2), which
    # would cut a server-side cursor short.
    trigger_ids = list(stuck[:RESUME_BATCH])
    for trigger_id in trigger_ids:
        webhook_trigger_enqueue(trigger_id)
    return len(trigger_ids)
