"""Retention: webhook trigger rows once their day is in the Stripe event archive, and old
datapoints (their JSON log lines are the long-term copy).

A trigger is the raw body Stripe posted; the event itself is kept in the archive
(`events/<yyyy>/<mm>/<dd>.jsonl.gz`, written by `export_stripe_events`). A trigger is deleted
only when it is older than `RETENTION_WEBHOOK_TRIGGER_DAYS`, is finished (processed, or never
valid) and the archive has a file for its day written after that day ended.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from .models import BillingEvent


@dataclass(frozen=True)
class RetentionReport:
    triggers_deleted: int
    triggers_waiting_for_archive: int
    datapoints_deleted: int


def archived_event_days(first: date, last: date) -> set[date]:
    """Days whose Stripe event file was written (or confirmed) after the day ended."""
    from exports.models import ExportFile, ExportRun

    days = set()
    files = ExportFile.objects.filter(
        run__kind=ExportRun.Kind.EVENTS,
        run__status__in=[ExportRun.Status.SUCCEEDED, ExportRun.Status.PROBLEMS],
        key__startswith="events/",
        period__gte=f"{first:%Y-%m-%d}",
        period__lte=f"{last:%Y-%m-%d}",
    ).values_list("period", "recorded_at")
    for period, recorded_at in files:
        try:
            day = date.fromisoformat(period)
        except ValueError:
            continue
        if recorded_at >= datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC):
            days.add(day)
    return days


def retention_prune(*, now: datetime | None = None) -> RetentionReport:
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_WEBHOOK_TRIGGER_DAYS)
    finished = WebhookEventTrigger.objects.filter(created__lt=cutoff).filter(
        Q(processed=True) | Q(valid=False)
    )
    oldest = finished.order_by("created").values_list("created", flat=True).first()
    triggers_deleted = waiting = 0
    if oldest is not None:
        archived = archived_event_days(oldest.date(), cutoff.date())
        for day in sorted(
            {created.date() for created in finished.values_list("created", flat=True)}
        ):
            start = datetime.combine(day, time(), tzinfo=UTC)
            on_day = finished.filter(created__gte=start, created__lt=start + timedelta(days=1))
            if day in archived:
                triggers_deleted += on_day.delete()[0]
            else:
                waiting += on_day.count()
    datapoint_cutoff = now - timedelta(days=settings.RETENTION_DATAPOINT_DAYS)
    datapoints_deleted = BillingEvent.objects.filter(occurred_at__lt=datapoint_cutoff).delete()[0]
    return RetentionReport(triggers_deleted, waiting, datapoints_deleted)
