"""`python -m bench.faults.worker`: the app's `qcluster`, with its recovery timers divided by
`FAULTS_TIME_SCALE` when that is set (the suite's `--short` variant).

The timers are the app's own waits before it resumes work a fault interrupted: a delivery's
lease, the age at which the sweeper treats a delivery as stuck, Mailgun's event-log settle time,
the webhook resume delays and the usage outbox's backoff. Dividing them lets a CI run see every
recovery path in seconds; the full variant runs with the values as they are.
"""

import os
import sys
from datetime import timedelta


def timers_scale(scale: float) -> dict[str, str]:
    """Divide the recovery timers by `scale`; returns what was changed (name -> new value)."""
    from billing_project import webhook_intake
    from invoices import mailgun, services, tasks
    from metering import usage_outbox

    def seconds(value: float) -> int:
        return max(1, int(value / scale))

    services.LEASE_SECONDS = seconds(services.LEASE_SECONDS)
    tasks.STUCK_AFTER = timedelta(seconds=seconds(tasks.STUCK_AFTER.total_seconds()))
    mailgun.EVENTS_SETTLE_SECONDS = seconds(mailgun.EVENTS_SETTLE_SECONDS)
    webhook_intake.RETRY_AFTER = timedelta(
        seconds=seconds(webhook_intake.RETRY_AFTER.total_seconds())
    )
    webhook_intake.LOST_AFTER = timedelta(
        seconds=seconds(webhook_intake.LOST_AFTER.total_seconds())
    )
    usage_outbox.OUTBOX_BACKOFF_SECONDS = [
        seconds(wait) for wait in usage_outbox.OUTBOX_BACKOFF_SECONDS
    ]
    return {
        "invoices.services.LEASE_SECONDS": str(services.LEASE_SECONDS),
        "invoices.tasks.STUCK_AFTER": str(tasks.STUCK_AFTER),
        "invoices.mailgun.EVENTS_SETTLE_SECONDS": str(mailgun.EVENTS_SETTLE_SECONDS),
        "billing_project.webhook_intake.RETRY_AFTER": str(webhook_intake.RETRY_AFTER),
        "billing_project.webhook_intake.LOST_AFTER": str(webhook_intake.LOST_AFTER),
        "metering.usage_outbox.OUTBOX_BACKOFF_SECONDS": str(usage_outbox.OUTBOX_BACKOFF_SECONDS),
    }


def main() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    scale = float(os.environ.get("FAULTS_TIME_SCALE") or 1)
    if scale != 1:
        for name, value in timers_scale(scale).items():
            print(f"fault suite: {name} = {value}", file=sys.stderr, flush=True)
    call_command("qcluster")


if __name__ == "__main__":
    main()
