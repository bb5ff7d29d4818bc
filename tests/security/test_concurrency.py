"""On PostgreSQL, at the same moment: two operators confirming one email change apply it once;
many requests of one token inside its limit are counted exactly (none lost, none extra)."""

import threading
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connections

from billing_project.errors import BillingError
from cohorts.permissions import OPERATOR_GROUP
from metering.account_changes import account_email_change_confirm, account_email_change_request
from metering.models import AccountChange, BillingAccount
from metering.usage_services import producer_token_create
from metering.usage_throttle import usage_rate_take

pytestmark = pytest.mark.django_db(transaction=True)


def _operator(name: str):
    user = get_user_model().objects.create_user(name, f"{name}@adventive.com", "x", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    return get_user_model().objects.get(pk=user.pk)


def _together(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_confirmations_at_once_apply_the_change_once():
    call_command("setup_groups", stdout=StringIO())
    alice, bob, carol = _operator("alice"), _operator("bob"), _operator("carol")
    account = BillingAccount.objects.create(acct_id=7401, name="Quay", billing_email="a@q.example")
    change = account_email_change_request(
        account=account, email="b@q.example", reason="new mailbox", by=alice
    )
    confirmers = [bob, carol]
    results = _together(
        2, lambda n: account_email_change_confirm(change_id=change.pk, by=confirmers[n])
    )
    applied = [r for r in results if isinstance(r, AccountChange)]
    refused = [r for r in results if isinstance(r, BillingError)]
    assert (len(applied), len(refused)) == (1, 1), results
    assert "applied" in refused[0].message
    change.refresh_from_db()
    assert change.status == "applied" and change.decided_by in (bob, carol)
    assert BillingAccount.objects.get(pk=account.pk).billing_email == "b@q.example"


def test_requests_of_one_token_at_once_are_counted_exactly(settings):
    settings.USAGE_REQUESTS_PER_MINUTE = 5
    token, _ = producer_token_create(name="exporter")
    now = datetime(2026, 11, 18, 10, 15, 30, tzinfo=UTC)
    results = _together(8, lambda n: usage_rate_take(token=token, now=now))
    assert results.count(None) == 5, results
    assert sorted(r for r in results if r is not None) == [30, 30, 30]
