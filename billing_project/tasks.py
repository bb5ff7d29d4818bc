"""Task-queue entry points of the shared core. Each is safe to run more than once."""

import os
import socket

from django.utils import timezone

from .alerts import alert_deliver
from .models import WorkerHeartbeat

HEARTBEAT_NAME = "qcluster"


def worker_heartbeat_task() -> None:
    """Record that a worker is alive and executing tasks (read by /healthz)."""
    WorkerHeartbeat.objects.update_or_create(
        name=HEARTBEAT_NAME,
        defaults={"beat_at": timezone.now(), "host": socket.gethostname(), "pid": os.getpid()},
    )


def alert_deliver_task(alert_id: int) -> None:
    """Deliver one alert to the channels that do not have it yet."""
    alert_deliver(alert_id=alert_id)
