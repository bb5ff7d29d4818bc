"""Meter events Stripe accepted and refused later: its error reports, put back to an operator.

Stripe validates meter events asynchronously. A bad customer mapping, value or meter is
reported as the `v1.billing.meter.error_report_triggered` thin event (an event name no meter
has, as `v1.billing.meter.no_meter_found`), sent to an event destination (not to the classic
webhook endpoint). The request only verifies the signature
(stripe-python's thin-event parsing) and records the notification; a task then reads the event
from Stripe (`/v2/core/events/{id}`: a thin event carries no data) and marks every revision
named in its sample errors `failed` with Stripe's code and message, and alerts billing with
Stripe's count (the samples may name only some of the refused events: the quantity check finds
the rest). A refused revision is not sent again as is: its identifier reached Stripe.
"""

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from billing_project import stripe_api
from billing_project.alerts import alert_raise
from billing_project.datapoints import datapoint_record
from billing_project.stripe_api import StripeApiError

from .usage_models import MeterErrorReport, UsageRevision

logger = logging.getLogger("billing.meter_errors")

ERROR_REPORT_EVENT = "v1.billing.meter.error_report_triggered"
NO_METER_EVENT = "v1.billing.meter.no_meter_found"  # the same report, for an unknown event name
REPORT_EVENTS = (ERROR_REPORT_EVENT, NO_METER_EVENT)
APPLY_TASK = "metering.tasks.meter_error_report_apply_task"
IDEMPOTENCY_PREFIX = "meter-event:"


def meter_error_report_record(*, event_id: str, event_type: str) -> MeterErrorReport | None:
    """Record a verified thin event notification (once per event id); start reading it after
    commit. Other event types are recorded as received and left alone."""
    try:
        with transaction.atomic():
            report = MeterErrorReport.objects.create(
                event_id=event_id, event_type=event_type, received_at=timezone.now()
            )
    except IntegrityError:
        return None  # Stripe sent this notification before
    if event_type in REPORT_EVENTS:
        transaction.on_commit(lambda: async_task(APPLY_TASK, event_id))
    return report


def _identifier(sample: dict[str, Any]) -> str:
    identifier = ((sample.get("request") or {}).get("identifier")) or ""
    return identifier.removeprefix(IDEMPOTENCY_PREFIX)


def meter_error_report_apply(*, event_id: str) -> MeterErrorReport:
    """Read the reported event from Stripe and fail the revisions it names. Idempotent."""
    report = MeterErrorReport.objects.get(event_id=event_id)
    if report.state == MeterErrorReport.State.APPLIED:
        return report
    try:
        event = stripe_api.request("get", f"/v2/core/events/{event_id}")
    except StripeApiError as exc:
        MeterErrorReport.objects.filter(pk=report.pk).update(last_error=exc.message)
        raise  # the task fails; the report stays pending and is read again by the next try
    reason = (event.get("data") or {}).get("reason") or {}
    refused: dict[str, tuple[str, str]] = {}
    for error_type in reason.get("error_types") or []:
        code = error_type.get("code") or "unknown"
        for sample in error_type.get("sample_errors") or []:
            identifier = _identifier(sample)
            if identifier:
                refused[identifier] = (code, sample.get("error_message") or "")
    with transaction.atomic():
        count = 0
        for identifier, (code, message) in refused.items():
            count += UsageRevision.objects.filter(identifier=identifier).update(
                state=UsageRevision.State.FAILED,
                stripe_error_code=code[:64],
                next_attempt_at=None,
                last_error=f"Stripe refused it after accepting it ({code}): {message}"[:2000],
            )
        MeterErrorReport.objects.filter(pk=report.pk).update(
            state=MeterErrorReport.State.APPLIED,
            error_count=int(reason.get("error_count") or 0),
            revisions_refused=count,
            detail=event,
            last_error="",
        )
        datapoint_record(
            name="usage_refused_by_stripe",
            dimensions={"event_id": event_id, "errors": reason.get("error_count"), "ours": count},
        )
        alert_raise(
            route="billing",
            title=f"Stripe refused {reason.get('error_count', '?')} meter event(s) after accepting",
            body=_alert_body(event, refused),
            dimensions={"event_id": event_id, "revisions": count},
        )
    report.refresh_from_db()
    return report


def _alert_body(event: dict[str, Any], refused: dict[str, tuple[str, str]]) -> str:
    data = event.get("data") or {}
    lines = [
        data.get("developer_message_summary") or "",
        f"Window {data.get('validation_start', '?')} – {data.get('validation_end', '?')} (UTC).",
        f"{len(refused)} of our usage revisions are named in Stripe's samples and are now "
        "failed with Stripe's reason; fix the cause (customer mapping, value), then post the "
        "usage again as a correction. Run usage_quantity_check for the ones not sampled.",
    ]
    lines += [
        f"  {identifier}: {code} {message}" for identifier, (code, message) in refused.items()
    ]
    return "\n".join(line for line in lines if line)
