"""The operator's delivery admin: changelist, filters, search, detail, actions and the funnel."""

import html
import re
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import WARNING
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import timezone

from invoices.admin import FinalizedMonthFilter, month_param
from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.selectors import delivery_funnel
from tests.factories import (
    BillingAccountFactory,
    CohortFactory,
    DeliveryEventFactory,
    EmailAttemptFactory,
    InvoiceDeliveryFactory,
)
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

pytestmark = pytest.mark.django_db

State = InvoiceDelivery.State
CHANGELIST = "admin:invoices_invoicedelivery_changelist"


def change_url(delivery: InvoiceDelivery) -> str:
    return reverse("admin:invoices_invoicedelivery_change", args=[delivery.pk])


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {str(delivery) for delivery in response.context["cl"].result_list}


def message_texts(response, level: int | None = None) -> list[str]:
    return [m.message for m in response.context["messages"] if level is None or m.level == level]


def this_month(day: int = 2):
    return timezone.now().replace(day=day, hour=9, minute=0, second=0, microsecond=0)


def test_changelist_shows_each_column_in_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    deliveries = InvoiceDeliveryFactory.create_batch(30, sent=True, total_minor=123_456)
    for delivery in deliveries:
        DeliveryEventFactory(delivery=delivery, step="recorded")
        DeliveryEventFactory(
            delivery=delivery, step="email_sent", at=delivery.finalized_at + timedelta(minutes=7)
        )
    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse(CHANGELIST))
    assert listed(response) == {str(d) for d in deliveries}
    page = response.content.decode()
    first = deliveries[0]
    assert first.account.billing_email in page
    assert str(first.account) in page
    assert "$1,234.56" in page
    assert page.count("email sent") == 30
    assert "recorded" not in page.split('id="result_list"')[1]


@pytest.mark.calendar
def test_changelist_filters_by_state_month_and_cohort(admin_client):
    cohort = CohortFactory()
    in_cohort = InvoiceDeliveryFactory(
        sent=True, finalized_at=this_month(), account=BillingAccountFactory(cohort=cohort)
    )
    failed = InvoiceDeliveryFactory(state=State.FAILED, finalized_at=this_month())
    last_year = InvoiceDeliveryFactory(sent=True, finalized_at=this_month() - timedelta(days=400))
    url = reverse(CHANGELIST)

    assert listed(admin_client.get(url, {"state": "failed"})) == {str(failed)}
    assert listed(admin_client.get(url, {"month": month_param(timezone.localdate())})) == {
        str(in_cohort),
        str(failed),
    }
    assert listed(admin_client.get(url, {"month": month_param(last_year.finalized_at)})) == {
        str(last_year)
    }
    assert listed(admin_client.get(url, {"account__cohort__id__exact": cohort.pk})) == {
        str(in_cohort)
    }
    assert listed(admin_client.get(url, {"state": "sent", "month": f"{this_month():%Y-%m}"})) == {
        str(in_cohort)
    }


@pytest.mark.calendar
def test_month_filter_offers_the_last_twelve_months_and_refuses_nonsense(admin_client):
    response = admin_client.get(reverse(CHANGELIST))
    month_filter = next(
        spec
        for spec in response.context["cl"].filter_specs
        if isinstance(spec, FinalizedMonthFilter)
    )
    values = [value for value, _ in month_filter.lookup_choices]
    assert len(values) == 12
    assert values[0] == month_param(timezone.localdate())
    assert values[-1] < values[0]
    refused = admin_client.get(reverse(CHANGELIST), {"month": "March"})
    assert refused.status_code == 302
    assert "e=1" in refused["Location"]


@pytest.mark.parametrize("field", ["number", "stripe_invoice_id", "acct_id", "billing_email"])
def test_search_finds_a_delivery_by_number_invoice_id_account_and_email(admin_client, field):
    wanted = InvoiceDeliveryFactory(sent=True)
    InvoiceDeliveryFactory(sent=True)
    term = {
        "number": wanted.number,
        "stripe_invoice_id": wanted.stripe_invoice_id,
        "acct_id": str(wanted.account.acct_id),
        "billing_email": wanted.account.billing_email,
    }[field]
    assert listed(admin_client.get(reverse(CHANGELIST), {"q": term})) == {str(wanted)}


def test_detail_shows_the_timeline_and_a_short_lived_presigned_pdf_link(
    admin_client, admin_user, s3_bucket, django_assert_max_num_queries
):
    delivery = InvoiceDeliveryFactory(sent=True)
    content = b"%PDF-1.4 admin detail test"
    key = storages["default"].save(
        f"{delivery.account.acct_id}/{delivery.inv_uuid}.pdf", ContentFile(content)
    )
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(pdf_key=key)
    for step in ("recorded", "pdf_rendered", "pdf_stored", "email_sending"):
        DeliveryEventFactory(delivery=delivery, step=step, by=admin_user)
    DeliveryEventFactory(delivery=delivery, step="email_sent", message="accepted by Mailgun")
    EmailAttemptFactory(delivery=delivery, recipient="ap@northwind.example")
    EmailAttemptFactory(delivery=delivery, request_key="resend-1", requested_by=admin_user)

    with django_assert_max_num_queries(7):
        response = admin_client.get(change_url(delivery))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Timeline" in page
    assert "accepted by Mailgun" in page
    assert "ap@northwind.example" in page
    for fieldset in ("Invoice", "PDF", "Email", "State"):
        assert f">{fieldset}</h2>" in page
    link = html.unescape(re.search(r'href="([^"]+)"[^>]*>Download PDF<', page).group(1))
    assert "X-Amz-Signature=" in link
    assert "X-Amz-Expires=300" in link
    with urllib.request.urlopen(link) as answer:
        assert answer.read() == content


@pytest.fixture
def sent_deliveries(
    client, server, mailgun, s3_bucket, endpoint_url, django_capture_on_commit_callbacks
):
    """Two deliveries sent through the whole pipeline, to two different recipients."""
    deliveries = []
    for acct_id, email in ((1042, "ap@northwind.example"), (1043, "billing@contoso.example")):
        _, customer = billed_customer(acct_id=acct_id, email=email)
        event = finalized_event(server, customer.id)
        deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
        deliveries.append(
            InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
        )
    assert [d.state for d in deliveries] == [State.SENT, State.SENT]
    assert len(mailgun.messages) == 2
    return deliveries


def test_resend_action_confirms_recipients_then_sends_one_email_per_delivery(
    admin_client, admin_user, sent_deliveries, mailgun, django_capture_on_commit_callbacks
):
    url = reverse(CHANGELIST)
    selection = {"action": "resend_email", "_selected_action": [d.pk for d in sent_deliveries]}
    with django_capture_on_commit_callbacks(execute=True):
        confirmation = admin_client.post(url, {**selection, "index": 0})
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert "ap@northwind.example" in page
    assert "billing@contoso.example" in page
    for delivery in sent_deliveries:
        assert str(delivery) in page
    assert len(mailgun.messages) == 2

    confirmed = {**selection, "post": "yes", "request_key": confirmation.context["request_key"]}
    for _ in range(2):  # the same form submitted twice
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(url, confirmed, follow=True)
        assert response.status_code == 200
    assert sorted(m.to[0] for m in mailgun.messages[2:]) == [
        "ap@northwind.example",
        "billing@contoso.example",
    ]
    assert len(mailgun.messages) == 4
    resends = EmailAttempt.objects.filter(request_key=confirmed["request_key"])
    assert resends.count() == 2
    assert {attempt.requested_by_id for attempt in resends} == {admin_user.pk}
    assert any("Re-send queued" in text for text in message_texts(response))


def test_resend_from_the_detail_page_confirms_then_returns_to_the_delivery(
    admin_client, sent_deliveries, mailgun, django_capture_on_commit_callbacks
):
    delivery = sent_deliveries[0]
    url = reverse("admin:invoices_invoicedelivery_resend", args=[delivery.pk])
    detail = admin_client.get(change_url(delivery))
    assert url in detail.content.decode()
    confirmation = admin_client.get(url)
    assert "ap@northwind.example" in confirmation.content.decode()
    assert len(mailgun.messages) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"request_key": confirmation.context["request_key"]})
    assert response.status_code == 302
    assert response["Location"] == change_url(delivery)
    assert [m.to[0] for m in mailgun.messages[2:]] == ["ap@northwind.example"]


def test_resend_of_an_unsent_delivery_is_skipped_with_the_reason(admin_client):
    pending = InvoiceDeliveryFactory()
    url = reverse(CHANGELIST)
    selection = {"action": "resend_email", "_selected_action": [pending.pk]}
    confirmation = admin_client.post(url, {**selection, "index": 0})
    assert "nothing to re-send" in confirmation.content.decode()
    assert "Yes, send" not in confirmation.content.decode()
    key = confirmation.context["request_key"]
    response = admin_client.post(url, {**selection, "post": "yes", "request_key": key}, follow=True)
    assert any("nothing to re-send" in text for text in message_texts(response, WARNING))
    assert not EmailAttempt.objects.filter(delivery=pending).exists()


@pytest.mark.parametrize(
    ("action", "state", "warning"),
    [
        ("retry_failed", State.SENT, "only a failed delivery can be retried"),
        ("rerender_pdf", State.PENDING, "nothing to re-render"),
    ],
)
def test_action_on_a_delivery_in_the_wrong_state_warns_with_the_services_reason(
    admin_client, action, state, warning
):
    delivery = InvoiceDeliveryFactory(state=state)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [delivery.pk], "index": 0},
        follow=True,
    )
    warnings = message_texts(response, WARNING)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{delivery}: {warning}")
    delivery.refresh_from_db()
    assert delivery.state == state


def test_retry_from_the_detail_page_resumes_a_failed_delivery(admin_client, admin_user):
    delivery = InvoiceDeliveryFactory(state=State.FAILED, pdf_key="1/x.pdf")
    detail = admin_client.get(change_url(delivery)).content.decode()
    retry = reverse("admin:invoices_invoicedelivery_retry", args=[delivery.pk])
    assert retry in detail
    assert admin_client.get(retry).status_code == 405
    response = admin_client.post(retry, follow=True)
    assert any("Retry started" in text for text in message_texts(response))
    delivery.refresh_from_db()
    assert delivery.state == State.STORED
    assert delivery.events.get(step="retry_requested").by == admin_user


@pytest.fixture
def auditor_client(client, django_user_model):
    auditor = django_user_model.objects.create_user("auditor", is_staff=True)
    auditor.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="invoices", codename__startswith="view_")
    )
    client.force_login(auditor)
    return client


def test_a_user_without_change_permission_sees_deliveries_but_cannot_act(auditor_client):
    delivery = InvoiceDeliveryFactory(state=State.FAILED, pdf_key="1/x.pdf")
    changelist = auditor_client.get(reverse(CHANGELIST))
    assert listed(changelist) == {str(delivery)}
    assert "resend_email" not in changelist.content.decode()
    detail = auditor_client.get(change_url(delivery))
    assert detail.status_code == 200
    assert "Retry failed delivery" not in detail.content.decode()

    for name in ("retry", "rerender", "resend"):
        url = reverse(f"admin:invoices_invoicedelivery_{name}", args=[delivery.pk])
        assert auditor_client.post(url, {"request_key": f"resend-{'0' * 32}"}).status_code == 403
    auditor_client.post(
        reverse(CHANGELIST),
        {"action": "retry_failed", "_selected_action": [delivery.pk], "index": 0},
    )
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert not delivery.events.exists()


@pytest.mark.calendar
def test_delivery_funnel_counts_this_months_deliveries_per_state_in_one_query(
    django_assert_num_queries,
):
    InvoiceDeliveryFactory.create_batch(3, sent=True, finalized_at=this_month())
    InvoiceDeliveryFactory(state=State.FAILED, finalized_at=this_month(day=1))
    InvoiceDeliveryFactory(sent=True, finalized_at=this_month() - timedelta(days=40))
    with django_assert_num_queries(1):
        funnel = delivery_funnel(month=timezone.localdate())
    assert [state for state, _ in funnel] == [
        "pending",
        "rendered",
        "stored",
        "sending",
        "sent",
        "delivered",
        "bounced",
        "complained",
        "failed",
        "not_ours",
    ]
    assert dict(funnel) == {**dict.fromkeys(State.values, 0), "sent": 3, "failed": 1}


@pytest.mark.calendar
def test_index_shows_this_months_funnel_linking_to_the_filtered_changelist(admin_client):
    InvoiceDeliveryFactory.create_batch(3, sent=True, finalized_at=this_month())
    InvoiceDeliveryFactory(state=State.BOUNCED, finalized_at=this_month())
    InvoiceDeliveryFactory(sent=True, finalized_at=this_month() - timedelta(days=40))
    response = admin_client.get(reverse("admin:index"))
    page = response.content.decode()
    month = timezone.localdate()
    assert f"Invoice delivery — {month:%B %Y}" in page
    assert 'data-state="sent" data-count="3"' in page
    assert 'data-state="bounced" data-count="1"' in page
    assert 'data-state="failed" data-count="0"' in page
    assert f"{reverse(CHANGELIST)}?month={month_param(month)}&amp;state=sent" in page
    assert "All 4 invoices finalized" in page


def test_times_on_the_delivery_pages_say_utc(admin_client):
    finalized = datetime(2026, 12, 4, 18, 5, tzinfo=UTC)
    delivery = InvoiceDeliveryFactory(sent=True, finalized_at=finalized)
    DeliveryEventFactory(
        delivery=delivery, step="email_sent", at=finalized + timedelta(seconds=429)
    )

    changelist = admin_client.get(reverse(CHANGELIST)).content.decode()
    detail = admin_client.get(change_url(delivery)).content.decode()

    assert "2026-12-04 18:12 UTC" in changelist  # the last event column
    assert "2026-12-04 18:12:09 UTC" in detail  # the timeline
    assert "2026-12-04 18:05 UTC" in detail  # finalized at, Django's own field display
