"""gunicorn settings for the delivery benchmark: where the time of each webhook request goes.

The app runs unchanged (`billing_project.wsgi`). In each worker process, after the fork, three
library calls are wrapped to add their duration to the current request's tally:
stripe-python's `_APIRequestor.request` (one API call: HTTP round trip, JSON decoding and the
StripeObject built from it), Django's `CursorWrapper._execute_with_wrappers` (one SQL statement)
and `BaseDatabaseWrapper.connect` (a new PostgreSQL connection). The `post_request` hook appends
one JSON line per request to `$BENCH_TIMING_DIR/web-<pid>.jsonl`: the request's `X-Bench-Id`,
its time inside gunicorn, the CPU time of its thread, the Stripe calls, the SQL statements and
connections. Each wrapper costs a `perf_counter` pair.

With `$BENCH_PROFILE_DIR` set, requests whose id starts with `lat-` (one at a time, the
finalized→email phase) are also profiled with cProfile into `<id>.pstats` there.
"""

import cProfile
import json
import os
import threading
import time

_local = threading.local()
_log = None
_log_lock = threading.Lock()


def _tally(kind, seconds, detail=None):
    tally = getattr(_local, "tally", None)
    if tally is None:
        return
    if kind == "stripe":
        tally["stripe"].append([*detail, seconds])
    else:
        tally[kind][0] += 1
        tally[kind][1] += seconds


def _timed(function, kind, detail=None):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _tally(kind, time.perf_counter() - started, detail(args) if detail else None)

    return wrapper


def post_fork(server, worker):
    global _log
    import stripe._api_requestor as requestor
    from django.db.backends import utils
    from django.db.backends.base import base

    requestor._APIRequestor.request = _timed(
        requestor._APIRequestor.request, "stripe", lambda args: (args[1], args[2])
    )
    utils.CursorWrapper._execute_with_wrappers = _timed(
        utils.CursorWrapper._execute_with_wrappers, "sql"
    )
    base.BaseDatabaseWrapper.connect = _timed(base.BaseDatabaseWrapper.connect, "connect")
    path = os.path.join(os.environ["BENCH_TIMING_DIR"], f"web-{os.getpid()}.jsonl")
    _log = open(path, "a", buffering=1)  # noqa: SIM115 (open for the worker's lifetime)


def _bench_id(req):
    return next((value for name, value in req.headers if name == "X-BENCH-ID"), None)


def pre_request(worker, req):
    _local.tally = {"stripe": [], "sql": [0, 0.0], "connect": [0, 0.0]}
    _local.profile = None
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if profile_dir and (_bench_id(req) or "").startswith("lat-"):
        _local.profile = cProfile.Profile()
        _local.profile.enable()
    _local.cpu = time.thread_time()
    _local.started = time.perf_counter()


def post_request(worker, req, environ, resp):
    elapsed = time.perf_counter() - getattr(_local, "started", time.perf_counter())
    cpu = time.thread_time() - getattr(_local, "cpu", time.thread_time())
    tally, _local.tally = getattr(_local, "tally", None), None
    profile, _local.profile = getattr(_local, "profile", None), None
    bench_id = _bench_id(req)
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], f"{bench_id}.pstats"))
    if tally is None or _log is None:
        return
    line = json.dumps(
        {
            "id": bench_id,
            "path": req.path,
            "status": getattr(resp, "status_code", None),
            "app_seconds": elapsed,
            "cpu_seconds": cpu,
            "stripe": tally["stripe"],
            "sql": tally["sql"],
            "connect": tally["connect"],
        }
    )
    with _log_lock:
        _log.write(line + "\n")
