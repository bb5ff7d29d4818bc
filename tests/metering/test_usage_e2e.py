"""The whole usage path with a real task worker: a producer posts, the scheduled outbox run in
`qcluster` sends the meter event, the quantity check then finds Stripe equal to the ledger."""

from io import StringIO

import pytest
from django.core.management import call_command

from metering.usage_models import UsageRevision
from metering.usage_quantity import CheckStatus, usage_quantity_check
from tests.factories import BillingAccountFactory
from tests.harness.qcluster import QCluster
from tests.metering.usage_helpers import item, post, recent_day, stripe_customer_for, stripe_meters

pytest_plugins = ["tests.metering.usage_fixtures"]


@pytest.mark.calendar
@pytest.mark.django_db(transaction=True)
def test_posted_usage_reaches_stripe_through_the_scheduled_outbox(stripe, usage_api, tmp_path):
    stripe_meters()
    account = BillingAccountFactory(acct_id=9100, stripe_customer_id=None)
    stripe_customer_for(account)
    call_command("setup_schedules", stdout=StringIO())
    answer = post(usage_api, [item(9100, 2500), item(9100, 40, usage_type="CV")])
    assert answer.json()["counts"]["created"] == 2
    cluster = QCluster(log_path=tmp_path / "qcluster.log").start()
    try:
        cluster.wait_for(
            lambda: UsageRevision.objects.filter(state="sent").count() == 2 or None,
            timeout=120,
            what="the scheduled outbox run to send both revisions",
        )
    finally:
        cluster.stop()
    events = {e["id"]: e["event"] for e in stripe.store.all("billing.meter_event")}
    day = recent_day(1).isoformat()
    assert set(events) == {f"9100:{day}:ST:1", f"9100:{day}:CV:1"}
    lines = usage_quantity_check(month=recent_day(1), accounts=[account])
    assert {(line.usage_type, line.status) for line in lines} == {
        ("ST", CheckStatus.MATCH),
        ("RM", CheckStatus.MATCH),
        ("CV", CheckStatus.MATCH),
    }
