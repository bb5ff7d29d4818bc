"""The fault suite: `.venv/bin/python -m bench.faults [--short] [--scenario NAME ...]`.

Real processes on loopback ports: a private PostgreSQL cluster (initdb in a temporary
directory, never the shared server), SeaweedFS, the Stripe- and Mailgun-compatible servers, the
app under gunicorn and a `qcluster` worker with the app's schedules installed. Each scenario
breaks one thing in the middle of a burst of invoice webhooks and usage posts (see
`scenarios.py`), then checks that every invoice was emailed exactly once and every usage key
reached Stripe exactly once, and prints: scenario, events, lost, duplicated, recovered in (s).

The full variant keeps each service broken for a minute, with the app's timers as they are
(recovery can take the sweeper's ten-minute stuck delay). `--short` breaks things for seconds
and divides the app's recovery timers by `--time-scale` (default 30, see `worker.py`); with it
the suite also enqueues the minute schedules' tasks (sweeper, webhook resume, usage outbox)
every two seconds instead of waiting for the next minute.

Exits 1 when a scenario lost or duplicated anything, or on any error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import time
import traceback

from bench.delivery import procs
from bench.faults.scenarios import FULL, SCENARIOS, SHORT, Allotment, Result
from bench.faults.stack import Stack, log
from bench.faults.traffic import world_build

TICK_SECONDS = 2.0
TICKED_TASKS = (
    "invoices.tasks.delivery_sweep_task",
    "billing_project.tasks.webhook_triggers_resume_task",
    "metering.tasks.usage_outbox_send_task",
)
RESULT_PREFIX = "FAULT-SUITE-RESULT "


def ticker(stack: Stack, stop: threading.Event) -> None:
    """Enqueue the minute schedules' tasks every TICK_SECONDS (the --short variant)."""
    from django.db import connection
    from django_q.tasks import async_task

    while not stop.wait(TICK_SECONDS):
        try:
            for func in TICKED_TASKS:
                async_task(func, task_name=f"fault-tick-{func.rsplit('.', 1)[-1]}")
        except Exception:  # the database may be restarting
            with contextlib.suppress(Exception):
                connection.close()
    connection.close()


def table(results: list[Result], cfg_name: str) -> str:
    header = ("scenario", "events", "lost", "duplicated", "recovered in (s)", "notes")
    rows = [
        (
            r.scenario,
            str(r.events),
            str(r.lost),
            str(r.duplicated),
            f"{r.recovered_s:.1f}" if r.recovered_s is not None else "not recovered",
            r.detail,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"Fault suite ({cfg_name}), {time.strftime('%Y-%m-%d %H:%M')} UTC"]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if row is header:
            lines.append("  ".join("-" * width for width in widths))
    for result in results:
        for error in result.errors:
            lines.append(f"ERROR {result.scenario}: {error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="seconds-long faults (CI)")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument("--time-scale", type=float, default=30.0, help="with --short only")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    cfg = SHORT if args.short else FULL
    names = args.scenario or list(SCENARIOS)
    scale = args.time_scale if args.short else 1.0

    results: list[Result] = []
    failed = False
    stack = Stack(time_scale=scale)
    log(f"run directory {stack.run_dir}; load average {procs.load_average()}")
    stop = threading.Event()
    with contextlib.ExitStack() as exits:
        try:
            stack.start(exits)
            world = world_build(
                stack, invoices=cfg.invoices * len(names), usage_accounts=2 if cfg.short else 4
            )
            allot = Allotment(world, cfg.usage_keys * len(names))
            if cfg.short:
                tick = threading.Thread(target=ticker, args=(stack, stop), daemon=True)
                tick.start()
                exits.callback(tick.join, 10)
                exits.callback(stop.set)
            for name in names:
                log(f"scenario {name} (load average {procs.load_average()})")
                result = SCENARIOS[name](stack, world, allot, cfg)
                log(
                    f"  {result.scenario}: lost {result.lost}, duplicated {result.duplicated}, "
                    f"recovered in {result.recovered_s}"
                )
                results.append(result)
        except Exception:
            failed = True
            traceback.print_exc()
            for service in (stack.web, stack.worker):
                if service is not None:
                    log(f"{service.name} log tail:\n{service.log_tail()}")
        finally:
            log("stopping")
    stray = procs.descendants(os.getpid())
    for pid in stray:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    print(table(results, "short" if cfg.short else "full"))
    print(
        RESULT_PREFIX
        + json.dumps(
            [
                {
                    "scenario": r.scenario,
                    "events": r.events,
                    "lost": r.lost,
                    "duplicated": r.duplicated,
                    "recovered_s": r.recovered_s,
                    "errors": r.errors,
                }
                for r in results
            ]
        )
    )
    if stray:
        print(f"ERROR: {len(stray)} processes left behind were killed")
    bad = failed or bool(stray) or any(not r.ok for r in results)
    if bad or args.keep_logs:
        log(f"logs kept in {stack.run_dir}")
    else:
        shutil.rmtree(stack.run_dir, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
