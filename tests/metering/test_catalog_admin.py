from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from metering.models import CatalogObject, ManagedJob
from metering.services import managed_job_create
from tests import factories

from .conftest import both_databases, seed_customer


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def account(stripe):
    account = factories.BillingAccountFactory(acct_id=951)
    seed_customer(stripe, account.stripe_customer_id)
    return account


@both_databases
@pytest.mark.parametrize(
    "name", ["catalogobject", "subscriptionrecord", "managedjob", "billingaccount"]
)
def test_changelists_render_in_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries, account, name
):
    CatalogObject.objects.create(key="k", object_type="price", stripe_id="price_1", kind="ST")
    managed_job_create(
        account=account, description="QA", service_month=date(2026, 1, 1), amount_minor=100
    )
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(f"admin:metering_{name}_changelist"))
    assert response.status_code == 200


@both_databases
def test_the_portal_action_gives_a_session_link_for_one_account(admin_client, account, stripe):
    response = admin_client.post(
        reverse("admin:metering_billingaccount_changelist"),
        {"action": "customer_portal", "_selected_action": [account.pk]},
        follow=True,
    )
    (session,) = stripe.store.all("billing_portal.session")
    assert session["customer"] == account.stripe_customer_id
    assert session["return_url"].endswith(f"/admin/metering/billingaccount/{account.pk}/change/")
    assert any(session["url"] in text for text in _messages(response))


@both_databases
def test_the_portal_action_refuses_several_accounts(admin_client, account, stripe):
    other = factories.BillingAccountFactory(acct_id=952)
    response = admin_client.post(
        reverse("admin:metering_billingaccount_changelist"),
        {"action": "customer_portal", "_selected_action": [account.pk, other.pk]},
        follow=True,
    )
    assert "Select exactly one account." in _messages(response)
    assert stripe.store.all("billing_portal.session") == []


@both_databases
def test_a_job_entered_in_the_admin_is_sent_by_the_action_and_then_read_only(
    admin_client, account, stripe, admin_user
):
    response = admin_client.post(
        reverse("admin:metering_managedjob_add"),
        {
            "account": account.pk,
            "description": "Creative production",
            "service_month": "2026-01-17",
            "amount_minor": "37500",
            "currency": "usd",
        },
    )
    assert response.status_code == 302, response.content
    job = ManagedJob.objects.get()
    assert (job.service_month, job.created_by) == (date(2026, 1, 1), admin_user)
    response = admin_client.post(
        reverse("admin:metering_managedjob_changelist"),
        {"action": "send_to_stripe", "_selected_action": [job.pk]},
        follow=True,
    )
    job.refresh_from_db()
    assert job.status == ManagedJob.Status.SENT
    assert stripe.store.get("invoiceitem", job.stripe_invoice_item_id)["amount"] == 37_500
    assert "Managed jobs: 1 sent." in _messages(response)
    page = admin_client.get(reverse("admin:metering_managedjob_change", args=[job.pk]))
    assert b'name="amount_minor"' not in page.content
