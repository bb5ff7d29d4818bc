"""Task-queue entry points of the exports app. Each is safe to run more than once."""

from billing_project.errors import ConflictError

from .events import stripe_events_export


def stripe_events_export_task() -> str:
    """Archive yesterday's and any missing days' Stripe events (idempotent)."""
    try:
        return stripe_events_export().summary()
    except ConflictError as exc:
        return f"skipped: {exc.message}"
