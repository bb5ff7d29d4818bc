import threading
from datetime import date

import pytest
from django.db import connections

from metering.models import ManagedJob
from metering.services import managed_job_create, managed_job_send, managed_jobs_import_legacy
from tests import factories

from .conftest import both_databases, seed_customer


@pytest.fixture
def account(stripe):
    account = factories.BillingAccountFactory(acct_id=901)
    seed_customer(stripe, account.stripe_customer_id)
    return account


@both_databases
def test_legacy_jobs_are_imported_once_each(account):
    legacy = factories.LegacyAccountFactory(acct_id=901)
    factories.LegacyManagedServiceJobFactory(account=legacy, amount="840.00")
    factories.LegacyManagedServiceJobFactory(account=legacy, service_month=date(2026, 2, 1))
    assert managed_jobs_import_legacy(month=date(2026, 1, 1)) == 1
    assert managed_jobs_import_legacy() == 1
    assert managed_jobs_import_legacy() == 0
    assert sorted(ManagedJob.objects.values_list("amount_minor", flat=True)) == [12_345, 84_000]


@both_databases
def test_a_job_becomes_one_invoice_item_marked_managed_and_keeps_its_id(stripe, account):
    job = managed_job_create(
        account=account,
        description="Landing page build",
        service_month=date(2026, 1, 9),
        amount_minor=84_000,
    )
    job = managed_job_send(job_id=job.pk)
    assert job.status == ManagedJob.Status.SENT
    item = stripe.store.get("invoiceitem", job.stripe_invoice_item_id)
    assert (item["amount"], item["currency"], item["customer"]) == (
        84_000,
        "usd",
        account.stripe_customer_id,
    )
    assert item["metadata"]["kind"] == "managed"
    assert item["metadata"]["acct_id"] == "901"
    assert item["invoice"] is None  # pending: the next invoice picks it up
    assert managed_job_send(job_id=job.pk).stripe_invoice_item_id == item["id"]
    assert len(stripe.store.all("invoiceitem")) == 1


@both_databases
def test_a_retry_after_a_lost_answer_finds_the_item_instead_of_sending_twice(stripe, account):
    job = managed_job_create(
        account=account, description="QA", service_month=date(2026, 1, 1), amount_minor=9_500
    )
    managed_job_send(job_id=job.pk)
    # as if the answer was lost: our row still says failed, Stripe has the item
    ManagedJob.objects.filter(pk=job.pk).update(
        status=ManagedJob.Status.FAILED, stripe_invoice_item_id=None
    )
    stripe.store.idempotency.clear()  # Stripe's key expired
    job = managed_job_send(job_id=job.pk)
    assert job.status == ManagedJob.Status.SENT
    assert len(stripe.store.all("invoiceitem")) == 1


@both_databases
def test_stripe_refusing_marks_the_job_failed_with_the_reason(stripe, account):
    job = managed_job_create(
        account=account, description="QA", service_month=date(2026, 1, 1), amount_minor=9_500
    )
    stripe.fail_next(1, status=400, path="/v1/invoiceitems")
    job = managed_job_send(job_id=job.pk)
    assert job.status == ManagedJob.Status.FAILED
    assert "Injected failure" in job.last_error
    assert managed_job_send(job_id=job.pk).status == ManagedJob.Status.SENT


@both_databases
def test_bad_operator_input_is_refused_naming_the_field(account):
    with pytest.raises(ValueError, match="amount_minor must be a positive integer"):
        managed_job_create(
            account=account, description="x", service_month=date(2026, 1, 1), amount_minor=0
        )
    with pytest.raises(ValueError, match="description must not be empty"):
        managed_job_create(
            account=account, description=" ", service_month=date(2026, 1, 1), amount_minor=1
        )


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_two_workers_sending_the_same_job_create_one_invoice_item(stripe):
    account = factories.BillingAccountFactory(acct_id=902)
    seed_customer(stripe, account.stripe_customer_id)
    job = managed_job_create(
        account=account, description="Setup", service_month=date(2026, 1, 1), amount_minor=5_000
    )
    barrier = threading.Barrier(4)
    results = []

    def send():
        try:
            barrier.wait()
            results.append(managed_job_send(job_id=job.pk).status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stripe.store.all("invoiceitem")) == 1
    job.refresh_from_db()
    assert job.status == ManagedJob.Status.SENT
    assert job.attempts == 1
