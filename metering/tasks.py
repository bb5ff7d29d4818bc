"""Task-queue entry points of metering. Each is safe to run more than once."""

from .usage_outbox import usage_outbox_send


def usage_outbox_send_task() -> str:
    """Send due usage revisions to Stripe meters (one call per customer and meter at a time)."""
    return usage_outbox_send().summary()
