"""Two operators running the same command at once: one run, one set of Stripe objects."""

import threading

import pytest
from django.db import connections

from metering.catalog_import import catalog_import
from metering.locks import RunInProgress
from metering.models import CatalogObject, SubscriptionRecord
from metering.provisioning import subscriptions_provision
from reconciliation.legacy import LegacyAccount, LegacyPlanSub, LegacyPlanUsage
from tests import factories

from .conftest import make_plan_account, seed_customer

LADDER = [(1_000_000, "2.50"), (None, "1.10")]
ACCT_IDS = (1, 2, 3, 4, 5)


def _legacy_delete() -> None:
    for model in (LegacyPlanUsage, LegacyPlanSub):
        model.objects.filter(account_id__in=ACCT_IDS).delete()
    LegacyAccount.objects.filter(acct_id__in=ACCT_IDS).delete()


@pytest.fixture
def concurrent_db(transactional_db, django_db_blocker):
    """Transactional tests flush our tables but not the unmanaged legacy ones: clear those."""
    _legacy_delete()
    yield
    _legacy_delete()


concurrent = pytest.mark.django_db(databases=["default", "legacy"], transaction=True)


def _race(target, count: int = 3) -> list:
    barrier = threading.Barrier(count)
    outcomes = []

    def run():
        try:
            barrier.wait()
            outcomes.append(target())
        except RunInProgress as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@concurrent
def test_concurrent_imports_create_each_object_once(stripe, concurrent_db):
    cohort = factories.CohortFactory(number=2)
    for acct_id in (1, 2, 3):
        make_plan_account(acct_id=acct_id, cohort=cohort, tiers={"ST": LADDER, "RM": LADDER})
    outcomes = _race(catalog_import)
    catalog_import()  # whoever was refused runs again: nothing left to create
    assert len(stripe.store.all("product")) == 3
    assert len(stripe.store.all("billing.meter")) == 3
    assert len(stripe.store.all("price")) == 3  # one flat, ST and RM shared by all three
    assert CatalogObject.objects.count() == 9
    assert any(not isinstance(o, Exception) for o in outcomes)


@concurrent
def test_concurrent_provisioning_creates_one_subscription_per_account(stripe, concurrent_db):
    cohort = factories.CohortFactory(number=2, ready=True)
    for acct_id in (4, 5):
        account = make_plan_account(acct_id=acct_id, cohort=cohort, tiers={"CV": LADDER})
        seed_customer(stripe, account.stripe_customer_id)
    catalog_import()
    _race(lambda: subscriptions_provision(cohort=2))
    subscriptions_provision(cohort=2)
    assert len(stripe.store.all("subscription")) == 2
    assert SubscriptionRecord.objects.count() == 2
