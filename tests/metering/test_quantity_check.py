"""Quantity check: the ledger against the Stripe-compatible server's meter event summaries."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
import stripe as stripe_api
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from metering.usage_models import UsageRevision
from metering.usage_outbox import usage_outbox_send
from metering.usage_quantity import SETTLE_SECONDS, CheckStatus, usage_quantity_check
from metering.usage_services import UsageItem, usage_record_batch
from metering.usage_types import METER_EVENT_NAMES
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import recent_day, stripe_customer_for, stripe_meters

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


@pytest.fixture
def setup(stripe):
    meters = stripe_meters()
    accounts = [BillingAccountFactory(acct_id=6000 + n, stripe_customer_id=None) for n in range(2)]
    for account in accounts:
        stripe_customer_for(account)
    day = recent_day(1)
    usage_record_batch(
        items=[
            UsageItem(n, account.acct_id, day, usage_type, 1000 * (n + 1))
            for n, (account, usage_type) in enumerate(
                (a, t) for a in accounts for t in ("ST", "RM", "CV")
            )
        ]
    )
    usage_outbox_send(workers=1)
    return meters, accounts, day


def noon(day: date) -> int:
    """A stray event's timestamp inside the checked day: on the 1st, "now" is in another month
    than yesterday's usage."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def by_key(lines):
    return {(line.acct_id, line.usage_type): line for line in lines}


def test_sent_usage_matches_stripe_for_every_account_and_type(setup):
    _, accounts, day = setup
    lines = usage_quantity_check(month=day, accounts=accounts)
    assert len(lines) == 6
    assert {line.status for line in lines} == {CheckStatus.MATCH}
    assert by_key(lines)[(6001, "CV")].stripe == 6000


def settled() -> datetime:
    """A moment after Stripe's summaries have caught up with everything sent so far."""
    return timezone.now() + timedelta(seconds=SETTLE_SECONDS + 1)


def test_unsent_usage_is_awaiting_and_a_stray_event_is_a_mismatch(setup, stripe):
    _, accounts, day = setup
    usage_record_batch(items=[UsageItem(0, 6000, day, "ST", 1500, correction=True)])
    stripe_api.billing.MeterEvent.create(
        event_name=METER_EVENT_NAMES["RM"],
        payload={"stripe_customer_id": accounts[1].stripe_customer_id, "value": "5"},
        timestamp=noon(day),
    )
    lines = by_key(usage_quantity_check(month=day, accounts=accounts, now=settled()))
    awaiting = lines[(6000, "ST")]
    assert (awaiting.status, awaiting.ledger, awaiting.stripe, awaiting.pending) == (
        CheckStatus.AWAITING,
        1500,
        1000,
        500,
    )
    stray = lines[(6001, "RM")]
    assert (stray.status, stray.ledger, stray.stripe, stray.difference) == (
        CheckStatus.MISMATCH,
        5000,
        5005,
        -5,
    )
    assert lines[(6000, "CV")].status == CheckStatus.MATCH


def test_a_difference_right_after_sending_is_not_settled_yet_rather_than_a_mismatch(setup, stripe):
    _, accounts, day = setup
    stripe_api.billing.MeterEvent.create(
        event_name=METER_EVENT_NAMES["RM"],
        payload={"stripe_customer_id": accounts[1].stripe_customer_id, "value": "5"},
        timestamp=noon(day),
    )
    sent_at = UsageRevision.objects.order_by("-sent_at").values_list("sent_at", flat=True)[0]
    soon = sent_at + timedelta(minutes=2)
    line = by_key(usage_quantity_check(month=day, accounts=accounts, now=soon))[(6001, "RM")]
    assert line.status == CheckStatus.SETTLING
    late = sent_at + timedelta(seconds=SETTLE_SECONDS + 1)
    line = by_key(usage_quantity_check(month=day, accounts=accounts, now=late))[(6001, "RM")]
    assert line.status == CheckStatus.MISMATCH


def test_the_check_reads_only(setup, stripe):
    _, accounts, day = setup
    before = len(stripe.store.all("billing.meter_event"))
    posts_before = [r for r in stripe.store.requests if r["method"] == "POST"]
    usage_quantity_check(month=day, accounts=accounts)
    assert len(stripe.store.all("billing.meter_event")) == before
    assert [r for r in stripe.store.requests if r["method"] == "POST"] == posts_before
    assert set(UsageRevision.objects.values_list("state", flat=True)) == {"sent"}


def test_accounts_without_customer_or_meter_are_named(stripe):
    account = BillingAccountFactory(acct_id=6100, stripe_customer_id=None)
    lines = usage_quantity_check(month=recent_day(1), accounts=[account])
    assert {line.status for line in lines} == {CheckStatus.NO_CUSTOMER}
    stripe_customer_for(account)
    lines = usage_quantity_check(month=recent_day(1), accounts=[account])
    assert {line.status for line in lines} == {CheckStatus.NO_METER}


def test_command_lists_differences_and_strict_fails_on_a_mismatch(setup):
    _, accounts, day = setup
    out = StringIO()
    call_command("usage_quantity_check", f"--month={day:%Y-%m}", acct_id=[6000, 6001], stdout=out)
    assert "6 lines checked (6 match)" in out.getvalue()
    stripe_api.billing.MeterEvent.create(
        event_name=METER_EVENT_NAMES["ST"],
        payload={"stripe_customer_id": accounts[0].stripe_customer_id, "value": "1"},
        timestamp=noon(day),
    )
    out = StringIO()
    with time_machine.travel(settled()), pytest.raises(CommandError, match="1 line"):
        call_command(
            "usage_quantity_check",
            f"--month={day:%Y-%m}",
            acct_id=[6000, 6001],
            strict=True,
            stdout=out,
            stderr=StringIO(),
        )
    assert "6000 ST   mismatch" in out.getvalue()
    with pytest.raises(CommandError, match="no billing account"):
        call_command("usage_quantity_check", f"--month={day:%Y-%m}", acct_id=[1], stdout=out)
