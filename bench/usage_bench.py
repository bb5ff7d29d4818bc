"""Usage ingestion: batch throughput and single-item latency of `POST /usage` on PostgreSQL.

The app runs under gunicorn (`--workers 2 --threads 4`, gthread, `DJANGO_DEBUG=false`) on a
fresh PostgreSQL database with `--accounts` billing accounts and one producer token; the bench
talks HTTP/1.1 with keep-alive, like a producer.

Phases:
1. batch throughput: `--batches` lists of 1,000 new items (distinct keys) on `--connections`
   concurrent connections; records per second = items stored / wall time from the first post
   to the last answer. Then the same batches again, which must come back all `duplicate`.
2. single-item latency: `--singles` one-item posts, one at a time on one connection
   (client-observed, request written to answer read), and the same on `--connections`
   connections at once.
Afterwards the database must hold exactly one record and one outbox row per key.

Run: `.venv/bin/python bench/usage_bench.py [--accounts 2000] [--batches 60] [--singles 2000]
[--connections 4] [--conn-max-age 60] [--keep-db] [--template DB]`. The first run migrates a
template database (`bench_usage_template`; `--keep-db` keeps it); `--template` copies any
migrated database instead. `--conn-max-age` is the app's `DATABASE_CONN_MAX_AGE` (0 opens a
PostgreSQL connection per request). Exits non-zero on a failed request or a miscount, not on a
missed target.
"""

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import procs
from bench.delivery.load import percentile

DATABASE = "bench_usage"
TEMPLATE_DATABASE = "bench_usage_template"
ACCT_ID_BASE = 800_000
TYPES = ("ST", "RM", "CV")
TARGET_RECORDS_PER_SECOND = 5_000
TARGET_P99_MS = 20.0
WEB_WORKERS, WEB_THREADS = 2, 4


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def app_env(conn_max_age: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "billing_project.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-usage-" + "0123456789abcdef" * 4,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": procs.database_url(DATABASE),
            "DATABASE_CONN_MAX_AGE": str(conn_max_age),
            "STRIPE_SECRET_KEY": "sk_test_BenchUsage0000000000000000000",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench_usage_000000000000000000",
            "STRIPE_EVENT_DESTINATION_SECRET": "whsec_bench_usage_destination_00000",
            "LOG_LEVEL": "WARNING",
        }
    )
    for name in ("LEGACY_DATABASE_URL", "R2_INVOICE_BUCKET", "MAILGUN_API_KEY", "Q_SYNC"):
        env.pop(name, None)
    return env


def prepare_database(args: argparse.Namespace, env: dict[str, str], run_dir: Path) -> None:
    template = args.template or TEMPLATE_DATABASE
    if not args.template and not (args.keep_db and procs.database_exists(TEMPLATE_DATABASE)):
        log("migrating the template database (about two minutes)")
        procs.database_create(TEMPLATE_DATABASE)
        migrate_env = dict(env, DATABASE_URL=procs.database_url(TEMPLATE_DATABASE))
        with (run_dir / "migrate.log").open("wb") as out:
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=migrate_env,
                stdout=out,
                stderr=out,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{(run_dir / 'migrate.log').read_text()[-3000:]}")
    procs.database_create(DATABASE, template=template)


SEED = """
from metering.models import BillingAccount
from metering.usage_models import UsageRecord, UsageRevision
from metering.usage_services import producer_token_create
UsageRevision.objects.all().delete(); UsageRecord.objects.all().delete()
BillingAccount.objects.bulk_create(
    [BillingAccount(acct_id={base} + n, name=f"Bench {{n}}") for n in range({count})],
    ignore_conflicts=True,
)
print(producer_token_create(name="usage bench")[1])
"""


def seed(env: dict[str, str], accounts: int) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            SEED.format(base=ACCT_ID_BASE, count=accounts),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def count_rows(database: str) -> tuple[int, int]:
    records = int(procs.psql("SELECT count(*) FROM metering_usagerecord", database))
    revisions = int(procs.psql("SELECT count(*) FROM metering_usagerevision", database))
    return records, revisions


class Producer:
    """One keep-alive connection posting to /usage."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: bytes) -> tuple[float, int, dict]:
        started = time.perf_counter()
        self.connection.request("POST", "/usage", body=body, headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        return elapsed, response.status, json.loads(payload)

    def close(self) -> None:
        self.connection.close()


def batches_of(accounts: int, count: int, size: int = 1000) -> list[bytes]:
    """`count` bodies of `size` items with keys no other body uses (account × type × day)."""
    today = datetime.now(UTC).date()
    keys = (
        (ACCT_ID_BASE + n % accounts, TYPES[(n // accounts) % 3], n // (accounts * 3))
        for n in range(count * size)
    )
    bodies, items = [], []
    for acct_id, usage_type, day in keys:
        period = (today - timedelta(days=1 + day)).isoformat()
        items.append(
            {"acct_id": acct_id, "period": period, "type": usage_type, "quantity": day + 1}
        )
        if len(items) == size:
            bodies.append(json.dumps(items).encode())
            items = []
    return bodies


def post_all(port: int, token: str, bodies: list[bytes], connections: int) -> list[tuple]:
    """Post every body across `connections` connections (each takes the next body when free)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    results: list[tuple] = [None] * len(bodies)  # type: ignore[list-item]

    def run() -> None:
        producer = Producer(port, token)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    index, body = queue.pop(0)
                results[index] = producer.post(body)
        finally:
            producer.close()

    with ThreadPoolExecutor(max_workers=connections) as pool:
        for future in [pool.submit(run) for _ in range(connections)]:
            future.result()
    return results


def cpu_now(web: procs.Service) -> tuple[float, float]:
    """CPU-seconds so far of the app (gunicorn tree) and of the PostgreSQL backends serving the
    bench database (other databases on the shared server are not counted; with
    DATABASE_CONN_MAX_AGE > 0 the app keeps the same backends, so their counters carry on)."""
    pids = procs.psql(
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{DATABASE}'"  # noqa: S608
    ).split()
    return web.cpu_seconds(), sum(procs.process_cpu_seconds(pid) for pid in pids)


def throughput(port: int, token: str, args: argparse.Namespace, web: procs.Service) -> dict:
    bodies = batches_of(args.accounts, args.batches)
    cpu_before = cpu_now(web)
    started = time.perf_counter()
    first = post_all(port, token, bodies, args.connections)
    wall = time.perf_counter() - started
    cpu_after = cpu_now(web)
    created = sum(r[2]["counts"]["created"] for r in first if r[1] == 200)
    failures = [r for r in first if r[1] != 200]
    started = time.perf_counter()
    again = post_all(port, token, bodies, args.connections)
    wall_again = time.perf_counter() - started
    duplicates = sum(r[2]["counts"]["duplicate"] for r in again if r[1] == 200)
    per_batch = [r[0] * 1000 for r in first]
    return {
        "items": len(bodies) * 1000,
        "created": created,
        "failures": len(failures) + sum(1 for r in again if r[1] != 200),
        "records_per_s": created / wall,
        "duplicates": duplicates,
        "duplicate_records_per_s": duplicates / wall_again,
        "batch_ms_p50": percentile(per_batch, 50),
        "batch_ms_p99": percentile(per_batch, 99),
        "app_cpu_ms_per_1000": (cpu_after[0] - cpu_before[0]) / max(created, 1) * 1e6,
        "pg_cpu_ms_per_1000": (cpu_after[1] - cpu_before[1]) / max(created, 1) * 1e6,
    }


def singles(
    port: int, token: str, args: argparse.Namespace, web: procs.Service, *, day_offset: int
) -> dict:
    today = datetime.now(UTC).date()
    bodies = [
        json.dumps(
            {
                "acct_id": ACCT_ID_BASE + n % args.accounts,
                "period": (today - timedelta(days=day_offset + n // args.accounts)).isoformat(),
                "type": "ST",
                "quantity": 7,
            }
        ).encode()
        for n in range(args.singles)
    ]
    warm = Producer(port, token)
    for _ in range(20):
        warm.post(json.dumps({"acct_id": 1, "period": "x"}).encode())
    warm.close()
    producer = Producer(port, token)
    cpu_before = cpu_now(web)
    alone = [producer.post(body) for body in bodies[: len(bodies) // 2]]
    cpu_after = cpu_now(web)
    producer.close()
    together = post_all(port, token, bodies[len(bodies) // 2 :], args.connections)
    statuses = {r[1] for r in alone + together}
    return {
        "alone_ms": [r[0] * 1000 for r in alone],
        "together_ms": [r[0] * 1000 for r in together],
        "created": sum(1 for r in alone + together if r[1] == 201),
        "app_cpu_ms": (cpu_after[0] - cpu_before[0]) / len(alone) * 1000,
        "pg_cpu_ms": (cpu_after[1] - cpu_before[1]) / len(alone) * 1000,
        "statuses": sorted(statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=60)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--template", help="copy this migrated database instead of migrating")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="usage-bench-"))
    env = app_env(args.conn_max_age)
    prepare_database(args, env, run_dir)
    token = seed(env, args.accounts)
    port = procs.free_port()
    web = procs.Service(
        "gunicorn",
        procs.gunicorn_command(port, workers=WEB_WORKERS, threads=WEB_THREADS, timeout=None),
        env,
        ROOT,
        run_dir / "gunicorn.log",
    ).start()
    ok = True
    try:
        procs.wait_http("127.0.0.1", port, "/healthz", timeout=60, service=web)
        log(f"throughput: {args.batches} batches of 1,000 on {args.connections} connections")
        busy_before = procs.machine_busy_seconds()
        batch = throughput(port, token, args, web)
        log(f"latency: {args.singles} single items")
        days_used = -(-args.batches * 1000 // (args.accounts * 3))
        single = singles(port, token, args, web, day_offset=days_used + 2)
        busy = procs.machine_busy_seconds() - busy_before
        records, revisions = count_rows(DATABASE)
        expected = batch["created"] + single["created"]
        ok = (
            batch["failures"] == 0
            and batch["created"] == batch["items"]
            and batch["duplicates"] == batch["items"]
            and single["created"] == args.singles
            and records == revisions == expected
        )
        alone, together = single["alone_ms"], single["together_ms"]
        rate, p99 = batch["records_per_s"], percentile(alone, 99)
        pair = "{:.1f} / {:.1f} ms".format
        rows = [
            ("batch ingestion (new keys)", f"{rate:,.0f} records/s", "≥ 5,000"),
            (
                "batch re-post (all duplicate)",
                f"{batch['duplicate_records_per_s']:,.0f} records/s",
                "",
            ),
            (
                "1,000-item batch p50 / p99",
                pair(batch["batch_ms_p50"], batch["batch_ms_p99"]),
                "",
            ),
            ("single item, one at a time p50 / p99", pair(percentile(alone, 50), p99), "≤ 20 ms"),
            ("single item max", f"{max(alone):.1f} ms", ""),
            (
                f"single item, {args.connections} connections p50 / p99",
                pair(percentile(together, 50), percentile(together, 99)),
                "",
            ),
            (
                "CPU per 1,000 batch records: app / PostgreSQL",
                pair(batch["app_cpu_ms_per_1000"], batch["pg_cpu_ms_per_1000"]),
                "",
            ),
            (
                "CPU per single item: app / PostgreSQL",
                "{:.2f} / {:.2f} ms".format(single["app_cpu_ms"], single["pg_cpu_ms"]),
                "",
            ),
        ]
        now = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        print(f"\nUsage ingestion — {now} UTC, load average {procs.load_average()}")
        print(
            f"gunicorn {WEB_WORKERS}×{WEB_THREADS} gthread, DATABASE_CONN_MAX_AGE="
            f"{args.conn_max_age}, {args.accounts:,} accounts, machine busy {busy:.0f} CPU-s"
        )
        for name, value, target in rows:
            print(f"  {name:<46} {value:>22}  {target}")
        met = {True: "met", False: "MISSED"}
        print(
            f"  rows: {records:,} records, {revisions:,} outbox rows (expected {expected:,}); "
            f"records/s target {met[rate >= TARGET_RECORDS_PER_SECOND]}, "
            f"p99 target {met[p99 <= TARGET_P99_MS]}"
        )
        if not ok:
            print(f"  ERROR: counts do not add up (statuses seen {single['statuses']})")
    finally:
        web.stop()
        if not args.keep_db:
            with contextlib.suppress(RuntimeError):
                procs.database_drop(DATABASE)
                if not args.template:
                    procs.database_drop(TEMPLATE_DATABASE)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
