"""Task-queue entry points for invoice delivery. Each is safe to run more than once."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .models import InvoiceDelivery
from .services import WORK_STATES, delivery_enqueue, delivery_process, delivery_resend

STUCK_AFTER = timedelta(minutes=10)


def delivery_process_task(delivery_id: int) -> str:
    """Advance one delivery (render, store, send); concurrent runs do the work once."""
    return delivery_process(delivery_id=delivery_id).state


def delivery_resend_task(delivery_id: int, request_key: str, user_id: int | None = None) -> str:
    """An operator's re-send; the request key makes a retried task send at most once."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return delivery_resend(delivery_id=delivery_id, request_key=request_key, by=user).status


def delivery_sweep_task() -> int:
    """Resume deliveries that are due a retry or were left mid-way by a crashed worker."""
    now = timezone.now()
    due = (
        InvoiceDelivery.objects.filter(state__in=WORK_STATES)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, updated_at__lt=now - STUCK_AFTER)
            # A lease is released when its holder finishes: one that ran out means the worker
            # holding it died mid-way, so its delivery resumes now.
            | Q(lease_until__lt=now)
        )
        .values_list("pk", flat=True)[:200]
    )
    count = 0
    for delivery_id in due:
        delivery_enqueue(delivery_id)
        count += 1
    return count


def delivery_outcomes_lookup_task() -> dict:
    """Ask Mailgun for the outcomes the tracking webhook did not bring (safe to re-run)."""
    from .outcomes import delivery_outcomes_lookup

    report = delivery_outcomes_lookup()
    return {"asked": report.asked, "applied": report.applied, "unavailable": report.unavailable}
