"""Late usage and the invoice that bills it: a revision is `too_late` only once the invoice
Stripe made for its period has finalized, whatever grace period Stripe is configured with.

Each case runs at a month end that billing gets wrong most easily (New Year, a leap February,
a 30-day month, a 31-day month): the customer sits on a Stripe test clock and our clock is
set to the same instant, so both sides see the same "now".
"""

from datetime import UTC, date, datetime, timedelta

import pytest
import stripe as stripe_api
import time_machine

from metering.usage_models import UsageRevision
from metering.usage_outbox import usage_outbox_send
from metering.usage_services import UsageItem, usage_record_batch
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import stripe_meters

pytestmark = pytest.mark.django_db
State = UsageRevision.State
HOUR = timedelta(hours=1)

# The last day of a month, whose usage the invoice made at the next midnight bills.
MONTH_ENDS = {
    "new-year": date(2026, 12, 31),
    "leap-february": date(2028, 2, 29),
    "thirty-day-april": date(2027, 4, 30),
    "thirty-one-day-january": date(2027, 1, 31),
}


def _at(moment: datetime) -> int:
    return int(moment.timestamp())


class Cycle:
    """One customer with a metered ST subscription anchored on the 1st, on a test clock."""

    def __init__(self, server, traveller, last_day: date, *, grace: timedelta) -> None:
        server.finalization_grace_seconds = int(grace.total_seconds())
        self.server, self.traveller, self.last_day = server, traveller, last_day
        self.period_end = datetime.combine(
            last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC
        )
        start = datetime.combine(last_day.replace(day=1), datetime.min.time(), tzinfo=UTC)
        self.move(start + timedelta(hours=2))
        meters = stripe_meters()
        product = stripe_api.Product.create(name="Usage (Ad Serving)")
        self.price = stripe_api.Price.create(
            product=product.id,
            currency="usd",
            unit_amount=2,
            recurring={"interval": "month", "usage_type": "metered", "meter": meters["ST"]},
        )
        self.clock = stripe_api.test_helpers.TestClock.create(frozen_time=_at(self.now))
        customer = stripe_api.Customer.create(
            email="ap@tidewater.example", test_clock=self.clock.id
        )
        self.account = BillingAccountFactory(acct_id=5150, stripe_customer_id=customer.id)
        stripe_api.Subscription.create(
            customer=customer.id,
            items=[{"price": self.price.id}],
            billing_cycle_anchor=_at(self.period_end),
            proration_behavior="none",
        )

    def move(self, moment: datetime) -> None:
        self.now = moment
        self.traveller.move_to(moment)
        if hasattr(self, "clock"):
            stripe_api.test_helpers.TestClock.advance(self.clock.id, frozen_time=_at(moment))

    def record_last_day(self, quantity: int) -> UsageRevision:
        usage_record_batch(
            items=[UsageItem(0, self.account.acct_id, self.last_day, "ST", quantity)]
        )
        return UsageRevision.objects.get(record__period=self.last_day)

    def send(self) -> None:
        usage_outbox_send(now=self.now, workers=1)

    def invoice(self):
        (invoice,) = [
            i
            for i in stripe_api.Invoice.list(customer=self.account.stripe_customer_id)
            if i.period_end == _at(self.period_end)
        ]
        return invoice

    def billed_quantity(self) -> int:
        (line,) = [
            line for line in self.invoice().lines.data if line.period.end == _at(self.period_end)
        ]
        return line.quantity

    def meter_events(self) -> int:
        return len(self.server.store.all("billing.meter_event"))


@pytest.fixture
def traveller():
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture(params=list(MONTH_ENDS), ids=list(MONTH_ENDS))
def last_day(request) -> date:
    return MONTH_ENDS[request.param]


def test_usage_posted_in_the_grace_hour_is_sent_and_billed(stripe, traveller, last_day):
    cycle = Cycle(stripe, traveller, last_day, grace=HOUR)
    cycle.move(cycle.period_end + timedelta(minutes=30))
    assert cycle.invoice().status == "draft"
    revision = cycle.record_last_day(4_000)
    cycle.send()
    revision.refresh_from_db()
    assert revision.state == State.SENT
    cycle.move(cycle.period_end + 2 * HOUR)
    assert cycle.invoice().status != "draft"
    assert cycle.billed_quantity() == 4_000


def test_a_72_hour_grace_period_keeps_late_usage_billable_for_three_days(
    stripe, traveller, last_day
):
    cycle = Cycle(stripe, traveller, last_day, grace=72 * HOUR)
    cycle.move(cycle.period_end + 48 * HOUR)
    revision = cycle.record_last_day(900)
    cycle.send()
    revision.refresh_from_db()
    assert revision.state == State.SENT, revision.too_late_reason
    cycle.move(cycle.period_end + 73 * HOUR)
    assert cycle.billed_quantity() == 900


def test_usage_after_the_invoice_finalized_is_too_late_and_not_sent(stripe, traveller, last_day):
    cycle = Cycle(stripe, traveller, last_day, grace=HOUR)
    cycle.move(cycle.period_end + 2 * HOUR)
    invoice = cycle.invoice()
    assert invoice.status != "draft"
    revision = cycle.record_last_day(75)
    cycle.send()
    revision.refresh_from_db()
    assert revision.state == State.TOO_LATE
    assert invoice.id in revision.too_late_reason
    assert f"{last_day:%B %Y}" in revision.too_late_reason
    assert cycle.meter_events() == 0


def test_usage_just_before_a_long_grace_period_ends_is_too_late_rather_than_lost(
    stripe, traveller, last_day
):
    cycle = Cycle(stripe, traveller, last_day, grace=72 * HOUR)
    cycle.move(cycle.period_end + 72 * HOUR - timedelta(minutes=5))
    assert cycle.invoice().status == "draft"
    revision = cycle.record_last_day(12)
    cycle.send()
    revision.refresh_from_db()
    assert revision.state == State.TOO_LATE
    assert "finalizes at" in revision.too_late_reason
    assert cycle.meter_events() == 0


def test_an_invoice_finalized_early_by_hand_makes_later_usage_too_late(stripe, traveller, last_day):
    cycle = Cycle(stripe, traveller, last_day, grace=72 * HOUR)
    cycle.move(cycle.period_end + timedelta(minutes=20))
    stripe_api.Invoice.finalize_invoice(cycle.invoice().id)
    cycle.move(cycle.period_end + timedelta(minutes=40))
    revision = cycle.record_last_day(30)
    cycle.send()
    revision.refresh_from_db()
    assert revision.state == State.TOO_LATE
    assert cycle.meter_events() == 0


def test_usage_of_an_ended_month_waits_when_stripe_cannot_say_if_its_invoice_finalized(
    stripe, traveller, last_day
):
    cycle = Cycle(stripe, traveller, last_day, grace=HOUR)
    cycle.move(cycle.period_end + timedelta(minutes=30))
    revision = cycle.record_last_day(8)
    stripe.fail_next(3, status=500, path="/v1/invoices")
    cycle.send()
    revision.refresh_from_db()
    assert (revision.state, revision.attempts) == (State.PENDING, 1)
    assert "could not read its invoice" in revision.last_error
    assert cycle.meter_events() == 0
