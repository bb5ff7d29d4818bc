"""Admin of producer tokens, the usage ledger and the outbox."""

import hashlib
import re

import pytest
from django.urls import reverse

from metering.usage_models import ProducerToken, UsageRecord, UsageRevision
from metering.usage_services import UsageItem, usage_record_batch
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import recent_day

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


@pytest.fixture
def rows():
    account = BillingAccountFactory(acct_id=7100)
    usage_record_batch(
        items=[UsageItem(n, 7100, recent_day(n + 1), "ST", 10 + n) for n in range(3)]
    )
    return account


def test_a_token_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    response = admin_client.post(
        reverse("admin:metering_producertoken_add"), {"name": "redshift"}, follow=True
    )
    assert response.status_code == 200
    shown = re.search(r"<code>(mtp_[\w-]+)</code>", response.content.decode())
    assert shown, "the new token is shown"
    token = ProducerToken.objects.get()
    assert token.token_sha256 == hashlib.sha256(shown.group(1).encode()).hexdigest()
    assert token.created_by.username == "admin"
    page = admin_client.get(reverse("admin:metering_producertoken_change", args=[token.pk]))
    assert shown.group(1) not in page.content.decode()


def test_revoking_a_token_from_the_changelist(admin_client):
    from metering.usage_services import producer_token_create

    token, _ = producer_token_create(name="old")
    admin_client.post(
        reverse("admin:metering_producertoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.parametrize(
    "name", ["metering_producertoken", "metering_usagerecord", "metering_usagerevision"]
)
def test_changelists_render_with_bounded_queries(
    admin_client, rows, name, django_assert_max_num_queries
):
    url = reverse(f"admin:{name}_changelist")
    with django_assert_max_num_queries(12):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert admin_client.get(url, {"q": "7100"}).status_code == 200


def test_usage_records_are_read_only(admin_client, rows):
    record = UsageRecord.objects.first()
    response = admin_client.post(
        reverse("admin:metering_usagerecord_change", args=[record.pk]), {"quantity": 1}
    )
    assert response.status_code == 403
    assert UsageRecord.objects.get(pk=record.pk).quantity == record.quantity


def test_failed_rows_are_retried_and_too_late_rows_settled_with_a_note(admin_client, rows):
    failed, too_late, sent = UsageRevision.objects.order_by("id")
    UsageRevision.objects.filter(pk=failed.pk).update(state="failed", attempts=10)
    UsageRevision.objects.filter(pk=too_late.pk).update(state="too_late", too_late_reason="old")
    UsageRevision.objects.filter(pk=sent.pk).update(state="sent")
    changelist = reverse("admin:metering_usagerevision_changelist")
    admin_client.post(
        changelist, {"action": "retry", "_selected_action": [failed.pk, sent.pk]}, follow=True
    )
    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == ("pending", 0)
    assert UsageRevision.objects.get(pk=sent.pk).state == "sent"
    change = reverse("admin:metering_usagerevision_change", args=[too_late.pk])
    page = admin_client.post(change, {"resolution_note": ""})
    assert page.status_code == 200  # the form again, with the error
    assert "This field is required" in page.content.decode()
    assert UsageRevision.objects.get(pk=too_late.pk).resolved_at is None
    admin_client.post(change, {"resolution_note": "credit note cn_42"}, follow=True)
    too_late.refresh_from_db()
    assert too_late.resolution_note == "credit note cn_42"
    assert too_late.resolved_by.username == "admin"
    listing = admin_client.get(changelist, {"too_late": "settled"}).content.decode()
    assert too_late.identifier in listing
