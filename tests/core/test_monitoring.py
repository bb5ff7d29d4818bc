"""Monitors: the webhook endpoint's status in Stripe and the worker's task error rate."""

from datetime import timedelta
from io import StringIO

import pytest
import stripe as stripe_lib
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Task

from billing_project.models import Alert, Monitor
from billing_project.monitoring import (
    TASK_ERRORS_MONITOR,
    monitor_check,
    task_error_rate_read,
)
from billing_project.stripe_api import DEFAULT_RETRIES
from billing_project.webhook_intake import ENDPOINT_MONITOR

pytestmark = pytest.mark.django_db


def operations_alerts() -> list[str]:
    return list(Alert.objects.filter(route=Alert.Route.OPERATIONS).values_list("title", flat=True))


@pytest.fixture
def registered(stripe):
    call_command(
        "setup_webhook_endpoint", base_url="http://testserver", register=True, stdout=StringIO()
    )
    return stripe.store.all("webhook_endpoint")[0]["id"]


def test_both_monitors_are_listed_before_their_first_check():
    assert set(Monitor.objects.values_list("name", flat=True)) == {
        ENDPOINT_MONITOR,
        TASK_ERRORS_MONITOR,
    }
    assert not Monitor.objects.filter(ok__isnull=False).exists()


def test_an_enabled_endpoint_is_ok(registered):
    monitor = monitor_check(name=ENDPOINT_MONITOR)
    assert monitor.ok is True
    assert monitor.detail == {"endpoint": registered, "status": "enabled"}
    assert operations_alerts() == []


def test_a_disabled_endpoint_alerts_once_and_recovers(registered):
    stripe_lib.WebhookEndpoint.modify(registered, disabled=True)
    first = monitor_check(name=ENDPOINT_MONITOR)
    assert first.ok is False
    assert "disabled" in first.summary
    monitor_check(name=ENDPOINT_MONITOR)
    assert len(operations_alerts()) == 1
    assert "disabled" in operations_alerts()[0]

    stripe_lib.WebhookEndpoint.modify(registered, disabled=False)
    assert monitor_check(name=ENDPOINT_MONITOR).ok is True
    stripe_lib.WebhookEndpoint.modify(registered, disabled=True)
    monitor_check(name=ENDPOINT_MONITOR)
    assert len(operations_alerts()) == 2


def test_an_endpoint_never_registered_in_stripe_is_failing(stripe):
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    monitor = monitor_check(name=ENDPOINT_MONITOR)
    assert monitor.ok is False
    assert "not registered" in monitor.summary


def test_stripe_unreachable_counts_as_failing(registered, stripe):
    # Every attempt fails: the first try and the Stripe client's retries.
    stripe.fail_next(1 + DEFAULT_RETRIES, status=500, path="/v1/webhook_endpoints")
    monitor = monitor_check(name=ENDPOINT_MONITOR)
    assert monitor.ok is False
    assert "could not be asked" in monitor.summary


def _tasks(*, succeeded: int, failed: int, minutes_ago: int = 5) -> None:
    stopped = timezone.now() - timedelta(minutes=minutes_ago)
    for n in range(succeeded + failed):
        Task.objects.create(
            id=f"{minutes_ago:04d}{n:028d}",
            name=f"task-{minutes_ago}-{n}",
            func="billing_project.tasks.worker_heartbeat_task",
            started=stopped,
            stopped=stopped,
            success=n >= failed,
        )


@pytest.mark.parametrize(
    ("succeeded", "failed", "ok"), [(0, 0, True), (199, 1, True), (99, 2, False), (0, 1, False)]
)
def test_task_error_rate_over_one_percent_in_the_last_hour_is_failing(succeeded, failed, ok):
    _tasks(succeeded=succeeded, failed=failed)
    _tasks(succeeded=0, failed=30, minutes_ago=61)  # older than the window
    reading = task_error_rate_read()
    assert reading.ok is ok
    assert reading.detail == {"tasks": succeeded + failed, "failed": failed}


def test_a_failing_error_rate_is_alerted_to_operations():
    _tasks(succeeded=10, failed=1)
    monitor = monitor_check(name=TASK_ERRORS_MONITOR)
    assert monitor.ok is False
    assert len(operations_alerts()) == 1
    assert "1 of 11" in operations_alerts()[0]
