"""Task-queue entry points of metering. Each is safe to run more than once."""

from .meter_errors import meter_error_report_apply
from .usage_outbox import usage_outbox_send


def usage_outbox_send_task() -> str:
    """Send due usage revisions to Stripe meters (one call per customer and meter at a time)."""
    return usage_outbox_send().summary()


def meter_error_report_apply_task(event_id: str) -> str:
    """Read one meter error report from Stripe and fail the revisions it names (once)."""
    return meter_error_report_apply(event_id=event_id).state
