"""The processes the load benchmark runs against, started once and stopped at the end.

The delivery benchmark's set-up, with databases of its own on the shared PostgreSQL server:
SeaweedFS, the Stripe- and Mailgun-compatible servers (`bench/delivery/servers.py`), a database
copied from a migrated template, the app under gunicorn (2 workers × 4 threads, gthread,
keep-alive, `bench/delivery/gunicorn_conf.py` timing each request) and a `qcluster` worker
(`Q_WORKERS`, the app's default of 6 unless `BENCH_Q_WORKERS`), both with
`DJANGO_DEBUG=false`. No schedules are installed: the bench enqueues the usage outbox's task
itself (see `usage.py`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import delivery_bench
from bench.delivery import procs
from bench.delivery.servers import StandInServers

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "load_run"
LEGACY_DATABASE = "load_run_legacy"
TEMPLATE_DATABASE = "load_template"
WEB_WORKERS, WEB_THREADS = delivery_bench.WEB_WORKERS, delivery_bench.WEB_THREADS
Q_WORKERS = delivery_bench.Q_WORKERS


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Stack:
    run_dir: Path
    servers: StandInServers | None = None
    s3: object = None
    web: procs.Service | None = None
    worker: procs.Service | None = None
    web_port: int = 0
    webhook_path: str = ""
    notes: list[str] = field(default_factory=list)

    def env(self, stripe_door: str) -> dict[str, str]:
        assert self.servers is not None
        env = delivery_bench.app_env(
            stripe_base=self.servers.urls["stripe"][stripe_door],
            mailgun_api_url=self.servers.urls["mailgun_api_url"],
            s3_url=self.s3.endpoint_url,
            timing_dir=self.run_dir,
        )
        env["DATABASE_URL"] = procs.database_url(DATABASE)
        env["LEGACY_DATABASE_URL"] = procs.database_url(LEGACY_DATABASE)
        env["DJANGO_SECRET_KEY"] = "bench-load-" + "0123456789abcdef" * 4
        return env

    def start(self, stack: contextlib.ExitStack, *, keep_db: bool) -> Stack:
        from tests.harness.seaweed import SeaweedS3

        self.servers = StandInServers(
            mailgun_domain=delivery_bench.MAILGUN_DOMAIN,
            mailgun_api_key=delivery_bench.MAILGUN_API_KEY,
            mailgun_signing_key=delivery_bench.MAILGUN_SIGNING_KEY,
        ).start()
        stack.callback(self.servers.stop)
        self.s3 = SeaweedS3(
            access_key=delivery_bench.S3_ACCESS_KEY, secret_key=delivery_bench.S3_SECRET_KEY
        )
        self.s3.start()
        stack.callback(self.s3.stop)
        self.s3.create_bucket(delivery_bench.BUCKET)

        stack.callback(procs.database_drop, LEGACY_DATABASE)
        stack.callback(procs.database_drop, DATABASE)
        if not keep_db:
            stack.callback(procs.database_drop, TEMPLATE_DATABASE)
        self._databases_prepare(keep_db)

        os.environ.update(self.env("setup"))
        import django

        django.setup()
        import logging

        logging.getLogger("django-q").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connections

        stack.callback(connections.close_all)
        self.web_port = procs.free_port()
        base_url = f"http://127.0.0.1:{self.web_port}"
        call_command("setup_webhook_endpoint", base_url=base_url, stdout=io.StringIO())
        from billing_project.stripe_webhook import webhook_endpoint_url

        self.webhook_path = webhook_endpoint_url(base_url)[len(base_url) :]
        self.web = procs.Service(
            "gunicorn",
            procs.gunicorn_command(
                self.web_port,
                workers=WEB_WORKERS,
                threads=WEB_THREADS,
                config=ROOT / "bench" / "delivery" / "gunicorn_conf.py",
            ),
            self.env("web"),
            ROOT,
            self.run_dir / "gunicorn.log",
        ).start()
        stack.callback(lambda: _stop(self.web))
        self.worker = procs.Service(
            "qcluster",
            [sys.executable, "manage.py", "qcluster"],
            self.env("worker"),
            ROOT,
            self.run_dir / "qcluster.log",
        ).start()
        stack.callback(lambda: _stop(self.worker))
        procs.wait_http("127.0.0.1", self.web_port, "/healthz", timeout=90, service=self.web)
        return self

    def _databases_prepare(self, keep_db: bool) -> None:
        """A migrated template (kept with --keep-db; migrations added since are applied), and
        the run's database copied from it."""
        procs.database_create(LEGACY_DATABASE)
        command = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        target = TEMPLATE_DATABASE
        if keep_db and procs.database_exists(TEMPLATE_DATABASE):
            log(f"reusing {TEMPLATE_DATABASE}; applying any new migrations")
        else:
            log(f"migrating {TEMPLATE_DATABASE} (a few minutes)")
            target = TEMPLATE_DATABASE + "_building"
            procs.database_create(target)
        out_path = self.run_dir / "migrate.log"
        env = dict(self.env("setup"), DATABASE_URL=procs.database_url(target))
        with out_path.open("wb") as out:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=out, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{out_path.read_text()[-3000:]}")
        if target != TEMPLATE_DATABASE:
            procs.database_drop(TEMPLATE_DATABASE)
            procs.psql(f'ALTER DATABASE "{target}" RENAME TO "{TEMPLATE_DATABASE}"')
        procs.database_create(DATABASE, template=TEMPLATE_DATABASE)

    def cpu(self) -> delivery_bench.Cpu:
        """CPU-seconds so far of the web, the worker, the stand-ins, this process, PostgreSQL
        (every database on the shared server) and the whole machine."""
        return delivery_bench.Cpu(
            worker=self.worker.cpu_seconds(),
            web=self.web.cpu_seconds(),
            servers=procs.process_cpu_seconds(self.servers.pid),
            bench=procs.process_cpu_seconds("self"),
            postgres=procs.postgres_cpu_seconds(),
            machine=procs.machine_busy_seconds(),
            at=time.monotonic(),
        )

    def worker_check(self) -> None:
        assert self.worker is not None
        if not self.worker.alive():
            raise RuntimeError(f"the worker exited:\n{self.worker.log_tail()}")

    def web_timings(self) -> dict[str, dict]:
        """Per `X-Bench-Id`: the gunicorn hook's record of the request (time inside gunicorn)."""
        timings = {}
        for path in self.run_dir.glob("web-*.jsonl"):
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("id"):
                        record["worker_pid"] = path.stem.removeprefix("web-")
                        timings[record["id"]] = record
        return timings


def _stop(service: procs.Service | None) -> None:
    if service is None:
        return
    stray = service.stop()
    if stray:
        log(f"{service.name}: killed {len(stray)} processes left after it stopped: {stray}")
