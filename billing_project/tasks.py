"""Task-queue entry points of the shared core. Each is safe to run more than once."""

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Success

from .alerts import alert_deliver
from .db_recovery import when_database_answers
from .models import WorkerHeartbeat
from .stripe_mirror import stripe_mirror_update, stripe_mirrors_resume
from .webhook_intake import webhook_trigger_process, webhook_triggers_resume

HEARTBEAT_NAME = "qcluster"


def worker_heartbeat_task() -> None:
    """Record that a worker is alive and executing tasks (read by /healthz)."""
    WorkerHeartbeat.objects.update_or_create(
        name=HEARTBEAT_NAME,
        defaults={"beat_at": timezone.now(), "host": socket.gethostname(), "pid": os.getpid()},
    )


def alert_deliver_task(alert_id: int) -> None:
    """Deliver one alert to the channels that do not have it yet."""
    alert_deliver(alert_id=alert_id)


def webhook_trigger_process_task(trigger_id: int) -> None:
    """Record one stored Stripe webhook's event and run our handlers (once); a database
    restart mid-way is waited out and the trigger handled as soon as the database answers."""
    when_database_answers(
        lambda: webhook_trigger_process(trigger_id=trigger_id), what=f"webhook {trigger_id}"
    )


def stripe_mirror_update_task(event_id: str) -> str:
    """dj-stripe's copy of one event's objects (once; failures retried with backoff)."""
    return stripe_mirror_update(event_id=event_id)


def webhook_triggers_resume_task() -> int:
    """Re-enqueue Stripe webhooks whose handling failed or was lost, and due mirrors."""
    return webhook_triggers_resume() + stripe_mirrors_resume()


def task_results_prune_task() -> int:
    """Delete successful task results older than `TASK_RESULTS_KEEP_DAYS` (failures stay)."""
    cutoff = timezone.now() - timedelta(days=settings.TASK_RESULTS_KEEP_DAYS)
    deleted, _ = Success.objects.filter(stopped__lt=cutoff).delete()
    return deleted


def monitor_check_task(name: str) -> bool:
    """Take one monitor's reading (see `billing_project.monitoring`)."""
    from .monitoring import monitor_check

    return bool(monitor_check(name=name).ok)


def retention_prune_task() -> str:
    """Delete archived webhook triggers and old datapoints (see `billing_project.retention`)."""
    from .retention import retention_prune

    report = retention_prune()
    return (
        f"{report.triggers_deleted} triggers deleted, {report.triggers_waiting_for_archive} "
        f"waiting for the event archive, {report.datapoints_deleted} datapoints deleted"
    )
