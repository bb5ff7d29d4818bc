"""The usage outbox against the Stripe-compatible server: each revision arrives once as a meter
event, failures are retried with a bound, late usage is set aside for an operator."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from billing_project.models import Alert
from metering.usage_models import UsageRevision
from metering.usage_outbox import (
    OUTBOX_MAX_ATTEMPTS,
    usage_outbox_send,
    usage_revision_retry,
    usage_revision_settle,
)
from metering.usage_services import UsageItem, usage_record_batch
from metering.usage_types import METER_EVENT_NAMES
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import recent_day, stripe_customer_for, stripe_meters
from tests.stripe_server.resources.meters import usage_total

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]
State = UsageRevision.State


@pytest.fixture
def meters(stripe):
    return stripe_meters()


@pytest.fixture
def account(stripe):
    account = BillingAccountFactory(acct_id=4242, stripe_customer_id=None)
    stripe_customer_for(account)
    return account


def record(account, quantity, *, usage_type="ST", days_ago=1, correction=False):
    (result,) = usage_record_batch(
        items=[
            UsageItem(0, account.acct_id, recent_day(days_ago), usage_type, quantity, correction)
        ]
    )
    return result


def sent_events(server) -> dict[str, dict]:
    return {e["id"]: e for e in server.store.all("billing.meter_event")}


def meter_total(server, account, meters, usage_type="ST") -> int:
    now = int(timezone.now().timestamp())
    return usage_total(
        server.store,
        customer_id=account.stripe_customer_id,
        meter_id=meters[usage_type],
        start=0,
        end=now + 3600,
    )


def drain(now=None, rounds=30, step=timedelta(hours=3)):
    """Run the outbox until nothing is pending, moving the clock past each backoff."""
    now = now or timezone.now()
    for _ in range(rounds):
        usage_outbox_send(now=now, workers=1)
        if not UsageRevision.objects.filter(state=State.PENDING).exists():
            return
        now += step
    raise AssertionError("the outbox did not drain")


def test_each_revision_becomes_one_meter_event_with_key_and_revision(stripe, meters, account):
    record(account, 1200)
    record(account, 300, usage_type="CV", days_ago=2)
    report = usage_outbox_send(workers=1)
    assert report.sent == 2
    events = sent_events(stripe)
    day1, day2 = recent_day(1).isoformat(), recent_day(2).isoformat()
    assert set(events) == {f"4242:{day1}:ST:1", f"4242:{day2}:CV:1"}
    event = events[f"4242:{day1}:ST:1"]["event"]
    assert event["event_name"] == METER_EVENT_NAMES["ST"]
    assert event["payload"] == {"stripe_customer_id": account.stripe_customer_id, "value": "1200"}
    assert (
        recent_day(1).isoformat()
        == timezone.datetime.fromtimestamp(event["timestamp"], tz=UTC).date().isoformat()
    )
    assert set(UsageRevision.objects.values_list("state", flat=True)) == {State.SENT}
    assert usage_outbox_send(workers=1).sent == 0
    assert len(sent_events(stripe)) == 2


def test_a_correction_sends_only_the_difference(stripe, meters, account):
    record(account, 1000)
    usage_outbox_send(workers=1)
    record(account, 1300, correction=True)
    record(account, 900, correction=True)
    usage_outbox_send(workers=1)
    values = sorted(int(e["event"]["payload"]["value"]) for e in sent_events(stripe).values())
    assert values == [-400, 300, 1000]
    assert meter_total(stripe, account, meters) == 900


def test_stripe_failing_for_a_while_then_every_event_arrives_once(stripe, meters, account):
    for days_ago in range(1, 6):
        record(account, 100 * days_ago, days_ago=days_ago)
        record(account, 7 * days_ago, usage_type="RM", days_ago=days_ago)
    stripe.fail_next(4, status=429, path="/v1/billing/meter_events", retry_after=2)
    stripe.fail_next(3, status=500, path="/v1/billing/meter_events")
    stripe.fail_next(2, status=503, path="/v1/billing/meter_events", after=True)
    stripe.fail_next(2, status=500, path="/v1/billing/meter_events")
    drain()
    events = sent_events(stripe)
    assert len(events) == 10
    assert set(events) == set(UsageRevision.objects.values_list("identifier", flat=True))
    assert meter_total(stripe, account, meters) == 1500
    assert meter_total(stripe, account, meters, "RM") == 105
    assert set(UsageRevision.objects.values_list("state", flat=True)) == {State.SENT}
    assert UsageRevision.objects.filter(attempts__gt=1).exists()
    posts = [r for r in stripe.store.requests if r["path"] == "/v1/billing/meter_events"]
    assert len(posts) > 10  # the failures were real calls, retried


def test_an_answer_lost_after_stripe_recorded_the_event_is_not_counted_twice(
    stripe, meters, account
):
    record(account, 640)
    stripe.fail_next(1, status=500, path="/v1/billing/meter_events", after=True)
    first = usage_outbox_send(workers=1)
    assert (first.sent, first.retried) == (0, 1)
    revision = UsageRevision.objects.get()
    assert revision.state == State.PENDING
    assert "500" in revision.last_error
    usage_outbox_send(now=revision.next_attempt_at, workers=1)
    revision.refresh_from_db()
    assert revision.state == State.SENT
    assert "already exists" in revision.last_error
    assert len(sent_events(stripe)) == 1
    assert meter_total(stripe, account, meters) == 640


def test_a_rate_limit_stops_the_lane_and_honours_retry_after(stripe, meters, account):
    record(account, 1, days_ago=1)
    record(account, 2, days_ago=2)
    stripe.fail_next(1, status=429, path="/v1/billing/meter_events", retry_after=900)
    now = timezone.now()
    report = usage_outbox_send(now=now, workers=1)
    assert (report.sent, report.retried) == (0, 1)
    first = UsageRevision.objects.exclude(attempts=0).get()
    assert first.next_attempt_at >= now + timedelta(seconds=900)
    assert UsageRevision.objects.filter(attempts=0, state=State.PENDING).count() == 1


def test_retries_are_bounded_then_the_row_fails_and_billing_is_alerted(stripe, meters, account):
    record(account, 5)
    stripe.fail_next(100, status=500, path="/v1/billing/meter_events")
    drain(step=timedelta(hours=3))
    revision = UsageRevision.objects.get()
    assert revision.state == State.FAILED
    assert revision.attempts == OUTBOX_MAX_ATTEMPTS
    assert "gave up after" in revision.last_error
    alert = Alert.objects.get()
    assert alert.route == "billing"
    assert revision.identifier in alert.body
    assert sent_events(stripe) == {}
    assert usage_revision_retry(revision_id=revision.pk)
    stripe.reset()
    stripe_meters()
    stripe_customer_for(account)
    usage_outbox_send(workers=1)
    revision.refresh_from_db()
    assert revision.state == State.SENT


def test_usage_older_than_35_days_is_too_late_and_kept_for_an_operator(stripe, meters, account):
    record(account, 77, days_ago=40)
    report = usage_outbox_send(workers=1)
    assert len(report.too_late) == 1
    revision = UsageRevision.objects.get()
    assert revision.state == State.TOO_LATE
    assert "35-day" in revision.too_late_reason
    assert sent_events(stripe) == {}
    alert = Alert.objects.get()
    assert revision.identifier in alert.body
    assert "invoice item or a credit note" in alert.body
    assert usage_revision_settle(revision_id=revision.pk, note="invoice item ii_123")
    revision.refresh_from_db()
    assert revision.resolution_note == "invoice item ii_123"


def test_an_account_without_a_stripe_customer_waits_and_says_why(stripe, meters):
    account = BillingAccountFactory(acct_id=777, stripe_customer_id=None)
    record(account, 3)
    report = usage_outbox_send(workers=1)
    assert report.retried == 1
    revision = UsageRevision.objects.get()
    assert revision.state == State.PENDING
    assert "has no Stripe customer" in revision.last_error
