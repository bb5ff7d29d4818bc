"""Load: a Stripe webhook flood and a `/usage` flood through gunicorn, nothing lost or doubled.

Everything runs on loopback ports picked at start and is stopped at the end (see
`bench/load/stack.py`): SeaweedFS, the Stripe- and Mailgun-compatible servers, a PostgreSQL
database copied from a migrated template, the app under gunicorn (2 workers × 4 threads,
gthread, keep-alive) and a `qcluster` worker (`Q_WORKERS=6`, the app's default),
`DJANGO_DEBUG=false`.

1. Webhook flood (`bench/load/webhooks.py`): `--events` signed posts, a `--duplicates` share of
   them re-sends of an earlier event, on `--connections` keep-alive connections, closed loop
   (each connection sends its next post when the last is answered). The events are the ones
   our endpoint subscribes to for real subscriptions built on the Stripe-compatible server.
   Client-observed ack latency (request written → answer read), acks per second; then the
   worker drains (dj-stripe's processing, the invoice deliveries) and every distinct event
   must have one dj-stripe `Event`, every invoice one email and one PDF.
2. `/usage` flood (`bench/load/usage.py`): `--usage-items` keys posted by one producer per
   connection in batches (1..`--usage-batch` items) and single items, with re-sends, then
   corrections (each sent twice). Client-observed latency of batches and singles, items per
   second; then the usage outbox drains to the Stripe-compatible server and every key must be
   stored once and every key + revision be exactly one meter event there.

Targets: webhook ack p99 ≤ 250 ms, 0 lost, 0 duplicated. Drain times are reported, not targeted.

Run: `.venv/bin/python bench/load_bench.py [--events 5000] [--duplicates 0.2] [--connections 8]
[--usage-items 20000] [--usage-batch 200] [--only webhooks|usage] [--keep-db] [--keep-logs]`.
The first run migrates a template database (`load_template`; `--keep-db` keeps it for the next
run, whose database `load_run` is a copy made in seconds). Exits non-zero on errors (a failed
request, an unexpected answer, a lost or duplicated event, email, PDF, usage record or meter
event, a flood not drained, a process left behind), not on a missed latency target.
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import procs
from bench.delivery.load import summary
from bench.load.stack import Q_WORKERS, WEB_THREADS, WEB_WORKERS, Stack, log

TARGET_ACK_P99_MS = 250


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.errors: list[str] = []
        self.notes: list[str] = []

    def row(self, metric: str, value: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((metric, value, target, verdict))

    def print(self, title: str) -> None:
        widths = [
            max(len(r[i]) for r in [*self.rows, ("metric", "value", "target", "")])
            for i in range(3)
        ]
        print()
        print(title)
        print()
        print(f"{'metric':<{widths[0]}}  {'value':>{widths[1]}}  {'target':<{widths[2]}}  verdict")
        print("-" * (sum(widths) + 16))
        for metric, value, target, outcome in self.rows:
            print(f"{metric:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {outcome}")
        for note in self.notes:
            print(f"- {note}")
        for error in self.errors:
            print(f"ERROR: {error}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def p50_p99(values: list[float]) -> str:
    found = summary(values)
    return f"{ms(found['p50'])} / {ms(found['p99'])}"


def zero(table: Table, what: str, found: list[str]) -> None:
    table.row(what, str(len(found)), "0", "ok" if not found else "ERROR")
    if found:
        table.errors.append(f"{what}: {len(found)}, e.g. " + "; ".join(found[:5]))


def per_worker(inside: dict[str, dict], bench_ids: list[str]) -> str:
    """How the requests spread over the gunicorn worker processes (a keep-alive connection
    stays with the process that accepted it; each has WEB_THREADS threads)."""
    counts = Counter(inside[i]["worker_pid"] for i in bench_ids if i in inside)
    total = sum(counts.values()) or 1
    return " / ".join(f"{n / total:.0%}" for _, n in counts.most_common())


def webhook_rows(table: Table, stack: Stack, flood, result, connections: int) -> None:
    posts = result.posts
    acks = summary([p.seconds for p in posts])
    duplicates = sum(p.item.duplicate for p in posts)
    inside = stack.web_timings()
    table.row(
        f"webhook flood: posts ({duplicates} duplicates), {connections} connections",
        f"{len(posts):,}",
    )
    table.row("  ack p50 (client-observed)", ms(acks["p50"]))
    p99_ms = acks["p99"] * 1000
    table.row(
        "  ack p99",
        ms(acks["p99"]),
        f"≤ {TARGET_ACK_P99_MS} ms",
        "target met"
        if p99_ms <= TARGET_ACK_P99_MS
        else f"missed by {p99_ms - TARGET_ACK_P99_MS:,.0f} ms",
    )
    table.row("  ack max", ms(acks["max"]))
    table.row(
        "  first posts / duplicates p50 / p99",
        f"{p50_p99([p.seconds for p in posts if not p.item.duplicate])}; "
        f"{p50_p99([p.seconds for p in posts if p.item.duplicate])}",
    )
    app = [inside[p.item.bench_id]["app_seconds"] for p in posts if p.item.bench_id in inside]
    table.row("  time inside gunicorn p50 / p99", p50_p99(app))
    table.row(
        "  requests per gunicorn worker process",
        per_worker(inside, [p.item.bench_id for p in posts]),
    )
    span = result.acked - result.started
    table.row("  acks per second", f"{len(posts) / span:,.1f}")
    table.row("  errors (answers other than 200)", str(sum(p.status != 200 for p in posts)), "0")
    if result.drained is not None:
        table.row(
            "  drained (first post → all processed, all emailed)",
            f"{result.drained - result.started:,.1f} s",
        )
        table.row("    of which after the last ack", f"{result.drained - result.acked:,.1f} s")
        table.row(
            "    invoices emailed per second",
            f"{len(flood.invoices) / (result.drained - result.started):,.1f}",
        )
    for what, value in result.counts.items():
        table.row(f"  {what}", value)
    zero(table, "  webhook flood lost", result.lost)
    zero(table, "  webhook flood duplicated", result.duplicated)
    table.errors += [f"webhook flood: {e}" for e in result.errors]


def usage_rows(table: Table, stack: Stack, plan, result, connections: int) -> None:
    answers = result.answers
    singles = [a for a in answers if a.request.single]
    batches = [a for a in answers if not a.request.single]
    items = sum(len(a.request.items) for a in answers)
    repeated = sum(len(a.request.items) for a in answers if a.request.duplicate)
    corrections = sum(1 for a in answers if "correction" in a.request.items[0])
    inside = stack.web_timings()
    table.row(
        f"/usage flood: requests, {connections} connections, {len(plan.tokens)} producer tokens",
        f"{len(answers):,}",
    )
    table.row(
        "  items sent (re-sent; corrections)",
        f"{items:,} ({repeated:,}; {corrections:,})",
    )
    table.row(
        f"  single items: {len(singles):,} requests, p50 / p99",
        p50_p99([a.seconds for a in singles]),
    )
    mean = sum(len(a.request.items) for a in batches) / max(1, len(batches))
    table.row(
        f"  batches: {len(batches):,} requests of {mean:.0f} items (mean), p50 / p99",
        p50_p99([a.seconds for a in batches]),
    )
    app = [
        inside[a.request.bench_id]["app_seconds"] for a in singles if a.request.bench_id in inside
    ]
    table.row("  single items: time inside gunicorn p50 / p99", p50_p99(app))
    table.row(
        "  requests per gunicorn worker process",
        per_worker(inside, [a.request.bench_id for a in answers]),
    )
    span = result.acked - result.started
    table.row(
        "  items per second / requests per second",
        f"{items / span:,.0f} / {len(answers) / span:,.0f}",
    )
    bad = sum(a.status not in (200, 201) for a in answers)
    table.row("  errors (answers other than 200/201)", str(bad), "0")
    if result.drained is not None:
        table.row(
            "  outbox drained (first post → last meter event)",
            f"{result.drained - result.started:,.1f} s",
        )
        table.row("    of which after the last answer", f"{result.drained - result.acked:,.1f} s")
    for what, value in result.counts.items():
        table.row(f"  {what}", value)
    zero(table, "  /usage flood lost", result.lost)
    zero(table, "  /usage flood duplicated", result.duplicated)
    table.errors += [f"/usage flood: {e}" for e in result.errors]


def measure(args: argparse.Namespace, stack: Stack, table: Table) -> None:
    from bench.load import usage, webhooks

    flood = plan = None
    if args.only in (None, "webhooks"):
        flood = webhooks.flood_build(
            stack, events=args.events, duplicates=args.duplicates, seed=args.seed
        )
    if args.only in (None, "usage"):
        keys, tokens = usage.usage_world(
            stack, keys=args.usage_items, producers=args.producers or args.connections
        )
        plan = usage.usage_plan(
            keys,
            tokens,
            batch=args.usage_batch,
            single_share=args.usage_singles,
            duplicates=args.duplicates,
            corrections=args.usage_corrections,
            seed=args.seed,
        )
    warm_up(stack, args.connections)
    if flood is not None:
        table.notes.append(f"load average before the webhook flood: {procs.load_average()}")
        log(f"webhook flood: {len(flood.items)} posts; load average {procs.load_average()}")
        before = stack.cpu()
        result = webhooks.flood_run(stack, flood, connections=args.connections)
        table.notes.append(
            f"webhook flood, posting and draining: {(stack.cpu() - before).describe()}"
        )
        webhook_rows(table, stack, flood, result, args.connections)
    if plan is not None:
        table.notes.append(f"load average before the /usage flood: {procs.load_average()}")
        log(f"/usage flood; load average {procs.load_average()}")
        before = stack.cpu()
        result = usage.flood_run(stack, plan, connections=args.connections)
        table.notes.append(
            f"/usage flood, posting and draining: {(stack.cpu() - before).describe()}"
        )
        usage_rows(table, stack, plan, result, args.connections)
    table.notes.append(f"load average at the end: {procs.load_average()}")


def warm_up(stack: Stack, connections: int) -> None:
    """Every gunicorn thread has imported the app and opened its database connection."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    def ping(_: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", stack.web_port, timeout=30)
        try:
            for _ in range(4):
                connection.request("GET", "/healthz")
                connection.getresponse().read()
        finally:
            connection.close()

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(ping, range(connections * 2)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="webhook posts")
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of re-sent webhooks and usage items"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--usage-items", type=int, default=20000, help="distinct usage keys")
    parser.add_argument("--usage-batch", type=int, default=200, help="largest batch")
    parser.add_argument(
        "--usage-singles", type=float, default=0.1, help="share of keys posted one by one"
    )
    parser.add_argument(
        "--usage-corrections", type=float, default=0.02, help="share of keys corrected"
    )
    parser.add_argument(
        "--producers",
        type=int,
        help="producer tokens shared by the connections (default: one each)",
    )
    parser.add_argument("--only", choices=("webhooks", "usage"))
    parser.add_argument("--keep-db", action="store_true", help="keep the migrated template")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if (
        args.events < 1
        or not 0 <= args.duplicates < 1
        or args.connections < 1
        or args.usage_items < 1
        or not 1 <= args.usage_batch <= 1000
    ):
        parser.error(
            "--events ≥ 1, 0 ≤ --duplicates < 1, --connections ≥ 1, "
            "--usage-items ≥ 1, 1 ≤ --usage-batch ≤ 1000"
        )

    run_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    started_load = procs.load_average()
    log(f"run directory {run_dir}; load average {started_load}")
    table = Table()
    table.notes.append(f"load average at the start: {started_load}")
    failed = False
    with contextlib.ExitStack() as stack:
        try:
            measure(args, Stack(run_dir).start(stack, keep_db=args.keep_db), table)
        except Exception:
            failed = True
            traceback.print_exc()
        finally:
            log("stopping")
    stray = procs.descendants(os.getpid())
    stray_lines = [f"{pid} {procs.command_line(pid)}" for pid in stray]
    for pid in stray:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    if stray:
        table.errors.append("processes left behind, killed:\n" + "\n".join(stray_lines))
    table.print(
        f"Load benchmark, {time.strftime('%Y-%m-%d %H:%M')} UTC — {os.cpu_count()} CPUs; "
        f"gunicorn {WEB_WORKERS} workers × {WEB_THREADS} threads (gthread), qcluster "
        f"Q_WORKERS={Q_WORKERS}\n"
        + (f"--events {args.events} " if args.only != "usage" else "")
        + f"--duplicates {args.duplicates:g} --connections {args.connections}"
        + (
            f" --usage-items {args.usage_items} --usage-batch {args.usage_batch} "
            f"--usage-singles {args.usage_singles:g} --usage-corrections "
            f"{args.usage_corrections:g}"
            if args.only != "webhooks"
            else ""
        )
        + (f" --only {args.only}" if args.only else "")
    )
    bad = failed or bool(table.errors)
    if bad or args.keep_logs:
        log(f"logs kept in {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
