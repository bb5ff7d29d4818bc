import json
import logging

import pytest
from django.core import mail

from billing_project.alerts import alert_deliver, alert_raise
from billing_project.datapoints import datapoint_record
from billing_project.models import Alert, BillingEvent
from tests.harness.http_capture import CaptureServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def slack():
    with CaptureServer() as server:
        yield server


def test_datapoint_is_stored_and_logged_as_one_json_line(caplog):
    with caplog.at_level(logging.INFO, logger="billing.datapoints"):
        event = datapoint_record(
            name="reconcile_drift",
            dimensions={"account_id": 1042, "stripe_total": 12_345, "legacy_total": 12_300},
        )
    stored = BillingEvent.objects.get(pk=event.pk)
    assert stored.name == "reconcile_drift"
    assert stored.dimensions == {"account_id": 1042, "stripe_total": 12_345, "legacy_total": 12_300}
    record = next(r for r in caplog.records if r.name == "billing.datapoints")
    assert record.datapoint == "reconcile_drift"
    assert record.dimensions["stripe_total"] == 12_345


def test_billing_alert_goes_to_billing_slack_and_alert_emails(
    slack, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SLACK_BILLING_ALERTS_WEBHOOK_URL = slack.url("/billing")
    settings.SLACK_ALERTS_WEBHOOK_URL = slack.url("/ops")
    settings.BILLING_ALERT_EMAILS = ["jeffrey@adventive.com", "patrick@adventive.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alert = alert_raise(
            route="billing",
            title="Reconciliation drift: 2 accounts",
            dimensions={"cohort": 1, "delta": -45},
        )
        assert slack.requests == []  # nothing leaves before the transaction commits
    assert len(callbacks) == 1
    delivered = Alert.objects.get(pk=alert.pk)
    assert delivered.slack_sent_at is not None
    assert delivered.email_sent_at is not None
    assert [r["path"] for r in slack.requests] == ["/billing"]
    assert "Reconciliation drift: 2 accounts" in slack.json_bodies()[0]["text"]
    assert "delta: -45" in slack.json_bodies()[0]["text"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["jeffrey@adventive.com", "patrick@adventive.com"]


def test_operations_alert_goes_to_the_alerts_channel_only(
    slack, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SLACK_ALERTS_WEBHOOK_URL = slack.url("/ops")
    settings.SLACK_BILLING_ALERTS_WEBHOOK_URL = slack.url("/billing")
    settings.BILLING_ALERT_EMAILS = ["jeffrey@adventive.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(route="operations", title="PDF render failed for in_123")
    assert [r["path"] for r in slack.requests] == ["/ops"]
    assert mail.outbox == []


def test_alert_with_no_channel_configured_is_still_stored(
    settings, django_capture_on_commit_callbacks
):
    settings.SLACK_ALERTS_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(route="operations", title="Worker error rate above 1%")
    assert Alert.objects.get(pk=alert.pk).attempts == 1
    assert Alert.objects.get(pk=alert.pk).last_error == ""


def test_failed_slack_delivery_is_recorded_and_a_retry_does_not_repost(slack, settings):
    settings.SLACK_BILLING_ALERTS_WEBHOOK_URL = slack.url("/billing")
    settings.BILLING_ALERT_EMAILS = []
    slack.status = 500
    alert = Alert.objects.create(route="billing", title="drift")
    with pytest.raises(RuntimeError, match="not fully delivered"):
        alert_deliver(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.slack_sent_at is None
    assert "slack" in alert.last_error
    slack.status = 200
    alert_deliver(alert_id=alert.pk)
    alert_deliver(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.slack_sent_at is not None
    assert alert.attempts == 3
    assert len(slack.requests) == 2  # the failed one and exactly one success
    assert json.loads(slack.requests[-1]["body"])["text"].startswith("drift")


def test_alert_route_must_be_known():
    with pytest.raises(ValueError):
        alert_raise(route="nowhere", title="x")
