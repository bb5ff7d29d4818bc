"""Invoice delivery, end to end: webhook ack latency, finalized→email latency, a burst drained.

Everything runs on loopback ports picked at start and is stopped at the end: SeaweedFS (R2),
the Mailgun- and Stripe-compatible servers (one helper process, `bench/delivery/servers.py`),
a fresh PostgreSQL database, the app under gunicorn and a `qcluster` worker, both with
`DJANGO_DEBUG=false`. The Stripe side is built through stripe-python: one customer and one
monthly subscription per invoice, on test clocks advanced past the cycle, so every invoice is a
real `subscription_cycle` invoice finalized by the server. Its `invoice.finalized` events are
collected from the server's store (its own webhook delivery is off) and posted here, signed with
the endpoint secret, to `/stripe/webhook/<STRIPE_WEBHOOK_UUID>/`.

Processes: gunicorn `--workers 2 --threads 4` (gthread: two processes for two cores, eight
request threads for the eight sender connections, keep-alive on); `qcluster` with `Q_WORKERS=6`
at `nice -n 10`, as `scripts/worker` starts it;
the database settings are the app's defaults (`DATABASE_CONN_MAX_AGE=60`). Schedules are not
installed: the minute sweeper only re-queues retries and stuck deliveries.

Before the phases (not timed), every customer's earlier events (`customer.created`,
`customer.subscription.created`) are posted and dj-stripe's copies awaited, as in production
where a month's invoices belong to customers that exist for months; `--new-customers` skips
this, so dj-stripe's copy of each invoice also reads its customer, subscription and product once.

Phases, each on fresh invoices, after 16 warm-up invoices:
1. ack: `--ack-events` posts on 8 keep-alive connections (closed loop: each sends its next
   post when the last is answered), 20 % of them duplicates of an earlier event (Stripe
   re-sends), the worker running. Client-observed latency, first posts and duplicates apart.
   dj-stripe's re-fetch share: any Stripe call the app makes inside a webhook request would be
   dj-stripe's (its processing runs in the worker, so none is expected).
   `bench/delivery/gunicorn_conf.py` times, inside each request, every stripe-python call,
   SQL statement and new database connection and the thread's CPU; the stand-in server's own
   handling time of the same calls is shown next to it.
   `--ack-worker-paused` repeats the phase with the worker's processes stopped (SIGSTOP).
2. finalized→email: `--latency-invoices` events at `--rate` per second on one connection, each
   at a random moment of its slot; from the moment the post starts to the moment the
   Mailgun-compatible server accepts the message (matched by the `stripe_invoice_id` user
   variable). The request only stores the event and enqueues its task; the worker runs
   dj-stripe's processing (its re-fetch), records the delivery and carries it on in the same
   task. Where the time goes comes from the webhook task's row (enqueued), the worker's
   "processing stripe-webhook-N" log line (taken), the delivery timeline ("recorded" once
   dj-stripe processed the event, then rendered, stored, sent) and the stand-in's record of
   the worker's Stripe calls; per invoice in `finalized_to_email.json` of the run directory.
3. burst: `--invoices` events as fast as 8 connections go; drained = first post to the last
   delivery recorded `sent`; CPU-seconds per invoice of the worker process tree (qcluster and
   its children, /proc utime+stime, exited children included) over the same span, next to the
   web's, the stand-ins', PostgreSQL's (the server is shared by every database on it) and the
   rest of the machine's (other work running at the same time skews every figure).
4. ack on dj-stripe's stock view (unless `--no-stock-view`): as phase 1, the same kind of
   events posted to dj-stripe's own synchronous `ProcessWebhookView`, routed for the
   benchmark only (`bench/delivery/settings.py`, `urls.py`): it processes each event inside the
   request (re-fetching the invoice from Stripe) and delivers nothing; its ack p50/p99 are
   shown beside ours.
Then every invoice of phases 1–3 must have exactly one email at the Mailgun server, one PDF in
the bucket and its delivery `sent`.

Run: `.venv/bin/python bench/delivery_bench.py [--invoices 1000] [--rate 1]
[--latency-invoices 30] [--ack-events 400] [--keep-db] [--keep-logs] [--ack-worker-paused]
[--stripe-delay-ms N] [--rate-limit N] [--new-customers] [--no-stock-view] [--keep-nagle]
[--profile-web]`. The first run migrates a template
database (`bench_delivery_template`, about two minutes); `--keep-db` keeps it for the next run,
whose database `bench_delivery` is a copy made in a second. `--stripe-delay-ms` adds a delay to
each Stripe call of the app (a stand-in for Stripe's own latency, which the local server does
not have); the stand-in answers with TCP_NODELAY unless `--keep-nagle` (see `servers.py`).
Variables such as `DATABASE_CONN_MAX_AGE` set in the environment reach the app. Exits non-zero
only on errors (a failed request, a lost or duplicated email or PDF, a process left behind),
not on a missed target.
"""

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import procs
from bench.delivery.load import Item, Post, percentile, post_concurrently, post_paced, summary
from bench.delivery.servers import StandInServers

DATABASE = "bench_delivery"
LEGACY_DATABASE = "bench_delivery_legacy"
TEMPLATE_DATABASE = "bench_delivery_template"
STRIPE_SECRET_KEY = "sk_test_BenchDelivery00000000000000000"  # noqa: S105 (local test key)
WEBHOOK_SECRET = "whsec_bench_delivery_0000000000000000"  # noqa: S105 (a local test secret)
EVENT_DESTINATION_SECRET = "whsec_bench_destination_00000000000"  # noqa: S105 (local test)
WEBHOOK_UUID = "5f0c2d1e-8a7b-4c3d-9e2f-0a1b2c3d4e5f"
STOCK_VIEW_PREFIX = "/bench/djstripe/webhook/"  # bench/delivery/urls.py
MAILGUN_API_KEY = "key-bench-delivery-0000000000000000"
MAILGUN_SIGNING_KEY = "bench-delivery-signing-key"
MAILGUN_DOMAIN = "notify.adventive.com"
S3_ACCESS_KEY = "bench-delivery-access-key"
S3_SECRET_KEY = "bench-delivery-secret-key-000000000000"  # noqa: S105 (a local test secret)
BUCKET = "invoices-bench"
WEB_WORKERS, WEB_THREADS = 2, 4
# The worker's processes: 6 by default (the app's default); BENCH_Q_WORKERS sets another count.
Q_WORKERS = int(os.environ.get("BENCH_Q_WORKERS", "6"))
# As scripts/worker starts it: below the web's CPU priority.
WORKER_NICENESS = os.environ.get("WORKER_NICENESS", "10")
QUEUE_POLL_S = 0.2  # Q_CLUSTER["poll"] in the settings
CONNECTIONS = 8
WARMUP_INVOICES = 16
DUPLICATE_SHARE = 0.2
ACCT_ID_BASE = 700_000
CUSTOMERS_PER_CLOCK = 100
CLOCK_START = int(datetime(2026, 1, 15, tzinfo=UTC).timestamp())
CYCLE_ANCHOR = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
TARGET_ACK_P99_MS = 100
TARGET_EMAIL_P50_S = 0.6
# For a burst of 1,000; a smaller burst is held to its share (a 300 burst to 36 s).
TARGET_DRAIN_S_PER_1000 = 120
DONE_STATES = ("sent", "delivered", "bounced", "complained", "failed", "not_ours")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Cpu:
    """CPU-seconds consumed so far by each part, read from /proc."""

    worker: float
    web: float
    servers: float
    bench: float
    postgres: float
    machine: float
    at: float

    def __sub__(self, other: "Cpu") -> "Cpu":
        return Cpu(*(a - b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[float, ...]:
        return (
            self.worker,
            self.web,
            self.servers,
            self.bench,
            self.postgres,
            self.machine,
            self.at,
        )

    @property
    def others(self) -> float:
        """Machine CPU that is neither ours nor PostgreSQL's: other work on the machine."""
        return self.machine - self.worker - self.web - self.servers - self.bench - self.postgres

    def describe(self) -> str:
        return (
            f"web {self.web:.1f} s, worker {self.worker:.1f} s, stand-in servers "
            f"{self.servers:.1f} s, bench {self.bench:.1f} s, PostgreSQL (all databases) "
            f"{self.postgres:.1f} s, other processes on the machine {self.others:.1f} s, "
            f"over {self.at:.1f} s ({self.machine / self.at / (os.cpu_count() or 1):.0%} of "
            f"{os.cpu_count()} cores busy)"
        )


@dataclass
class Run:
    args: argparse.Namespace
    run_dir: Path
    servers: StandInServers
    web: procs.Service
    worker: procs.Service
    web_port: int
    webhook_path: str
    stock_path: str
    s3: object
    errors: list[str] = field(default_factory=list)
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def cpu(self) -> Cpu:
        return Cpu(
            worker=self.worker.cpu_seconds(),
            web=self.web.cpu_seconds(),
            servers=procs.process_cpu_seconds(self.servers.pid),
            bench=procs.process_cpu_seconds("self"),
            postgres=procs.postgres_cpu_seconds(),
            machine=procs.machine_busy_seconds(),
            at=time.monotonic(),
        )

    def row(self, metric: str, value: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((metric, value, target, verdict))

    def post_many(self, items: list[Item], *, path: str | None = None) -> list[Post]:
        posts = post_concurrently(
            items,
            host="127.0.0.1",
            port=self.web_port,
            path=path or self.webhook_path,
            secret=WEBHOOK_SECRET,
            connections=CONNECTIONS,
        )
        self.check_posts(posts)
        return posts

    def check_posts(self, posts: list[Post]) -> None:
        failed = [p for p in posts if p.status != 200]
        if failed:
            sample = failed[0]
            self.errors.append(
                f"{len(failed)} webhook posts failed (first: {sample.item.event_id} "
                f"status {sample.status} {sample.error})"
            )


# --- set-up ---------------------------------------------------------------------------------------


def app_env(*, stripe_base: str, mailgun_api_url: str, s3_url: str, timing_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "billing_project.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-delivery-" + "0123456789abcdef" * 4,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": procs.database_url(DATABASE),
            "LEGACY_DATABASE_URL": procs.database_url(LEGACY_DATABASE),
            "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_EVENT_DESTINATION_SECRET": EVENT_DESTINATION_SECRET,
            "STRIPE_API_BASE": stripe_base,
            "STRIPE_WEBHOOK_UUID": WEBHOOK_UUID,
            "MAILGUN_API_KEY": MAILGUN_API_KEY,
            "MAILGUN_DOMAIN": MAILGUN_DOMAIN,
            "MAILGUN_API_URL": mailgun_api_url,
            "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
            "R2_INVOICE_BUCKET": BUCKET,
            "R2_ENDPOINT_URL": s3_url,
            "R2_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "R2_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "Q_WORKERS": str(Q_WORKERS),
            "Q_SYNC": "false",
            "SLACK_ALERTS_WEBHOOK_URL": "",
            "SLACK_BILLING_ALERTS_WEBHOOK_URL": "",
            "BILLING_ALERT_EMAILS": "",
            "BENCH_TIMING_DIR": str(timing_dir),
        }
    )
    env.pop("LEGACY_DATABASE_WRITABLE", None)
    return env


def databases_prepare(env: dict, keep_db: bool, run_dir: Path) -> None:
    """A migrated template (kept with --keep-db), the run's database copied from it."""
    procs.database_create(LEGACY_DATABASE)
    migrate_env = dict(env, DATABASE_URL=procs.database_url(TEMPLATE_DATABASE))
    command = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    if keep_db and procs.database_exists(TEMPLATE_DATABASE):
        log(f"reusing {TEMPLATE_DATABASE}; applying any new migrations")
        with (run_dir / "migrate.log").open("wb") as out:
            done = subprocess.run(command, cwd=ROOT, env=migrate_env, stdout=out, stderr=out)
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{(run_dir / 'migrate.log').read_text()[-3000:]}")
    else:
        log(f"migrating {TEMPLATE_DATABASE} (about two minutes)")
        building = TEMPLATE_DATABASE + "_building"
        procs.database_create(building)
        migrate_env["DATABASE_URL"] = procs.database_url(building)
        with (run_dir / "migrate.log").open("wb") as out:
            done = subprocess.run(command, cwd=ROOT, env=migrate_env, stdout=out, stderr=out)
        if done.returncode != 0:
            procs.database_drop(building)
            raise RuntimeError(f"migrate failed:\n{(run_dir / 'migrate.log').read_text()[-3000:]}")
        procs.database_drop(TEMPLATE_DATABASE)
        procs.psql(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE_DATABASE}"')
    procs.database_create(DATABASE, template=TEMPLATE_DATABASE)


def stripe_side(servers: StandInServers, total: int) -> list[tuple[str, str, dict]]:
    """`total` customers, each with a monthly subscription anchored on the 1st, on test clocks
    advanced past the cycle: (customer id, email, its `invoice.finalized` event) per invoice."""
    import stripe

    stripe.api_key = STRIPE_SECRET_KEY
    stripe.api_base = servers.urls["stripe"]["setup"]
    product = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    price = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=50_000,
        recurring={"interval": "month"},
        metadata={"kind": "flat"},
    )

    def subscribe(n: int, clock_id: str) -> tuple[str, str]:
        acct_id = str(ACCT_ID_BASE + n)
        email = f"billing+{acct_id}@customer.example"
        customer = stripe.Customer.create(
            email=email,
            name=f"Bench Account {n} Media",
            test_clock=clock_id,
            metadata={"acct_id": acct_id},
        )
        by_link = n % 2 == 0
        stripe.Subscription.create(
            customer=customer.id,
            items=[{"price": price.id}],
            billing_cycle_anchor=CYCLE_ANCHOR,
            proration_behavior="none",
            collection_method="send_invoice" if by_link else "charge_automatically",
            metadata={"acct_id": acct_id},
            **({"days_until_due": 30} if by_link else {}),
        )
        return customer.id, email

    customers: list[tuple[str, str]] = []
    with ThreadPoolExecutor(4) as pool:
        for first in range(0, total, CUSTOMERS_PER_CLOCK):
            clock = stripe.test_helpers.TestClock.create(frozen_time=CLOCK_START)
            batch = range(first, min(total, first + CUSTOMERS_PER_CLOCK))
            customers += pool.map(lambda n, c=clock.id: subscribe(n, c), batch)
            stripe.test_helpers.TestClock.advance(clock.id, frozen_time=CYCLE_ANCHOR + 7200)
            log(f"stripe side: {len(customers)}/{total} invoices finalized")
    events = {e["data"]["object"]["customer"]: e for e in servers.call("finalized_events")}
    missing = [c for c, _ in customers if c not in events]
    if missing:
        raise RuntimeError(f"{len(missing)} customers have no finalized cycle invoice")
    return [(customer, email, events[customer]) for customer, email in customers]


def accounts_create(invoices: list[tuple[str, str, dict]]) -> None:
    from metering.models import BillingAccount

    BillingAccount.objects.bulk_create(
        [
            BillingAccount(
                acct_id=ACCT_ID_BASE + n,
                name=f"Bench Account {n} Media",
                billing_email=email,
                address="100 Market Street\nChicago, IL 60601",
                stripe_customer_id=customer,
                billing_owner=BillingAccount.BillingOwner.PARALLEL,
            )
            for n, (customer, email, _) in enumerate(invoices)
        ],
        batch_size=500,
    )


def customers_known(run: Run) -> None:
    """Post every customer's earlier events (`customer.created`,
    `customer.subscription.created`) and wait for dj-stripe's copies, as in production where
    customers exist long before a month's invoices: not timed."""
    from billing_project.models import StripeMirror

    events = run.servers.call("customer_events")
    log(f"customers known first: {len(events)} earlier events posted")
    run.post_many([item_for(e, f"customer-{n}") for n, e in enumerate(events)])
    deadline = time.monotonic() + max(300, len(events) / 2)
    ids = [e["id"] for e in events]
    while True:
        mirrors = StripeMirror.objects.filter(event_id__in=ids)
        done = mirrors.filter(state=StripeMirror.State.DONE).count()
        if done == len(ids):
            break
        failed = mirrors.filter(state=StripeMirror.State.FAILED).count()
        if failed or time.monotonic() > deadline:
            raise RuntimeError(f"dj-stripe copies of customers: {done} done, {failed} failed")
        time.sleep(0.5)
    run.servers.call("stripe_calls")  # these one-off reads are not the phases'


def item_for(event: dict, bench_id: str, duplicate: bool = False) -> Item:
    return Item(
        bench_id=bench_id,
        event_id=event["id"],
        invoice_id=event["data"]["object"]["id"],
        payload=json.dumps(event),
        duplicate=duplicate,
    )


# --- measuring ------------------------------------------------------------------------------------


def wait_done(run: Run, invoice_ids: list[str], *, timeout: float, what: str) -> float:
    """Poll until every invoice's delivery is out of the work states; returns the wall time."""
    from invoices.models import InvoiceDelivery

    deadline = time.monotonic() + timeout
    while True:
        done = InvoiceDelivery.objects.filter(
            stripe_invoice_id__in=invoice_ids, state__in=DONE_STATES
        ).count()
        if done == len(invoice_ids):
            return time.time()
        if time.monotonic() > deadline:
            run.errors.append(f"{what}: only {done}/{len(invoice_ids)} done after {timeout:.0f} s")
            return time.time()
        if not run.worker.alive():
            raise RuntimeError(f"the worker exited:\n{run.worker.log_tail()}")
        time.sleep(0.25)


def web_timings(run: Run) -> dict[str, dict]:
    timings = {}
    for path in run.run_dir.glob("web-*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("id"):
                timings[record["id"]] = record
    return timings


ID_PATTERN = re.compile(r"/[a-z]+_[A-Za-z0-9]{8,}")
INVOICE_PATTERN = re.compile(r"/v1/invoices/(in_[A-Za-z0-9]+)")


def worker_spans(calls: list[tuple]) -> dict[str, tuple[float, float, int]]:
    """Per invoice, the worker's Stripe calls: (first call start, last call end, count), wall
    clock, as the stand-in server recorded them."""
    spans: dict[str, tuple[float, float, int]] = {}
    for label, _, path, at, seconds in calls:
        found = INVOICE_PATTERN.match(path)
        if label != "worker" or not found:
            continue
        first, last, count = spans.get(found[1], (float("inf"), 0.0, 0))
        spans[found[1]] = (min(first, at - seconds), max(last, at), count + 1)
    return spans


PICKUP_PATTERN = re.compile(r"processing stripe-webhook-(\d+) ")


def worker_pickups(run: Run) -> dict[int, float]:
    """When a worker process took each webhook's task (its "processing stripe-webhook-<pk>"
    log line, wall clock), first pick-up per webhook trigger."""
    pickups: dict[int, float] = {}
    for line in run.worker.log_path.read_text(errors="replace").splitlines():
        if "processing stripe-webhook-" not in line:
            continue
        with contextlib.suppress(ValueError, KeyError):
            record = json.loads(line)
            found = PICKUP_PATTERN.search(record["message"])
            if found:
                at = datetime.fromisoformat(record["time"]).timestamp()
                pickups.setdefault(int(found[1]), at)
    return pickups


def endpoint_of(method: str, path: str) -> str:
    return f"{method} {ID_PATTERN.sub('/{id}', path.split('?')[0])}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def verdict(value: float, target: float, unit: str, scale: float = 1.0) -> str:
    if value <= target:
        return "target met"
    over = value - target
    return f"target missed by {over * scale:,.0f} {unit} ({over / target:.0%})"


def delivery_timelines(invoice_ids: list[str]) -> dict[str, dict]:
    """Per invoice: the delivery, its timeline steps (first occurrence) and the first run of
    its webhook's task (trigger pk, started, stopped), which also carries the delivery."""
    from django_q.models import Task
    from djstripe.models import WebhookEventTrigger

    from invoices.models import DeliveryEvent, InvoiceDelivery

    deliveries = {
        d.stripe_invoice_id: d
        for d in InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids)
    }
    by_pk = {d.pk: d.stripe_invoice_id for d in deliveries.values()}
    steps: dict[str, dict[str, datetime]] = defaultdict(dict)
    for delivery_id, step, at in (
        DeliveryEvent.objects.filter(delivery_id__in=by_pk)
        .order_by("at", "pk")
        .values_list("delivery_id", "step", "at")
    ):
        steps[by_pk[delivery_id]].setdefault(step, at)
    trigger_invoice: dict[int, str] = {}
    for pk, body in WebhookEventTrigger.objects.filter(valid=True).values_list("pk", "body"):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            invoice = json.loads(body)["data"]["object"]["id"]
            if invoice in deliveries:
                trigger_invoice[pk] = invoice
    names = {f"stripe-webhook-{pk}": pk for pk in trigger_invoice}
    tasks: dict[str, tuple[int, datetime, datetime]] = {}
    for name, started, stopped in (
        Task.objects.filter(name__in=names)
        .order_by("started")
        .values_list("name", "started", "stopped")
    ):
        trigger = names[name]
        tasks.setdefault(trigger_invoice[trigger], (trigger, started, stopped))
    return {
        invoice: {"delivery": delivery, "steps": steps[invoice], "task": tasks.get(invoice)}
        for invoice, delivery in deliveries.items()
    }


def request_breakdown(pairs: list[tuple[Post, dict]]) -> str:
    """Medians of where a webhook request's time goes, from the client and the gunicorn hooks."""
    if not pairs:
        return "no requests"

    def median(values: list[float]) -> str:
        return ms(percentile(values, 50))

    return (
        f"client-observed {median([p.seconds for p, _ in pairs])} = waiting for a gunicorn "
        f"thread and the network {median([p.seconds - t['app_seconds'] for p, t in pairs])} + "
        f"inside gunicorn {median([t['app_seconds'] for _, t in pairs])}; inside: the thread's "
        f"own CPU {median([t['cpu_seconds'] for _, t in pairs])}, "
        f"{percentile([t['sql'][0] for _, t in pairs], 50)} SQL statements "
        f"{median([t['sql'][1] for _, t in pairs])}, "
        f"new DB connection {median([t['connect'][1] for _, t in pairs])}, "
        f"{percentile([len(t['stripe']) for _, t in pairs], 50)} Stripe calls "
        f"{median([sum(c[2] for c in t['stripe']) for _, t in pairs])} "
        "(medians of each; the parts overlap: SQL and Stripe time include CPU)"
    )


def phase_ack(run: Run, events: list[dict], *, paused: bool = False, stock: bool = False) -> None:
    """`--ack-events` posts, 20 % duplicates, on 8 connections. With `paused`, the worker's
    processes are stopped (SIGSTOP) while the posts go out and continued afterwards, so the
    webhook has the machine to itself. With `stock`, the posts go to dj-stripe's stock view
    (`bench/delivery/urls.py`), which processes each event inside the request (its re-fetch
    of the object from Stripe included) and delivers nothing."""
    tag = "ack-stock" if stock else "ack-paused" if paused else "ack"
    name = (
        "ack, dj-stripe's stock view"
        if stock
        else "ack (worker paused)"
        if paused
        else "ack, our intake"
    )
    rng = random.Random(run.args.seed + (7 if paused else 0))
    unique = [item_for(e, f"{tag}-{n}") for n, e in enumerate(events)]
    duplicates = run.args.ack_events - len(unique)
    items = list(unique)
    for n in range(duplicates):
        original = unique[rng.randrange(len(unique))]
        position = rng.randrange(items.index(original) + 1, len(items) + 1)
        items.insert(position, item_for(json.loads(original.payload), f"{tag}-dup-{n}", True))
    run.servers.call("stripe_calls")  # forget the calls made so far
    log(f"{name}: {len(items)} posts ({duplicates} duplicates) on {CONNECTIONS} connections")
    stopped = [run.worker.pid, *procs.descendants(run.worker.pid)] if paused else []
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        before = run.cpu()
        posts = run.post_many(items, path=run.stock_path if stock else None)
        cpu = run.cpu() - before
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    stripe_calls = [c for c in run.servers.call("stripe_calls") if c[0] == "web"]
    if not stock:
        wait_done(run, [i.invoice_id for i in unique], timeout=max(300, 3 * len(unique)), what=name)
    timings = web_timings(run)

    latency = summary([p.seconds for p in posts])
    first = summary([p.seconds for p in posts if not p.item.duplicate])
    dup = summary([p.seconds for p in posts if p.item.duplicate])
    run.row(
        f"{name} p50, {len(posts)} posts ({duplicates} duplicates), 8 connections",
        ms(latency["p50"]),
    )
    run.row(
        f"{name} p99",
        ms(latency["p99"]),
        *(
            ("(for comparison)", "")
            if stock
            else (
                f"≤ {TARGET_ACK_P99_MS} ms",
                verdict(latency["p99"] * 1000, TARGET_ACK_P99_MS, "ms"),
            )
        ),
    )
    run.row(f"{name} max", ms(latency["max"]))
    span = max(p.sent_at + p.seconds for p in posts) - min(p.sent_at for p in posts)
    run.row("  acks per second (8 connections, closed loop)", f"{len(posts) / span:.1f}")
    run.row("  first posts p50 / p99", f"{ms(first['p50'])} / {ms(first['p99'])}")
    if duplicates:
        run.row("  duplicates p50 / p99", f"{ms(dup['p50'])} / {ms(dup['p99'])}")

    # dj-stripe's re-fetch: the Stripe calls made inside each webhook request.
    matched = [(p, timings[p.item.bench_id]) for p in posts if p.item.bench_id in timings]
    firsts = [(p, t) for p, t in matched if not p.item.duplicate]
    refetch = [sum(c[2] for c in t["stripe"]) for _, t in firsts]
    calls = [len(t["stripe"]) for _, t in firsts]
    app = [t["app_seconds"] for _, t in firsts]
    share = sum(refetch) / sum(p.seconds for p, _ in firsts) if firsts else float("nan")
    run.row(
        "  dj-stripe re-fetch per first post p50 / p99",
        f"{ms(percentile(refetch, 50))} / {ms(percentile(refetch, 99))}",
    )
    run.row(
        "  re-fetch share of first-post ack time",
        f"{share:.0%} ({sum(calls) / max(1, len(calls)):.1f} Stripe calls per post)",
    )
    dup_calls = [len(t["stripe"]) for p, t in matched if p.item.duplicate]
    if dup_calls:
        run.row("  Stripe calls per duplicate post", f"{sum(dup_calls) / len(dup_calls):.1f}")
    run.row(
        "  time inside gunicorn p50 / p99 (first posts)",
        f"{ms(percentile(app, 50))} / {ms(percentile(app, 99))}",
    )
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for _, method, path, _, seconds in stripe_calls:
        by_endpoint[endpoint_of(method, path)].append(seconds)
    app_side: dict[str, list[float]] = defaultdict(list)
    for _, t in matched:
        for method, url, seconds in t["stripe"]:
            app_side[endpoint_of(method.upper(), url)].append(seconds)
    for endpoint, server_times in sorted(by_endpoint.items(), key=lambda kv: -len(kv[1])):
        client_times = app_side.get(endpoint, [])
        run.notes.append(
            f"{name} re-fetch {endpoint}: {len(server_times)} calls, in the app "
            f"{ms(sum(client_times) / max(1, len(client_times)))} mean, of which the stand-in "
            f"server's handling {ms(sum(server_times) / len(server_times))}"
        )
    run.notes.append(f"{name}, first posts: {request_breakdown(firsts)}")
    run.notes.append(
        f"{name}, duplicates: "
        + request_breakdown([(p, t) for p, t in matched if p.item.duplicate])
    )
    meanwhile = "the worker paused" if paused else "the worker delivering meanwhile"
    run.notes.append(
        f"{name} phase CPU ({meanwhile}): {cpu.describe()}; web CPU per post "
        f"{ms(cpu.web / len(posts))}"
    )


def phase_latency(run: Run, events: list[dict]) -> None:
    items = [item_for(e, f"lat-{n}") for n, e in enumerate(events)]
    log(f"finalized→email: {len(items)} events at {run.args.rate}/s")
    run.servers.call("stripe_calls")
    before = run.cpu()
    posts = post_paced(
        items,
        host="127.0.0.1",
        port=run.web_port,
        path=run.webhook_path,
        secret=WEBHOOK_SECRET,
        rate=run.args.rate,
        rng=random.Random(run.args.seed + 1),
    )
    run.check_posts(posts)
    ids = [i.invoice_id for i in items]
    wait_done(run, ids, timeout=120, what="finalized→email")
    cpu = run.cpu() - before
    timings = web_timings(run)
    run.notes.append(
        "finalized→email, the webhook alone (one at a time): "
        + request_breakdown(
            [(p, timings[p.item.bench_id]) for p in posts if p.item.bench_id in timings]
        )
    )
    worker_calls = [c for c in run.servers.call("stripe_calls") if c[0] == "worker"]
    received = {}
    for message in run.servers.call("messages"):
        received.setdefault(message["invoice"], message["at"])
    latencies = [
        received[p.item.invoice_id] - p.sent_at for p in posts if p.item.invoice_id in received
    ]
    result = summary(latencies)
    run.row(
        f"finalized→email p50, {len(latencies)} invoices at {run.args.rate:g}/s",
        ms(result["p50"]),
        f"≤ {TARGET_EMAIL_P50_S * 1000:.0f} ms",
        verdict(result["p50"], TARGET_EMAIL_P50_S, "ms", 1000),
    )
    run.row("finalized→email p99", ms(result["p99"]))

    timelines = delivery_timelines(ids)
    spans = worker_spans(worker_calls)
    pickups = worker_pickups(run)
    acks = {p.item.invoice_id: p for p in posts}
    parts: dict[str, list[float]] = defaultdict(list)
    raw: dict[str, dict[str, float]] = {}
    needed = ("recorded", "pdf_rendered", "pdf_stored", "email_sent")
    for invoice, line in timelines.items():
        steps, task, delivery = line["steps"], line["task"], line["delivery"]
        if task is None or invoice not in received or invoice not in spans:
            continue
        if task[0] not in pickups:
            continue
        if any(step not in steps for step in needed):
            continue
        post, (first_call, fetched, _) = acks[invoice], spans[invoice]
        picked = pickups[task[0]]
        t = {name: steps[name].timestamp() for name in needed}
        render = (delivery.pdf_render_ms or 0) / 1000
        enqueued, stopped = task[1].timestamp(), task[2].timestamp()
        raw[invoice] = {
            "post": post.sent_at,
            "ack_seconds": post.seconds,
            "enqueued": enqueued,
            "picked_up": picked,
            "worker_first_stripe_call": first_call,
            "fetched": fetched,
            **t,
            "render_seconds": render,
            "mailgun": received[invoice],
            "task_stopped": stopped,
        }
        parts["webhook post → its task enqueued (in the webhook request)"].append(
            enqueued - post.sent_at
        )
        parts["webhook ack (client-observed)"].append(post.seconds)
        parts[f"enqueued → a worker takes it (queue poll every {QUEUE_POLL_S} s)"].append(
            picked - enqueued
        )
        parts["taken → dj-stripe processed the event, delivery recorded"].append(
            t["recorded"] - picked
        )
        parts["recorded → our Stripe fetch done (invoice + lines)"].append(fetched - t["recorded"])
        parts["document build, checks → render starts"].append(t["pdf_rendered"] - render - fetched)
        parts["PDF render"].append(render)
        parts["PDF stored (S3 exists + put)"].append(t["pdf_stored"] - t["pdf_rendered"])
        parts["stored → Mailgun accepted the email"].append(received[invoice] - t["pdf_stored"])
        parts["Mailgun accepted → task done"].append(stopped - received[invoice])
    (run.run_dir / "finalized_to_email.json").write_text(json.dumps(raw, indent=1))
    for name, values in parts.items():
        run.notes.append(
            f"finalized→email, {name}: median {ms(percentile(values, 50))}, max {ms(max(values))}"
        )
    if timelines:
        run.notes.append(
            f"finalized→email: {len(worker_calls) / len(timelines):.1f} Stripe calls per "
            "delivery by the worker"
        )
    run.notes.append(f"finalized→email phase CPU: {cpu.describe()}")


def phase_burst(run: Run, events: list[dict]) -> None:
    items = [item_for(e, f"burst-{n}") for n, e in enumerate(events)]
    ids = [i.invoice_id for i in items]
    log(f"burst: {len(items)} events on {CONNECTIONS} connections")
    posts: list[Post] = []
    before = run.cpu()
    started = time.time()
    sender = threading.Thread(target=lambda: posts.extend(run.post_many(items)), name="burst")
    sender.start()
    wait_done(run, ids, timeout=max(900, 2 * len(items)), what="burst")
    cpu = run.cpu() - before
    sender.join()
    from invoices.models import EmailAttempt

    last_sent = max(
        (
            a.timestamp()
            for a in EmailAttempt.objects.filter(delivery__stripe_invoice_id__in=ids).values_list(
                "sent_at", flat=True
            )
            if a is not None
        ),
        default=time.time(),
    )
    drained = last_sent - started
    posted = max(p.sent_at + p.seconds for p in posts) - started
    acks = summary([p.seconds for p in posts])
    n = len(items)
    target = TARGET_DRAIN_S_PER_1000 * n / 1000
    run.row(
        f"burst of {n} drained (first post → last sent)",
        f"{drained:,.1f} s",
        f"≤ {target:g} s",
        verdict(drained, target, "s"),
    )
    run.row("  deliveries per second", f"{n / drained:.2f}")
    run.row("  all posts acknowledged after", f"{posted:,.1f} s")
    run.row("  ack p50 / p99 during the burst", f"{ms(acks['p50'])} / {ms(acks['p99'])}")
    run.row("CPU-seconds per invoice, worker (qcluster tree)", f"{cpu.worker / n:.3f} s")
    run.row("  web (gunicorn tree), webhook handling", f"{cpu.web / n:.3f} s")
    run.row("  stand-in Stripe + Mailgun servers", f"{cpu.servers / n:.3f} s")
    run.row("  PostgreSQL (all databases on the server)", f"{cpu.postgres / n:.3f} s")
    run.row("  other processes on the machine (not ours)", f"{cpu.others / n:.3f} s")
    timelines = delivery_timelines(ids)
    pickups = worker_pickups(run)
    renders = [line["delivery"].pdf_render_ms / 1000 for line in timelines.values()]
    work = [
        line["task"][2].timestamp() - pickups[line["task"][0]]
        for line in timelines.values()
        if line["task"] is not None and line["task"][0] in pickups
    ]
    busy = sum(work)
    run.row(
        "  worker time per invoice (mean, webhook task taken → done)", ms(busy / max(1, len(work)))
    )
    mean_render = sum(renders) / len(renders)
    share = mean_render / (busy / len(work)) if work else float("nan")
    run.row("  of which PDF render (mean)", f"{ms(mean_render)} ({share:.0%})")
    run.notes.append(
        f"burst: the {Q_WORKERS} workers were busy {busy / (Q_WORKERS * drained):.0%} of the "
        f"drain; CPU: {cpu.describe()}"
    )


def verify(run: Run, invoice_ids: list[str]) -> None:
    """Exactly one email and one PDF per invoice, every delivery sent."""
    from invoices.models import EmailAttempt, InvoiceDelivery

    states = Counter(
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids).values_list(
            "state", flat=True
        )
    )
    if states.get("sent", 0) != len(invoice_ids):
        run.errors.append(f"deliveries not all sent: {dict(states)} of {len(invoice_ids)}")
    attempts = Counter(
        EmailAttempt.objects.filter(delivery__stripe_invoice_id__in=invoice_ids).values_list(
            "delivery__stripe_invoice_id", flat=True
        )
    )
    extra_attempts = {k: v for k, v in attempts.items() if v != 1}
    if extra_attempts:
        run.errors.append(f"{len(extra_attempts)} invoices with more than one email attempt")
    emails = Counter(m["invoice"] for m in run.servers.call("messages"))
    expected = set(invoice_ids)
    lost = expected - set(emails)
    doubled = [k for k, v in emails.items() if v > 1]
    strangers = set(emails) - expected
    if lost or doubled or strangers:
        run.errors.append(
            f"emails: {len(lost)} invoices without one, {len(doubled)} with more than one, "
            f"{len(strangers)} unexpected"
        )
    keys = bucket_keys(run.s3)
    wanted = set(
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids).values_list(
            "pdf_key", flat=True
        )
    )
    if len(keys) != len(invoice_ids) or set(keys) != wanted:
        run.errors.append(
            f"PDFs: {len(keys)} objects in the bucket for {len(invoice_ids)} invoices "
            f"({len(set(keys) - wanted)} unexpected, {len(wanted - set(keys))} missing)"
        )
    retries = (
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids)
        .exclude(work_attempts=1)
        .count()
    )
    run.row(
        "verified: emails / PDFs / deliveries sent",
        f"{sum(emails[i] for i in expected)} / {len(keys)} / {states.get('sent', 0)}",
        f"{len(invoice_ids)} each",
        "ok" if not (lost or doubled or strangers) and len(keys) == len(invoice_ids) else "ERROR",
    )
    if retries:
        run.notes.append(f"{retries} deliveries needed more than one work attempt")


def report(run: Run) -> None:
    args = run.args
    print()
    print(
        f"Invoice delivery benchmark, {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} CPUs; "
        f"gunicorn {WEB_WORKERS} workers × {WEB_THREADS} threads (gthread), "
        f"qcluster Q_WORKERS={Q_WORKERS}, {CONNECTIONS} sender connections"
    )
    print(
        f"--invoices {args.invoices} --rate {args.rate:g} --latency-invoices "
        f"{args.latency_invoices} --ack-events {args.ack_events}"
        + (f" --stripe-delay-ms {args.stripe_delay_ms:g}" if args.stripe_delay_ms else "")
        + (f" --rate-limit {args.rate_limit:g}" if args.rate_limit else "")
        + (" --keep-nagle" if args.keep_nagle else "")
        + (" --ack-worker-paused" if args.ack_worker_paused else "")
        + (" --profile-web" if args.profile_web else "")
        + (
            f"; DATABASE_CONN_MAX_AGE={os.environ['DATABASE_CONN_MAX_AGE']}"
            if os.environ.get("DATABASE_CONN_MAX_AGE")
            else ""
        )
    )
    if args.profile_web:
        print("(cProfile was on in the finalized→email webhooks: its figures are inflated)")
    widths = [
        max(len(r[i]) for r in [*run.rows, ("metric", "value", "target", "")]) for i in range(3)
    ]
    print()
    print(f"{'metric':<{widths[0]}}  {'value':>{widths[1]}}  {'target':<{widths[2]}}  verdict")
    print("-" * (sum(widths) + 16))
    for metric, value, target, outcome in run.rows:
        print(f"{metric:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {outcome}")
    print()
    for note in run.notes:
        print(f"- {note}")
    profiles = sorted((run.run_dir / "profiles").glob("*.pstats"))
    if profiles:
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(*map(str, profiles), stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        print(f"\nProfile of {len(profiles)} webhook requests (sorted by cumulative time):")
        print(out.getvalue().split("\n", 6)[-1])
    if run.errors:
        print()
        for error in run.errors:
            print(f"ERROR: {error}")


# --- orchestration --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1000, help="burst size")
    parser.add_argument("--rate", type=float, default=1.0, help="finalized events per second")
    parser.add_argument("--latency-invoices", type=int, default=30)
    parser.add_argument("--ack-events", type=int, default=400, help="posts, 20 %% duplicates")
    parser.add_argument("--keep-db", action="store_true", help="keep the migrated template")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--stripe-delay-ms",
        type=float,
        default=0.0,
        help="add this much to every Stripe call the app makes (a stand-in for Stripe's latency)",
    )
    parser.add_argument(
        "--keep-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the Stripe-compatible server (~40 ms per call)",
    )
    parser.add_argument(
        "--profile-web",
        action="store_true",
        help="cProfile the finalized→email phase's webhook requests and print the top entries",
    )
    parser.add_argument(
        "--ack-worker-paused",
        action="store_true",
        help="also measure the acks once more with the worker stopped (fresh invoices)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="Stripe's rate limit in requests/s once the Stripe side is built (100 live, 25 test)",
    )
    parser.add_argument(
        "--new-customers",
        action="store_true",
        help="do not post the customers' earlier events first: dj-stripe meets every customer "
        "for the first time in its invoice (one-off reads of customer, subscription, product)",
    )
    parser.add_argument(
        "--no-stock-view",
        action="store_true",
        help="skip the ack phase on dj-stripe's stock synchronous webhook view",
    )
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if args.ack_events < 2 or args.invoices < 1 or args.latency_invoices < 1 or args.rate <= 0:
        parser.error("--ack-events ≥ 2, --invoices ≥ 1, --latency-invoices ≥ 1, --rate > 0")

    run_dir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    log(f"run directory {run_dir}; load average {procs.load_average()}")
    run: Run | None = None
    failed = False
    with contextlib.ExitStack() as stack:
        try:
            run = start_and_measure(args, run_dir, stack)
        except Exception:
            failed = True
            traceback.print_exc()
        finally:
            log("stopping")
    # Everything this run started is a descendant of this process: none may outlive it.
    stray = procs.descendants(os.getpid())
    stray_lines = [f"{pid} {procs.command_line(pid)}" for pid in stray]
    for pid in stray:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    if run is not None:
        report(run)
    if stray:
        print("ERROR: processes left behind, killed:\n" + "\n".join(stray_lines))
    bad = failed or bool(stray) or (run is not None and bool(run.errors))
    if bad or args.keep_logs:
        log(f"logs kept in {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if bad else 0


def start_and_measure(args: argparse.Namespace, run_dir: Path, stack: contextlib.ExitStack) -> Run:
    from tests.harness.seaweed import SeaweedS3

    servers = StandInServers(
        mailgun_domain=MAILGUN_DOMAIN,
        mailgun_api_key=MAILGUN_API_KEY,
        mailgun_signing_key=MAILGUN_SIGNING_KEY,
        keep_nagle=args.keep_nagle,
        stripe_delay=args.stripe_delay_ms / 1000,
    ).start()
    stack.callback(servers.stop)
    s3 = SeaweedS3(access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY)
    s3.start()
    stack.callback(s3.stop)
    s3.create_bucket(BUCKET)
    log(f"stand-ins up: Stripe {servers.urls['stripe']}, Mailgun, SeaweedFS {s3.endpoint_url}")

    stack.callback(procs.database_drop, LEGACY_DATABASE)
    stack.callback(procs.database_drop, DATABASE)
    if not args.keep_db:
        stack.callback(procs.database_drop, TEMPLATE_DATABASE)
    base_env = dict(
        mailgun_api_url=servers.urls["mailgun_api_url"], s3_url=s3.endpoint_url, timing_dir=run_dir
    )
    bench_env = app_env(stripe_base=servers.urls["stripe"]["setup"], **base_env)
    databases_prepare(bench_env, args.keep_db, run_dir)

    os.environ.update(bench_env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    stack.callback(connections.close_all)
    web_port = procs.free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    call_command("setup_webhook_endpoint", base_url=base_url, stdout=io.StringIO())
    from billing_project.stripe_webhook import webhook_endpoint_url

    webhook_path = webhook_endpoint_url(base_url)[len(base_url) :]

    web_env = app_env(stripe_base=servers.urls["stripe"]["web"], **base_env)
    web_env["DJANGO_SETTINGS_MODULE"] = "bench.delivery.settings"
    if args.profile_web:
        (run_dir / "profiles").mkdir()
        web_env["BENCH_PROFILE_DIR"] = str(run_dir / "profiles")
    web = procs.Service(
        "gunicorn",
        procs.gunicorn_command(
            web_port,
            workers=WEB_WORKERS,
            threads=WEB_THREADS,
            config=ROOT / "bench" / "delivery" / "gunicorn_conf.py",
        ),
        web_env,
        ROOT,
        run_dir / "gunicorn.log",
    ).start()
    stack.callback(lambda: stray_check(web))
    worker = procs.Service(
        "qcluster",
        ["nice", "-n", WORKER_NICENESS, sys.executable, "manage.py", "qcluster"],
        app_env(stripe_base=servers.urls["stripe"]["worker"], **base_env),
        ROOT,
        run_dir / "qcluster.log",
    ).start()
    stack.callback(lambda: stray_check(worker))
    stock_path = STOCK_VIEW_PREFIX + WEBHOOK_UUID + "/"
    run = Run(args, run_dir, servers, web, worker, web_port, webhook_path, stock_path, s3)

    unique_ack = args.ack_events - round(args.ack_events * DUPLICATE_SHARE)
    paused_ack = unique_ack if args.ack_worker_paused else 0
    stock_ack = 0 if args.no_stock_view else unique_ack
    sizes = [
        WARMUP_INVOICES,
        unique_ack,
        paused_ack,
        args.latency_invoices,
        args.invoices,
        stock_ack,
    ]
    total = sum(sizes)
    log(f"building {total} finalized invoices on the Stripe-compatible server")
    invoices = stripe_side(servers, total)
    accounts_create(invoices)
    events = [event for _, _, event in invoices]
    groups, start = [], 0
    for size in sizes:
        groups.append(events[start : start + size])
        start += size
    warmup, ack, ack_paused, latency, burst, ack_stock = groups

    procs.wait_http("127.0.0.1", web_port, "/healthz", timeout=60, service=web)
    if args.rate_limit:
        servers.call("stripe_rate_limit", {"per_second": args.rate_limit})
        log(f"Stripe rate limit: {args.rate_limit:g} requests/s")
    if not args.new_customers:
        customers_known(run)
    log(f"warm-up: {len(warmup)} invoices")
    run.post_many([item_for(e, f"warm-{n}") for n, e in enumerate(warmup)])
    wait_done(run, [e["data"]["object"]["id"] for e in warmup], timeout=300, what="warm-up")
    log(f"load average {procs.load_average()}")
    phase_ack(run, ack)
    log(f"load average {procs.load_average()}")
    if ack_paused:
        phase_ack(run, ack_paused, paused=True)
        log(f"load average {procs.load_average()}")
    phase_latency(run, latency)
    log(f"load average {procs.load_average()}")
    phase_burst(run, burst)
    log(f"load average {procs.load_average()}")
    if ack_stock:
        phase_ack(run, ack_stock, stock=True)
        log(f"load average {procs.load_average()}")
    delivered = [warmup, ack, ack_paused, latency, burst]
    verify(run, [e["data"]["object"]["id"] for group in delivered for e in group])
    return run


def stray_check(service: procs.Service) -> None:
    stray = service.stop()
    if stray:
        log(f"{service.name}: killed {len(stray)} processes left after it stopped: {stray}")


def bucket_keys(s3) -> list[str]:
    client = s3.client()
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


if __name__ == "__main__":
    sys.exit(main())
