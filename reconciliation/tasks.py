"""Task-queue entry points for reconciliation. Safe to run more than once: a day already
reconciled is skipped, never run twice."""

import logging
from datetime import date

from django.utils import timezone

from .models import ReconciliationRun
from .services import AlreadyRan, reconcile_run

logger = logging.getLogger("billing.reconciliation")


def reconcile_daily_task(run_date: str | None = None, cohort_number: int | None = None) -> str:
    """Reconcile today's (UTC) service month for every reconciled account, once per day."""
    day = date.fromisoformat(run_date) if run_date else timezone.now().date()
    try:
        outcome = reconcile_run(
            run_date=day, cohort_number=cohort_number, trigger=ReconciliationRun.Trigger.SCHEDULE
        )
    except AlreadyRan as exc:
        logger.info("reconciliation skipped: %s", exc.message)
        return f"skipped: {exc.message}"
    return f"run {outcome.run.pk}: {outcome.status} ({len(outcome.compared)} accounts)"
