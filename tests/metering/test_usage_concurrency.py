"""Concurrency on PostgreSQL: identical posts racing, overlapping batches, and outbox workers
racing for the same customer and meter."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from metering.usage_models import UsageRecord, UsageRevision
from metering.usage_outbox import usage_outbox_send
from metering.usage_services import producer_token_create
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import item, post, stripe_customer_for, stripe_meters

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.calendar]


def race(count, work):
    """Run `work(n)` in `count` threads released together; their results in order."""
    barrier = threading.Barrier(count)

    def run(n):
        try:
            barrier.wait()
            return work(n)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def client():
    _, raw = producer_token_create(name="race")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_20_concurrent_identical_posts_make_one_row_and_one_meter_event(stripe):
    stripe_meters()
    account = BillingAccountFactory(acct_id=3131, stripe_customer_id=None)
    stripe_customer_for(account)
    api = client()
    body = item(3131, 4321)
    responses = race(20, lambda n: post(api, body))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201]
    assert sorted(r.json()["status"] for r in responses) == ["created"] + ["duplicate"] * 19
    assert UsageRecord.objects.count() == 1
    assert UsageRevision.objects.count() == 1
    race(4, lambda n: usage_outbox_send(workers=2))
    events = stripe.store.all("billing.meter_event")
    assert [e["event"]["payload"]["value"] for e in events] == ["4321"]
    assert UsageRevision.objects.get().state == UsageRevision.State.SENT


def test_overlapping_batches_in_opposite_orders_neither_deadlock_nor_double_count():
    accounts = [BillingAccountFactory(acct_id=3200 + n) for n in range(30)]
    api = client()
    batch = [
        item(a.acct_id, 10 + n, usage_type=t) for n, a in enumerate(accounts) for t in ("ST", "RM")
    ]
    batches = [batch, list(reversed(batch)), batch[::2] + batch[1::2], batch]
    responses = race(len(batches), lambda n: post(api, batches[n]))
    assert [r.status_code for r in responses] == [200] * 4
    created = sum(r.json()["counts"]["created"] for r in responses)
    duplicates = sum(r.json()["counts"]["duplicate"] for r in responses)
    assert (created, duplicates) == (60, 180)
    assert UsageRecord.objects.count() == 60
    assert UsageRevision.objects.count() == 60


def test_concurrent_corrections_each_send_only_their_own_difference():
    BillingAccountFactory(acct_id=3300)
    api = client()
    post(api, item(3300, 100))
    quantities = [150, 90, 400, 100, 260]
    race(len(quantities), lambda n: post(api, item(3300, quantities[n], correction=True)))
    record = UsageRecord.objects.get()
    deltas = list(record.revisions.values_list("delta", flat=True))
    assert sum(deltas) == record.quantity
    assert record.quantity in quantities
    assert record.revisions.count() == record.revision


def test_outbox_workers_never_call_stripe_twice_at_once_for_one_customer_and_meter(stripe):
    stripe_meters()
    stripe.meter_event_delay = 0.1
    accounts = [BillingAccountFactory(acct_id=3400 + n, stripe_customer_id=None) for n in range(3)]
    for account in accounts:
        stripe_customer_for(account)
    api = client()
    post(
        api,
        [
            item(a.acct_id, 10 * d + 1, usage_type=t, days_ago=d)
            for a in accounts
            for t in ("ST", "RM")
            for d in range(1, 5)
        ],
    )
    reports = race(3, lambda n: usage_outbox_send(workers=4))
    assert sum(r.sent for r in reports) == 24
    assert sum(r.busy_lanes for r in reports) > 0  # the runs did meet on the same lanes
    assert set(stripe.store.meter_event_concurrency.values()) == {1}
    assert len(stripe.store.meter_event_concurrency) == 6
    assert len(stripe.store.all("billing.meter_event")) == 24
