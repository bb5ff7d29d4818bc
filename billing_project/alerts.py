"""Alerts to people, on two routes.

- operations: Slack #alerts (`SLACK_ALERTS_WEBHOOK_URL`)
- billing: Slack #billing-alerts (`SLACK_BILLING_ALERTS_WEBHOOK_URL`) and `BILLING_ALERT_EMAILS`

Both channels are optional. An alert is stored first and delivered by a task after commit,
so no network call happens inside the caller's transaction and a retry never posts twice to a
channel that already has it.
"""

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .datapoints import _plain
from .models import Alert

logger = logging.getLogger("billing.alerts")

SLACK_TIMEOUT_SECONDS = 10


def alert_raise(
    *, route: str, title: str, body: str = "", dimensions: Mapping[str, Any] | None = None
) -> Alert:
    """Store an alert and enqueue its delivery once the surrounding transaction commits."""
    alert = Alert.objects.create(
        route=Alert.Route(route),
        title=title[:200],
        body=body,
        dimensions={k: _plain(v) for k, v in (dimensions or {}).items()},
    )
    logger.warning(title, extra={"alert_route": route, "alert_id": alert.pk})
    transaction.on_commit(lambda: _enqueue_delivery(alert.pk))
    return alert


def _enqueue_delivery(alert_id: int) -> None:
    from django_q.tasks import async_task

    async_task("billing_project.tasks.alert_deliver_task", alert_id, task_name=f"alert-{alert_id}")


def _slack_url(route: str) -> str:
    if route == Alert.Route.BILLING:
        return settings.SLACK_BILLING_ALERTS_WEBHOOK_URL
    return settings.SLACK_ALERTS_WEBHOOK_URL


def alert_deliver(*, alert_id: int) -> Alert:
    """Deliver an alert to each configured channel not yet done. Safe to re-run."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        alert.attempts += 1
        alert.save(update_fields=["attempts"])
    errors = []
    slack_url = _slack_url(alert.route)
    if slack_url and alert.slack_sent_at is None:
        try:
            _post_slack(slack_url, alert)
        except OSError as exc:
            errors.append(f"slack: {exc}")
        else:
            Alert.objects.filter(pk=alert.pk).update(slack_sent_at=timezone.now())
    emails = settings.BILLING_ALERT_EMAILS if alert.route == Alert.Route.BILLING else []
    if emails and alert.email_sent_at is None:
        try:
            send_mail(
                subject=f"[billing alert] {alert.title}",
                message=_text(alert),
                from_email=settings.BILLING_FROM_EMAIL,
                recipient_list=emails,
            )
        except Exception as exc:  # the email backend's own error types vary by ESP
            errors.append(f"email: {exc}")
        else:
            Alert.objects.filter(pk=alert.pk).update(email_sent_at=timezone.now())
    Alert.objects.filter(pk=alert.pk).update(last_error="; ".join(errors))
    alert.refresh_from_db()
    if errors:
        raise RuntimeError(f"alert {alert.pk} not fully delivered: {'; '.join(errors)}")
    return alert


def _text(alert: Alert) -> str:
    lines = [alert.title]
    if alert.body:
        lines += ["", alert.body]
    if alert.dimensions:
        lines += ["", *(f"{key}: {value}" for key, value in alert.dimensions.items())]
    return "\n".join(lines)


def _post_slack(url: str, alert: Alert) -> None:
    data = json.dumps({"text": _text(alert)}).encode()
    request = urllib.request.Request(  # noqa: S310 (URL comes from settings, https in production)
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=SLACK_TIMEOUT_SECONDS) as response:  # noqa: S310
        if response.status >= 300:
            raise OSError(f"Slack answered {response.status}")
