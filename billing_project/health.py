"""`/healthz`: database, object storage and task queue, each checked for real.

200 when all are up, 503 when one is down; the body says which. The task queue counts as up
while the worker's heartbeat row is fresh (the worker writes it every minute).
"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import storages
from django.db import connections
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import WorkerHeartbeat
from .tasks import HEARTBEAT_NAME

HEALTH_PROBE_KEY = "healthz/probe"


def _database() -> dict:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _storage() -> dict:
    storage = storages["default"]
    storage.exists(HEALTH_PROBE_KEY)
    return {"ok": True, "backend": type(storage).__name__}


def _queue() -> dict:
    beat = WorkerHeartbeat.objects.filter(name=HEARTBEAT_NAME).first()
    if beat is None:
        return {"ok": False, "error": "no worker heartbeat yet"}
    age = timezone.now() - beat.beat_at
    ok = age <= timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS)
    result = {
        "ok": ok,
        "last_heartbeat": beat.beat_at.isoformat(),
        "age_s": int(age.total_seconds()),
    }
    if not ok:
        result["error"] = "worker heartbeat is stale"
    return result


CHECKS = {"database": _database, "storage": _storage, "queue": _queue}


def health_status() -> tuple[bool, dict]:
    components = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            components[name] = check()
        except Exception as exc:  # any failure of a dependency means "down", with its reason
            components[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        components[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    healthy = all(component["ok"] for component in components.values())
    return healthy, components


@never_cache
@require_GET
def healthz(request):
    healthy, components = health_status()
    body = {"status": "ok" if healthy else "down", "components": components}
    return JsonResponse(body, status=200 if healthy else 503)
