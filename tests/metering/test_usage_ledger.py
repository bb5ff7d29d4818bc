"""The ledger's set-based write on PostgreSQL and its ORM form (the SQLite local default) give
the same answers; the outbox schedule is declared."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.schedules import schedule_specs
from metering import usage_ledger
from metering.tasks import usage_outbox_send_task
from metering.usage_ledger import NewUsage, usage_ledger_write
from metering.usage_models import UsageRecord, UsageRevision
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import recent_day

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


def rows(quantities, *, acct_id=8100):
    day = recent_day(1)
    return [
        NewUsage(acct_id, day - timedelta(days=n), "RM", q, f"{acct_id}:{n}:RM:1", timezone.now())
        for n, q in enumerate(quantities)
    ]


@pytest.mark.parametrize("write", [usage_ledger_write, usage_ledger._write_orm])
def test_both_forms_create_new_keys_return_stored_ones_and_skip_zero_outbox_rows(write):
    account = BillingAccountFactory(acct_id=8100)
    now = timezone.now()
    kwargs = {"producer_id": None, "now": now}
    if write is usage_ledger._write_orm:
        first = write(rows([5, 0]), None, uuid.uuid4(), now)
        second = write([*rows([5, 0, 9]), *rows([1], acct_id=999)], None, uuid.uuid4(), now)
    else:
        first = write(rows=rows([5, 0]), ingest_id=uuid.uuid4(), **kwargs)
        second = write(
            rows=[*rows([5, 0, 9]), *rows([1], acct_id=999)], ingest_id=uuid.uuid4(), **kwargs
        )
    assert [(s.created, s.quantity) for s in first] == [(True, 5), (True, 0)]
    assert [(s.created, s.quantity) for s in second] == [
        (False, 5),
        (False, 0),
        (True, 9),
        (False, None),
    ]
    assert second[3].account_id is None
    assert {s.account_id for s in second[:3]} == {account.pk}
    assert UsageRecord.objects.count() == 3
    assert sorted(UsageRevision.objects.values_list("delta", flat=True)) == [5, 9]


def test_the_outbox_is_polled_every_minute():
    spec = next(s for s in schedule_specs() if s.name == "usage-outbox")
    assert (spec.func, spec.minutes) == ("metering.tasks.usage_outbox_send_task", 1)
    assert (
        usage_outbox_send_task()
        == "0 lanes (0 busy elsewhere): 0 sent, 0 to retry, 0 failed, 0 too late"
    )
