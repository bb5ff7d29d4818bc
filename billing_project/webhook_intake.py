"""Stripe webhook intake: verify and store in the request, process in the worker.

dj-stripe's own view verifies the signature and then syncs the event's objects from Stripe
(customer, invoice, subscription: several API calls and about ninety SQL statements) inside the
request. Under a burst of events that delays every acknowledgement; here the request only
verifies and stores the trigger row and enqueues it, and a task runs dj-stripe's processing
(re-fetch at the pinned API version, the `Event` row, our receivers). The task row is written
through the ORM broker on the same connection, so it commits together with the trigger.

django-q2 does not retry a task that raised, and Stripe no longer retries once we answered 200,
so a trigger whose processing failed (or whose task was lost) is resumed by
`webhook_triggers_resume` (every minute) for as long as Stripe itself would have retried
(three days), with an operations alert when it first fails.
"""

import logging
from datetime import timedelta
from traceback import format_exc

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django_q.tasks import async_task
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.settings import djstripe_settings

from .alerts import alert_raise

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
    """dj-stripe's processing of one stored trigger; a processed trigger is left alone.

    A duplicate of an event already processed finds dj-stripe's `Event` row and does nothing.
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
        .exclude(exception="")
        .exclude(pk=trigger.pk)
        .exists()
    )
    try:
        with transaction.atomic():
            trigger.process(save=True, api_key=_api_key(trigger))
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
