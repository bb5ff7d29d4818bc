import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import stripe as stripe_lib
from django.core.management import call_command
from djstripe.models import Event

from billing_project.schedules import schedule_specs
from exports.events import stripe_events_export
from exports.tasks import stripe_events_export_task

from .conftest import bucket_get, bucket_keys

pytestmark = pytest.mark.django_db


def _held(event_id: str, at: datetime, event_type: str = "invoice.paid") -> Event:
    data = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(at.timestamp()),
        "data": {"object": {"id": "in_1"}},
    }
    return Event.objects.create(
        id=event_id,
        type=event_type,
        created=at,
        api_version="2026-08-26.dahlia",
        data=data["data"],
        stripe_data=data,
        livemode=False,
    )


def _lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]


@pytest.mark.calendar
def test_held_events_and_stripe_api_events_land_in_day_files_with_manifests(s3_bucket, stripe):
    _held("evt_old_b", datetime(2024, 5, 3, 10, tzinfo=UTC))
    _held("evt_old_a", datetime(2024, 5, 3, 10, tzinfo=UTC))
    _held("evt_old_c", datetime(2024, 5, 4, 23, 59, tzinfo=UTC))
    customer = stripe_lib.Customer.create(email="ap@northwind.example")
    api_event = next(e for e in stripe.store.events if e["data"]["object"].get("id") == customer.id)
    today = datetime.now(UTC).date() + timedelta(days=1)

    outcome = stripe_events_export(today=today)

    api_day = datetime.fromtimestamp(api_event["created"], tz=UTC).date()
    keys = bucket_keys(s3_bucket)
    assert "events/2024/05/03.jsonl.gz" in keys and "events/2024/05/04.jsonl.gz" in keys
    assert [e["id"] for e in _lines(bucket_get(s3_bucket, "events/2024/05/03.jsonl.gz"))] == [
        "evt_old_a",
        "evt_old_b",
    ]
    api_file = _lines(bucket_get(s3_bucket, f"events/{api_day:%Y/%m/%d}.jsonl.gz"))
    assert [e["id"] for e in api_file] == [api_event["id"]]
    manifest = json.loads(bucket_get(s3_bucket, "events/2024/05/manifest.json"))["entries"]
    assert manifest["03"]["rows"] == 2 and manifest["03"]["first_event"] == "evt_old_a"
    assert outcome.from_api == 1 and len(outcome.written) == 3


def test_a_second_run_writes_nothing_and_a_late_event_is_merged_into_its_day(s3_bucket, stripe):
    _held("evt_1", datetime(2024, 5, 3, 10, tzinfo=UTC))
    today = date(2024, 5, 10)
    stripe_events_export(today=today, use_api=False)
    before = bucket_get(s3_bucket, "events/2024/05/03.jsonl.gz")

    again = stripe_events_export(today=today, use_api=False)
    Event.objects.filter(id="evt_1").delete()  # dj-stripe rows may go; the archive keeps them
    _held("evt_2", datetime(2024, 5, 3, 11, tzinfo=UTC))
    merged = stripe_events_export(today=today, use_api=False)

    assert again.written == [] and again.unchanged == ["events/2024/05/03.jsonl.gz"]
    assert bucket_get(s3_bucket, "events/2024/05/03.jsonl.gz") != before
    assert [e["id"] for e in _lines(bucket_get(s3_bucket, "events/2024/05/03.jsonl.gz"))] == [
        "evt_1",
        "evt_2",
    ]
    assert merged.written == ["events/2024/05/03.jsonl.gz"]


@pytest.mark.calendar
def test_the_archive_is_a_daily_schedule_and_its_task_runs(s3_bucket, stripe):
    spec = next(spec for spec in schedule_specs() if spec.name == "stripe-events-archive")
    assert (spec.func, spec.cron) == ("exports.tasks.stripe_events_export_task", "30 5 * * *")
    assert "day files written" in stripe_events_export_task()


@pytest.mark.calendar
def test_command_reports_and_refuses_a_bad_day(s3_bucket, stripe):
    out = io.StringIO()
    call_command("export_stripe_events", "--no-api", stdout=out)
    assert "0 day files written" in out.getvalue()
    with pytest.raises(Exception, match="--from: expected a day as YYYY-MM-DD"):
        call_command("export_stripe_events", "--from", "2024-02-30", stdout=out)
