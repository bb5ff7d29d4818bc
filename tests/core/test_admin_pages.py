"""Every admin page an operator can reach renders, with a bounded number of queries."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import (
    AlertFactory,
    BillingAccountFactory,
    BillingEventFactory,
    CohortFactory,
    CohortMembershipFactory,
    DeliveryEventFactory,
    EmailAttemptFactory,
    InvoiceDeliveryFactory,
    TrackingEventFactory,
)

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


@pytest.fixture
def some_rows():
    cohort = CohortFactory()
    for _ in range(3):
        CohortMembershipFactory(cohort=cohort, account=BillingAccountFactory(cohort=cohort))
    BillingEventFactory.create_batch(3)
    for delivery in (InvoiceDeliveryFactory(sent=True), InvoiceDeliveryFactory(not_ours=True)):
        DeliveryEventFactory(delivery=delivery)
        EmailAttemptFactory(delivery=delivery)
        TrackingEventFactory(delivery=delivery)
    AlertFactory.create_batch(2)


def changelist_urls():
    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    )


def test_only_webhook_records_remain_of_djstripe_admin():
    djstripe = {m._meta.model_name for m in admin.site._registry if m._meta.app_label == "djstripe"}
    assert djstripe == {"event", "webhookendpoint", "webhookeventtrigger"}


@pytest.mark.parametrize("url", changelist_urls())
def test_changelist_renders(admin_client, some_rows, url, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):
        response = admin_client.get(url)
    assert response.status_code == 200, url
    search = admin_client.get(url, {"q": "1042"})
    assert search.status_code == 200, url


def test_delivery_detail_shows_timeline_and_attempts(admin_client):
    delivery = InvoiceDeliveryFactory(sent=True)
    DeliveryEventFactory(delivery=delivery, step="email_sent", message="accepted by Mailgun")
    EmailAttemptFactory(delivery=delivery)
    url = reverse("admin:invoices_invoicedelivery_change", args=[delivery.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert b"accepted by Mailgun" in response.content
    assert b"Timeline" in response.content


def test_admin_index_has_the_project_title(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert b"Billing operations" in response.content
