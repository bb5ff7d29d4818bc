"""Everything a fault scenario runs against, started once per suite run and stopped at the end:
a private PostgreSQL cluster, SeaweedFS, the Stripe- and Mailgun-compatible servers (the
delivery benchmark's helper process), the app under gunicorn and a `qcluster` worker.

The app's processes get the settings the delivery benchmark gives them (`app_env`), pointed at
the private cluster, with `bench.faults.settings` as the settings module.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import delivery_bench
from bench.delivery import procs
from bench.delivery.servers import StandInServers
from bench.faults.cluster import PrivateCluster
from tests.harness.seaweed import SeaweedS3

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "fault_app"
LEGACY_DATABASE = "fault_app_legacy"
SETTINGS_MODULE = "bench.faults.settings"
WEB_WORKERS, WEB_THREADS = 2, 4


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class RestartableSeaweed(SeaweedS3):
    """SeaweedFS that can be stopped and started again on the same ports with the same data
    (the harness's `stop()` removes its data directory)."""

    def halt(self) -> None:
        process = self._process
        assert process is not None
        self._command = process.args
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        self._remove_grpc_sockets()

    def resume(self, timeout: float = 60, attempts: int = 3) -> None:
        """Start weed again; a start that fails (seen once: weed exiting at start-up after a
        minute down) is retried after a pause, its log tail kept in the error if all fail."""
        assert self._workdir is not None
        env = dict(os.environ, TMPDIR=str(self._workdir))
        for attempt in range(1, attempts + 1):
            self._process = subprocess.Popen(
                self._command,
                cwd=self._workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                self._wait_until_ready(time.monotonic() + timeout)
                return
            except Exception as exc:
                log(f"  SeaweedFS restart {attempt} failed: {str(exc)[-600:]}")
                if attempt == attempts:
                    raise
                self._process.kill()
                self._process.wait(timeout=10)
                self._remove_grpc_sockets()
                time.sleep(3)


@dataclass
class Stack:
    time_scale: float
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fault-suite-")))
    cluster: PrivateCluster | None = None
    servers: StandInServers | None = None
    s3: RestartableSeaweed | None = None
    web: procs.Service | None = None
    worker: procs.Service | None = None
    worker_starts: int = 0
    web_port: int = 0
    webhook_path: str = ""
    env: dict = field(default_factory=dict)
    worker_env: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, stack: contextlib.ExitStack) -> Stack:
        self.cluster = PrivateCluster().init()
        stack.callback(self.cluster.destroy)
        self.cluster.start()
        self.cluster.wait_ready()
        self.cluster.create_database(DATABASE)
        self.cluster.create_database(LEGACY_DATABASE)
        log(f"private PostgreSQL on port {self.cluster.port} ({self.cluster.root})")

        self.servers = StandInServers(
            mailgun_domain=delivery_bench.MAILGUN_DOMAIN,
            mailgun_api_key=delivery_bench.MAILGUN_API_KEY,
            mailgun_signing_key=delivery_bench.MAILGUN_SIGNING_KEY,
        ).start()
        stack.callback(self.servers.stop)
        self.s3 = RestartableSeaweed(
            access_key=delivery_bench.S3_ACCESS_KEY, secret_key=delivery_bench.S3_SECRET_KEY
        )
        self.s3.start()
        stack.callback(self.s3.stop)
        self.s3.create_bucket(delivery_bench.BUCKET)

        self.env = self._app_env(self.servers.urls["stripe"]["setup"])
        self._migrate()
        os.environ.update(self.env)
        import django

        django.setup()
        logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per enqueued tick
        from django.core.management import call_command
        from django.db import connections

        stack.callback(connections.close_all)
        self.web_port = procs.free_port()
        call_command("setup_webhook_endpoint", base_url=self.base_url, stdout=io.StringIO())
        call_command("setup_schedules", stdout=io.StringIO())
        from billing_project.stripe_webhook import webhook_endpoint_url

        self.webhook_path = webhook_endpoint_url(self.base_url)[len(self.base_url) :]
        self.web = procs.Service(
            "gunicorn",
            procs.gunicorn_command(
                self.web_port, workers=WEB_WORKERS, threads=WEB_THREADS, keep_alive=False
            ),
            self._app_env(self.servers.urls["stripe"]["web"]),
            ROOT,
            self.run_dir / "gunicorn.log",
        ).start()
        stack.callback(self.web.stop)
        self.worker_env = self._app_env(self.servers.urls["stripe"]["worker"])
        self.worker_start()
        stack.callback(self.worker_stop)
        procs.wait_http("127.0.0.1", self.web_port, "/healthz", timeout=90, service=self.web)
        return self

    def _app_env(self, stripe_base: str) -> dict:
        assert self.s3 is not None and self.servers is not None and self.cluster is not None
        env = delivery_bench.app_env(
            stripe_base=stripe_base,
            mailgun_api_url=self.servers.urls["mailgun_api_url"],
            s3_url=self.s3.endpoint_url,
            timing_dir=self.run_dir,
        )
        env.pop("BENCH_TIMING_DIR", None)
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            DATABASE_URL=self.cluster.url(DATABASE),
            LEGACY_DATABASE_URL=self.cluster.url(LEGACY_DATABASE),
            FAULTS_TIME_SCALE=f"{self.time_scale:g}",
        )
        return env

    def _migrate(self) -> None:
        log("creating the app's tables on the private cluster")
        out_path = self.run_dir / "migrate.log"
        with out_path.open("wb") as out:
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--run-syncdb", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=dict(self.env, FAULTS_SYNCDB="1"),
                stdout=out,
                stderr=out,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{out_path.read_text()[-3000:]}")

    # --- the worker -------------------------------------------------------------------------

    def worker_start(self) -> None:
        self.worker_starts += 1
        self.worker = procs.Service(
            "qcluster",
            [sys.executable, "-m", "bench.faults.worker"],
            self.worker_env,
            ROOT,
            self.run_dir / f"qcluster-{self.worker_starts}.log",
        ).start()

    def worker_kill(self) -> int:
        """SIGKILL the worker's main process and every process below it (a machine losing
        the worker); returns how many processes were killed."""
        assert self.worker is not None
        victims = [self.worker.pid, *procs.descendants(self.worker.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.worker.process is not None
        self.worker.process.wait(timeout=30)
        return len(victims)

    def worker_stop(self) -> None:
        if self.worker is not None:
            stray = self.worker.stop()
            if stray:
                log(f"qcluster: killed {len(stray)} processes left after it stopped")

    # --- checks on the app's database (from the suite's process) -----------------------------

    def in_flight(self) -> tuple[str, bool]:
        """What the app has taken in but not finished (the proof a fault hit work under way),
        and whether a webhook or a delivery is among it."""
        from django_q.models import OrmQ
        from djstripe.models import WebhookEventTrigger

        from invoices.models import InvoiceDelivery
        from invoices.services import WORK_STATES
        from metering.usage_models import UsageRevision

        try:
            webhooks = WebhookEventTrigger.objects.filter(valid=True, processed=False).count()
            deliveries = InvoiceDelivery.objects.filter(state__in=WORK_STATES).count()
            return (
                f"in flight: {OrmQ.objects.count()} queued tasks, {webhooks} webhooks "
                f"unprocessed, {deliveries} deliveries unsent, "
                f"{UsageRevision.objects.filter(state='pending').count()} usage pending"
            ), bool(webhooks or deliveries)
        except Exception as exc:  # the database may be the thing that is down
            self.db_reset_connections()
            return f"in flight: unknown ({type(exc).__name__})", False

    def retried(self, invoice_ids: list[str], usage_keys: list[str]) -> str:
        """How many of a scenario's deliveries and usage revisions needed more than one try:
        the proof the fault reached them."""
        from invoices.models import InvoiceDelivery
        from metering.usage_models import UsageRevision

        deliveries = InvoiceDelivery.objects.filter(
            stripe_invoice_id__in=invoice_ids, work_attempts__gt=1
        ).count()
        revisions = UsageRevision.objects.filter(
            identifier__in=[f"{key}:1" for key in usage_keys], attempts__gt=1
        ).count()
        return f"retried: {deliveries} deliveries, {revisions} usage revisions"

    def db_reset_connections(self) -> None:
        from django.db import connections

        for connection in connections.all():
            with contextlib.suppress(Exception):
                connection.close()
