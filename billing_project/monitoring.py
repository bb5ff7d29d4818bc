"""Monitors the deployment document asks for, beyond what alerts on its own (PDF render
failures, drift): Stripe marking our webhook endpoint disabled, and the worker's task error
rate. Each reading is kept in `Monitor` (admin page "Monitors"), logged as a JSON line, and
alerts operations when a condition turns bad (once, not on every check while it stays bad).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Task
from djstripe.models import WebhookEndpoint

from .alerts import alert_raise
from .models import Monitor
from .stripe_api import StripeApiError
from .stripe_webhook import webhook_endpoint_remote_status
from .webhook_intake import ENDPOINT_MONITOR

logger = logging.getLogger("billing.monitoring")

TASK_ERRORS_MONITOR = "task_error_rate"
TASK_ERROR_WINDOW = timedelta(hours=1)
TASK_ERROR_RATE_LIMIT_PERCENT = 1


@dataclass(frozen=True)
class Reading:
    ok: bool
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


def stripe_endpoint_read() -> Reading:
    """Is our webhook endpoint registered in Stripe and enabled there?"""
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID).first()
    if endpoint is None:
        return Reading(False, "no webhook endpoint recorded (run setup_webhook_endpoint)")
    if not endpoint.id.startswith("we_") or endpoint.id.startswith("we_unregistered_"):
        return Reading(
            False,
            "the webhook endpoint is not registered in Stripe (setup_webhook_endpoint --register)",
            {"endpoint": endpoint.id},
        )
    try:
        status = webhook_endpoint_remote_status(endpoint.id)
    except StripeApiError as exc:
        return Reading(False, f"Stripe could not be asked: {exc}", {"endpoint": endpoint.id})
    if status != "enabled":
        return Reading(
            False,
            f"Stripe reports the webhook endpoint {status}: events are not being delivered; "
            "re-enable it and replay from the events API (docs/operations.md)",
            {"endpoint": endpoint.id, "status": status},
        )
    return Reading(True, "enabled in Stripe", {"endpoint": endpoint.id, "status": status})


def task_error_rate_read(*, now=None) -> Reading:
    """Share of worker tasks that failed over the last hour (above 1 % is bad)."""
    now = now or timezone.now()
    recent = Task.objects.filter(stopped__gte=now - TASK_ERROR_WINDOW)
    total = recent.count()
    failed = recent.filter(success=False).count()
    detail = {"tasks": total, "failed": failed}
    if total == 0:
        return Reading(True, "no tasks in the last hour", detail)
    if failed * 100 > total * TASK_ERROR_RATE_LIMIT_PERCENT:
        return Reading(
            False,
            f"{failed} of {total} worker tasks failed in the last hour "
            f"({failed * 100 / total:.1f} %, limit {TASK_ERROR_RATE_LIMIT_PERCENT} %)",
            detail,
        )
    return Reading(True, f"{failed} of {total} worker tasks failed in the last hour", detail)


MONITORS: dict[str, Callable[[], Reading]] = {
    ENDPOINT_MONITOR: stripe_endpoint_read,
    TASK_ERRORS_MONITOR: task_error_rate_read,
}


def monitor_record(*, name: str, reading: Reading) -> Monitor:
    """Store a reading; alert operations when the condition turns bad. Idempotent per state."""
    now = timezone.now()
    with transaction.atomic():
        monitor, _ = Monitor.objects.select_for_update().get_or_create(name=name)
        turned_bad = reading.ok is False and monitor.ok is not False
        if monitor.ok is not reading.ok:
            monitor.changed_at = now
        monitor.ok = reading.ok
        monitor.summary = reading.summary[:300]
        monitor.detail = reading.detail
        monitor.checked_at = now
        monitor.save()
        if turned_bad:
            alert_raise(
                route="operations",
                title=f"Monitor {name}: {reading.summary}",
                dimensions={"monitor": name, **reading.detail},
            )
    logger.log(
        logging.INFO if reading.ok else logging.WARNING,
        "monitor %s: %s",
        name,
        reading.summary,
        extra={"monitor": name, "ok": reading.ok, **reading.detail},
    )
    return monitor


def monitor_check(*, name: str) -> Monitor:
    return monitor_record(name=name, reading=MONITORS[name]())
