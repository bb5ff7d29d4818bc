"""Retention: webhook triggers go only once their day is archived; old datapoints go."""

from datetime import UTC, datetime, timedelta

import pytest
from djstripe.models import WebhookEventTrigger

from billing_project.models import BillingEvent
from billing_project.retention import retention_prune
from exports.models import ExportFile, ExportRun

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def trigger(days_ago: int, *, processed=True, valid=True) -> WebhookEventTrigger:
    row = WebhookEventTrigger.objects.create(
        body="{}", headers={}, remote_ip="127.0.0.1", valid=valid, processed=processed
    )
    WebhookEventTrigger.objects.filter(pk=row.pk).update(created=NOW - timedelta(days=days_ago))
    return row


def archive(day_ago: int, *, recorded_days_later=1, status=ExportRun.Status.SUCCEEDED) -> None:
    day = (NOW - timedelta(days=day_ago)).date()
    run = ExportRun.objects.create(kind=ExportRun.Kind.EVENTS, status=status)
    row = ExportFile.objects.create(
        run=run,
        key=f"events/{day:%Y/%m/%d}.jsonl.gz",
        period=f"{day}",
        action="written",
        sha256="0" * 64,
    )
    ExportFile.objects.filter(pk=row.pk).update(
        recorded_at=datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        + timedelta(days=recorded_days_later)
    )


def test_old_finished_triggers_go_once_their_day_is_archived(settings):
    settings.RETENTION_WEBHOOK_TRIGGER_DAYS = 90
    archived_old = trigger(100)
    not_archived_old = trigger(101)
    recent = trigger(10)
    unprocessed_old = trigger(100, processed=False)
    invalid_old = trigger(100, processed=False, valid=False)
    archive(100)
    archive(10)

    report = retention_prune(now=NOW)

    left = set(WebhookEventTrigger.objects.values_list("pk", flat=True))
    assert left == {not_archived_old.pk, recent.pk, unprocessed_old.pk}
    assert archived_old.pk not in left and invalid_old.pk not in left
    assert report.triggers_deleted == 2
    assert report.triggers_waiting_for_archive == 1


@pytest.mark.parametrize(
    ("recorded_days_later", "status"),
    [(0, ExportRun.Status.SUCCEEDED), (1, ExportRun.Status.FAILED)],
    ids=["archived before the day ended", "archive run failed"],
)
def test_an_archive_that_may_miss_events_keeps_the_triggers(recorded_days_later, status):
    kept = trigger(120)
    archive(120, recorded_days_later=recorded_days_later, status=status)
    retention_prune(now=NOW)
    assert WebhookEventTrigger.objects.filter(pk=kept.pk).exists()


def test_datapoints_older_than_the_setting_are_deleted(settings):
    settings.RETENTION_DATAPOINT_DAYS = 800
    BillingEvent.objects.create(name="email_sent", occurred_at=NOW - timedelta(days=801))
    BillingEvent.objects.create(name="email_sent", occurred_at=NOW - timedelta(days=799))
    assert retention_prune(now=NOW).datapoints_deleted == 1
    assert BillingEvent.objects.count() == 1
