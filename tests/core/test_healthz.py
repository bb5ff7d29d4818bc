"""/healthz reports database, storage and task queue for real, 503 when one is down."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.tasks import async_task

from billing_project.models import WorkerHeartbeat
from billing_project.tasks import HEARTBEAT_NAME
from tests.harness.qcluster import ROOT, QCluster


@pytest.mark.django_db
def test_healthz_is_200_when_database_storage_and_worker_are_up(client):
    async_task("billing_project.tasks.worker_heartbeat_task")  # runs inline (sync in tests)
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {name for name, c in body["components"].items() if c["ok"]} == {
        "database",
        "storage",
        "queue",
    }
    assert body["components"]["storage"]["backend"] == "S3Storage"


@pytest.mark.django_db
def test_healthz_is_503_without_a_worker_heartbeat(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["queue"] == {
        "ok": False,
        "error": "no worker heartbeat yet",
        "ms": response.json()["components"]["queue"]["ms"],
    }


@pytest.mark.django_db
def test_healthz_is_503_when_the_heartbeat_is_stale(client, settings):
    WorkerHeartbeat.objects.create(
        name=HEARTBEAT_NAME,
        beat_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS + 5),
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["queue"]["error"] == "worker heartbeat is stale"


@pytest.mark.django_db
def test_healthz_is_503_when_storage_is_unreachable(client, settings):
    WorkerHeartbeat.objects.create(name=HEARTBEAT_NAME, beat_at=timezone.now())
    storages = {**settings.STORAGES}
    default = {**storages["default"], "OPTIONS": {**storages["default"]["OPTIONS"]}}
    default["OPTIONS"]["endpoint_url"] = "http://127.0.0.1:9"  # discard port: nothing listens
    default["OPTIONS"]["client_config"] = default["OPTIONS"]["client_config"].merge(
        __import__("botocore.config").config.Config(
            retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1
        )
    )
    settings.STORAGES = {**storages, "default": default}
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["components"]["storage"]["ok"] is False
    assert body["components"]["database"]["ok"] is True


def test_healthz_is_503_when_the_database_is_unreachable():
    """Run in a separate process whose DATABASE_URL points at a port nothing listens on."""
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:9/none"}
    script = (
        "import django,json;django.setup();"
        "from django.test import Client;"
        "r=Client().get('/healthz');"
        "print(json.dumps({'status':r.status_code,'body':r.json()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "billing_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["components"]["database"]["ok"] is False


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_the_heartbeat_from_its_schedule(tmp_path, client):
    from django.core.management import call_command

    call_command("setup_schedules", verbosity=0)
    cluster = QCluster(log_path=tmp_path / "qcluster.log").start()
    try:
        beat = cluster.wait_for(
            lambda: WorkerHeartbeat.objects.filter(name=HEARTBEAT_NAME).first(),
            timeout=90,
            what="the worker heartbeat",
        )
        assert beat.pid != os.getpid()
        assert client.get("/healthz").status_code == 200
    finally:
        assert cluster.stop() is not None
