"""The `/usage` flood: producers post batches and single items on N keep-alive connections,
with re-sends, then corrections; the usage outbox drains to the Stripe-compatible server.

Keys are `{acct_id}:{day}:{type}` over usage accounts (each a Stripe customer, not on a test
clock) × the days of the current UTC month so far × the three types. Units of work, in a
shuffled order: batches of 1..`batch` items and single items (a `single_share` of the keys).
Re-sends are added at a random later place: a whole earlier batch again in another order (a
producer rebuilding its batch after a timeout: concurrent batches share keys in different
orders) or single items again, until `duplicates` × items extra items; some go out at
the same moment as their original on another connection. After every first-wave request is
answered, a `corrections` share of the keys is posted again with a new quantity and
`"correction": true`, each correction twice.

Each producer token (created with `producer_token_create`) is a producer; connection n posts
with token n modulo `producers` (one token per connection by default).
Expected answers per key: exactly one `created` and one `corrected` (when corrected), every
other send `duplicate`; anything else (`conflict`, `invalid`, a non-2xx answer) is an error.

The outbox is drained by enqueueing its task (`metering.tasks.usage_outbox_send_task`, the
minute schedule's) every `TICK_S` seconds while revisions are pending, run by the `qcluster`
worker. Checked afterwards: one `UsageRecord` per key with the final quantity and revision,
each revision `sent`, and at the Stripe-compatible server exactly one meter event per
key + revision identifier carrying that revision's difference, none other.
"""

from __future__ import annotations

import http.client
import json
import math
import queue
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import delivery_bench
from bench.load.stack import Stack, log

ACCT_BASE = 900_000
TYPES = ("ST", "RM", "CV")
TICK_S = 1.0
DRAIN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Request:
    bench_id: str
    items: tuple[dict, ...]
    single: bool
    duplicate: bool = False


@dataclass(frozen=True)
class Answer:
    request: Request
    sent_at: float
    seconds: float
    status: int | None
    body: dict
    error: str = ""


@dataclass
class UsagePlan:
    tokens: list[str]
    first_wave: list[Request]
    corrections: list[Request]
    final: dict[str, tuple[int, int]]  # key -> (quantity, revision)
    deltas: dict[str, int]  # key:revision -> the meter event's value


@dataclass
class UsageResult:
    answers: list[Answer]
    started: float
    acked: float
    drained: float | None
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: dict[str, str] = field(default_factory=dict)


def _days(today=None) -> list[str]:
    today = today or datetime.now(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(today.day)]


def _key(item: dict) -> str:
    return f"{item['acct_id']}:{item['period']}:{item['type']}"


def usage_world(stack: Stack, *, keys: int, producers: int) -> tuple[list[tuple], list[str]]:
    """Meters, accounts with Stripe customers and producer tokens; the keys to post."""
    import stripe

    from metering.models import BillingAccount
    from metering.usage_services import producer_token_create
    from metering.usage_types import METER_CUSTOMER_KEY, METER_EVENT_NAMES, METER_VALUE_KEY

    stripe.api_key = delivery_bench.STRIPE_SECRET_KEY
    stripe.api_base = stack.servers.urls["stripe"]["setup"]
    for usage_type, event_name in METER_EVENT_NAMES.items():
        stripe.billing.Meter.create(
            display_name=f"{usage_type} impressions",
            event_name=event_name,
            default_aggregation={"formula": "sum"},
            customer_mapping={"event_payload_key": METER_CUSTOMER_KEY, "type": "by_id"},
            value_settings={"event_payload_key": METER_VALUE_KEY},
        )
    days = _days()
    count = math.ceil(keys / (len(days) * len(TYPES)))
    log(f"/usage flood: {count} accounts × {len(days)} days × {len(TYPES)} types")

    def customer(n: int) -> BillingAccount:
        acct_id = ACCT_BASE + n
        made = stripe.Customer.create(
            email=f"usage+{acct_id}@customer.example", metadata={"acct_id": str(acct_id)}
        )
        return BillingAccount(
            acct_id=acct_id,
            name=f"Usage Account {n}",
            billing_email=f"usage+{acct_id}@customer.example",
            stripe_customer_id=made.id,
            billing_owner=BillingAccount.BillingOwner.PARALLEL,
        )

    with ThreadPoolExecutor(4) as pool:
        accounts = list(pool.map(customer, range(count)))
    BillingAccount.objects.bulk_create(accounts, batch_size=500)
    tokens = [producer_token_create(name=f"load producer {n}")[1] for n in range(producers)]
    all_keys = [(a.acct_id, day, t) for a in accounts for day in days for t in TYPES]
    return all_keys[:keys], tokens


def usage_plan(
    keys: list[tuple],
    tokens: list[str],
    *,
    batch: int,
    single_share: float,
    duplicates: float,
    corrections: float,
    seed: int,
) -> UsagePlan:
    rng = random.Random(seed)
    items = [
        {"acct_id": a, "period": d, "type": t, "quantity": rng.randrange(1, 10**7)}
        for a, d, t in keys
    ]
    rng.shuffle(items)
    singles = round(len(items) * single_share)
    units: list[Request] = [
        Request(f"u-{n}", (item,), True) for n, item in enumerate(items[:singles])
    ]
    rest = items[singles:]
    while rest:
        size = rng.randint(1, batch)
        units.append(Request(f"u-{len(units)}", tuple(rest[:size]), False))
        rest = rest[size:]
    rng.shuffle(units)
    wave = list(units)
    extra, wanted = 0, round(len(items) * duplicates)
    while extra < wanted:
        original = units[rng.randrange(len(units))]
        if original.single or rng.random() < 0.5:
            chosen = original.items if original.single else (rng.choice(original.items),)
            again = Request(f"u-dup-{len(wave)}", chosen, True, True)
        else:
            shuffled = tuple(rng.sample(original.items, len(original.items)))
            again = Request(f"u-dup-{len(wave)}", shuffled, False, True)
        position = rng.randrange(wave.index(original) + 1, len(wave) + 1)
        wave.insert(position, again)
        extra += len(again.items)
    final = {_key(i): (i["quantity"], 1) for i in items}
    deltas = {f"{_key(i)}:1": i["quantity"] for i in items}
    fixes = [
        dict(
            i,
            quantity=i["quantity"] + rng.choice((-1, 1)) * rng.randrange(1, max(2, i["quantity"])),
            correction=True,
        )
        for i in rng.sample(items, round(len(items) * corrections))
    ]
    fixes = [f for f in fixes if f["quantity"] != final[_key(f)][0]]
    corrected: list[Request] = []
    for n, fix in enumerate(fixes):
        key = _key(fix)
        deltas[f"{key}:2"] = fix["quantity"] - final[key][0]
        final[key] = (fix["quantity"], 2)
        corrected.append(Request(f"c-{n}", (fix,), True))
    # Each correction twice: the second a re-send, some of them at the same moment.
    twice: list[Request] = []
    for request in corrected:
        twice.insert(rng.randrange(len(twice) + 1), request)
        twice.insert(
            rng.randrange(twice.index(request) + 1, len(twice) + 1),
            Request(request.bench_id + "-dup", request.items, True, True),
        )
    return UsagePlan(tokens, wave, twice, final, deltas)


class _Client:
    """One producer's keep-alive connection to `POST /usage`."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def post(self, request: Request) -> Answer:
        body = json.dumps(request.items[0] if request.single else list(request.items)).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token}",
            "X-Bench-Id": request.bench_id,
        }
        reconnects = 0
        while True:
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            sent_at, started = time.time(), time.perf_counter()
            try:
                self._connection.request("POST", "/usage", body=body, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()  # an idle keep-alive connection closed by the server: resend
                reconnects += 1
                if reconnects > 2:
                    return Answer(
                        request, sent_at, time.perf_counter() - started, None, {}, str(exc)
                    )
                continue
            except OSError as exc:
                self.close()
                return Answer(request, sent_at, time.perf_counter() - started, None, {}, str(exc))
            seconds = time.perf_counter() - started
            if response.will_close:
                self.close()
            try:
                answer = json.loads(raw or b"{}")
            except ValueError:
                answer = {"raw": raw[:200].decode(errors="replace")}
            return Answer(request, sent_at, seconds, response.status, answer)


def post_all(
    stack: Stack, requests: list[Request], tokens: list[str], connections: int
) -> list[Answer]:
    """Every request in order, as fast as the connections allow (closed loop); connection n
    speaks for producer n modulo the number of tokens."""
    todo: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
    for request in requests:
        todo.put(request)
    for _ in range(connections):
        todo.put(None)
    done: list[Answer] = []
    lock = threading.Lock()

    def producer(token: str) -> None:
        client = _Client(stack.web_port, token)
        try:
            while (request := todo.get()) is not None:
                answer = client.post(request)
                with lock:
                    done.append(answer)
        finally:
            client.close()

    threads = [
        threading.Thread(target=producer, args=(tokens[n % len(tokens)],), name="usage-producer")
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(done, key=lambda a: a.sent_at)


def _pending() -> int:
    from metering.usage_models import UsageRevision

    return UsageRevision.objects.filter(state=UsageRevision.State.PENDING).count()


def _outbox_tick() -> None:
    """Enqueue the outbox task unless one is already waiting in the queue."""
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    if not OrmQ.objects.exists():
        async_task("metering.tasks.usage_outbox_send_task", task_name="load-usage-outbox")


def flood_run(stack: Stack, plan: UsagePlan, *, connections: int) -> UsageResult:
    started = time.time()
    answers = post_all(stack, plan.first_wave, plan.tokens, connections)
    answers += post_all(stack, plan.corrections, plan.tokens, connections)
    acked = max(a.sent_at + a.seconds for a in answers)
    log(f"/usage flood: {len(answers)} requests answered; draining the outbox")
    drained = None
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        stack.worker_check()
        if _pending() == 0:
            drained = time.time()
            break
        _outbox_tick()
        time.sleep(TICK_S)
    result = UsageResult(answers, started, acked, drained)
    if drained is None:
        result.errors.append(f"usage outbox not drained after {DRAIN_TIMEOUT_S} s")
    _verify_answers(plan, result)
    _verify_ledger(stack, plan, result)
    return result


def _verify_answers(plan: UsagePlan, result: UsageResult) -> None:
    statuses: dict[str, Counter] = defaultdict(Counter)
    bad: Counter = Counter()
    for answer in result.answers:
        request = answer.request
        if request.single:
            if answer.status not in (200, 201):
                bad[f"single answered {answer.status} {answer.error}".strip()] += 1
                continue
            results = [answer.body]
        else:
            if answer.status != 200:
                bad[f"batch answered {answer.status} {answer.error}".strip()] += 1
                continue
            results = answer.body.get("results", [])
            if len(results) != len(request.items):
                bad["batch answered with a wrong number of results"] += 1
                continue
        for item, outcome in zip(request.items, results, strict=False):
            statuses[_key(item)][outcome.get("status")] += 1
    for key, (_, revision) in plan.final.items():
        seen = statuses.get(key, Counter())
        unexpected = set(seen) - {"created", "duplicate", "corrected"}
        if unexpected:
            bad[f"items answered {'/'.join(sorted(map(str, unexpected)))}"] += 1
        if seen["created"] != 1:
            bad[f"keys answered `created` {seen['created']} times"] += 1
        if seen["corrected"] != (1 if revision == 2 else 0):
            bad[f"keys answered `corrected` {seen['corrected']} times"] += 1
    result.errors += [f"/usage: {n} {what}" for what, n in bad.items()]


def _verify_ledger(stack: Stack, plan: UsagePlan, result: UsageResult) -> None:
    from metering.usage_models import UsageRecord, UsageRevision

    records = Counter()
    wrong = 0
    for acct_id, period, usage_type, quantity, revision in UsageRecord.objects.values_list(
        "account__acct_id", "period", "usage_type", "quantity", "revision"
    ):
        key = f"{acct_id}:{period.isoformat()}:{usage_type}"
        records[key] += 1
        if plan.final.get(key) != (quantity, revision):
            wrong += 1
    result.lost += [f"usage key {k} not stored" for k in plan.final if k not in records]
    result.duplicated += [f"usage key {k} stored {n} times" for k, n in records.items() if n > 1]
    if wrong:
        result.errors.append(f"{wrong} usage records with another quantity or revision")
    revisions = dict(UsageRevision.objects.values_list("identifier", "state"))
    unsent = Counter(state for state in revisions.values() if state != "sent")
    if unsent:
        result.errors.append(f"usage revisions not sent: {dict(unsent)}")
    extra_rows = set(revisions) - set(plan.deltas)
    if extra_rows:
        result.duplicated.append(f"{len(extra_rows)} outbox rows beyond one per key + revision")
    at_stripe: dict[str, list[int]] = defaultdict(list)
    for event in stack.servers.call("meter_events"):
        at_stripe[event["identifier"]].append(int(event["value"]))
    for identifier, delta in plan.deltas.items():
        values = at_stripe.get(identifier, [])
        if not values:
            result.lost.append(f"meter event {identifier} not at Stripe")
        elif len(values) > 1:
            result.duplicated.append(f"meter event {identifier} at Stripe {len(values)} times")
        elif values[0] != delta:
            result.errors.append(f"meter event {identifier} carries {values[0]}, not {delta}")
    strangers = set(at_stripe) - set(plan.deltas)
    if strangers:
        result.duplicated.append(f"{len(strangers)} meter events for no key + revision posted")
    result.counts = {
        "usage records / keys": f"{sum(records.values())} / {len(plan.final)}",
        "outbox rows sent / key + revisions": (
            f"{sum(s == 'sent' for s in revisions.values())} / {len(plan.deltas)}"
        ),
        "meter events at Stripe / expected": (
            f"{sum(len(v) for v in at_stripe.values())} / {len(plan.deltas)}"
        ),
    }
