import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from metering.locks import RunInProgress
from metering.models import BillingAccount
from metering.services import CustomerLinkError, account_link_customer
from tests import factories

from .conftest import both_databases, seed_customer


@both_databases
def test_an_account_is_linked_to_its_legacy_customer_and_acct_id_backfilled(stripe):
    legacy = factories.LegacyAccountFactory(acct_id=801)
    seed_customer(stripe, legacy.payment_customer_id)
    account = factories.BillingAccountFactory(acct_id=801, stripe_customer_id=None)
    result = account_link_customer(account=account)
    assert (result.outcome, result.customer_id) == ("backfilled", legacy.payment_customer_id)
    account.refresh_from_db()
    assert account.stripe_customer_id == legacy.payment_customer_id
    customer = stripe.store.get("customer", legacy.payment_customer_id)
    assert customer["metadata"]["acct_id"] == "801"
    assert account_link_customer(account=account).outcome == "unchanged"
    assert len(stripe.store.all("customer")) == 1


@both_databases
def test_a_customer_is_created_only_when_the_account_has_none_and_only_once(stripe):
    factories.LegacyAccountFactory(acct_id=802, payment_customer_id=None)
    account = factories.BillingAccountFactory(acct_id=802, stripe_customer_id=None)
    created = account_link_customer(account=account)
    assert created.outcome == "created"
    assert stripe.store.get("customer", created.customer_id)["metadata"] == {"acct_id": "802"}
    BillingAccount.objects.filter(pk=account.pk).update(stripe_customer_id=None)
    again = account_link_customer(account=BillingAccount.objects.get(pk=account.pk))
    assert (again.outcome, again.customer_id) == ("linked", created.customer_id)
    assert len(stripe.store.all("customer")) == 1


@both_databases
def test_a_legacy_customer_missing_from_stripe_is_an_error_not_a_new_customer(stripe):
    factories.LegacyAccountFactory(acct_id=803)
    account = factories.BillingAccountFactory(acct_id=803, stripe_customer_id=None)
    with pytest.raises(CustomerLinkError, match="Stripe has no customer cus_legacy00000803"):
        account_link_customer(account=account)
    assert stripe.store.all("customer") == []


@both_databases
def test_a_customer_of_another_account_is_refused(stripe):
    seed_customer(stripe, "cus_other000000000001", **{"metadata[acct_id]": "9"})
    account = factories.BillingAccountFactory(
        acct_id=804, stripe_customer_id="cus_other000000000001"
    )
    with pytest.raises(CustomerLinkError, match=r"has metadata\.acct_id=9"):
        account_link_customer(account=account)


@both_databases
def test_the_command_links_every_account_and_names_failures(stripe):
    cohort = factories.CohortFactory(number=1)
    ok = factories.LegacyAccountFactory(acct_id=805)
    seed_customer(stripe, ok.payment_customer_id)
    factories.BillingAccountFactory(acct_id=805, stripe_customer_id=None, cohort=cohort)
    factories.LegacyAccountFactory(acct_id=806)
    factories.BillingAccountFactory(acct_id=806, stripe_customer_id=None, cohort=cohort)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 accounts not linked"):
        call_command("link_stripe_customers", "--cohort", "1", stdout=out, stderr=err)
    assert "account 805: backfilled" in out.getvalue()
    assert "account 806: Stripe has no customer" in err.getvalue()


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_concurrent_links_of_an_account_without_customer_create_one(stripe):
    account = factories.BillingAccountFactory(acct_id=810, stripe_customer_id=None)
    barrier = threading.Barrier(4)
    outcomes = []

    def link():
        try:
            barrier.wait()
            outcomes.append(
                account_link_customer(account=BillingAccount.objects.get(pk=account.pk))
            )
        except RunInProgress as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=link) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    account_link_customer(account=account)
    assert len(stripe.store.all("customer")) == 1
    account.refresh_from_db()
    assert account.stripe_customer_id == stripe.store.all("customer")[0]["id"]
