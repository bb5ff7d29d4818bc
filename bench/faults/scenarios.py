"""The scenarios. Each sends fresh invoices' webhooks and fresh usage over `burst` seconds,
breaks something in the middle of it, repairs it, and waits until every invoice is emailed and
every usage key is at Stripe — or the time limit passes — then counts lost and duplicated.

"recovered in" runs from the repair (for the scenarios without an outage: from the last post)
to the moment the last invoice email and the last meter event were there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.faults import checks
from bench.faults.stack import Stack, log
from bench.faults.traffic import (
    USAGE_TYPES,
    World,
    tracking_send,
    usage_days,
    usage_send,
    webhooks_send,
)

USAGE_BATCH = 5


@dataclass(frozen=True)
class Config:
    short: bool
    invoices: int  # per scenario
    usage_keys: int  # per scenario
    burst: float  # seconds over which a scenario's first posts are spread
    outage: float  # seconds a service stays broken
    restart_pause: float  # seconds between a kill and the restart
    wait_limit: float  # seconds to wait for recovery before counting what is missing


SHORT = Config(
    short=True,
    invoices=6,
    usage_keys=6,
    burst=4,
    outage=8,
    restart_pause=1,
    wait_limit=150,
)
FULL = Config(
    short=False,
    invoices=30,
    usage_keys=30,
    burst=20,
    outage=60,
    restart_pause=5,
    wait_limit=1500,
)


@dataclass
class Result:
    scenario: str
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    recovered_s: float | None = None
    detail: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and not self.errors


class Allotment:
    """Hands each scenario invoices and usage keys nobody else used."""

    def __init__(self, world: World, usage_keys_total: int) -> None:
        self.world = world
        self._invoices = list(world.invoices)
        days = usage_days(-(-usage_keys_total // (len(world.usage_accounts) * 3)))
        self._keys = [
            (acct, day, usage_type)
            for day in days
            for acct in world.usage_accounts
            for usage_type in USAGE_TYPES
        ]
        self._quantity = 1000

    def invoices(self, count: int) -> list[str]:
        taken, self._invoices = self._invoices[:count], self._invoices[count:]
        if len(taken) < count:
            raise RuntimeError("the world has too few invoices for the scenarios chosen")
        return taken

    def usage(self, count: int) -> tuple[list[list[dict]], dict[str, int]]:
        taken, self._keys = self._keys[:count], self._keys[count:]
        items, expected = [], {}
        for acct, day, usage_type in taken:
            self._quantity += 137
            items.append(
                {"acct_id": acct, "period": day, "type": usage_type, "quantity": self._quantity}
            )
            expected[f"{acct}:{day}:{usage_type}"] = self._quantity
        batches = [items[n : n + USAGE_BATCH] for n in range(0, len(items), USAGE_BATCH)]
        return batches, expected


def _tally(stack: Stack, invoice_ids: list[str], usage: dict[str, int]) -> checks.Tally:
    return checks.invoices_tally(stack, invoice_ids).merge(checks.usage_tally(stack, usage))


def wait_complete(
    stack: Stack, cfg: Config, measure: Callable[[], checks.Tally], since: float
) -> tuple[checks.Tally, float | None]:
    """Poll until nothing is pending; (the last tally, seconds from `since` or None)."""
    deadline = time.monotonic() + cfg.wait_limit
    tally = checks.Tally()
    while True:
        try:
            tally = measure()
        except Exception as exc:  # the database may still be coming back
            log(f"  check failed ({type(exc).__name__}: {str(exc)[:120]}); retrying")
            if time.monotonic() > deadline:
                raise
            stack.db_reset_connections()
            time.sleep(1)
            continue
        if tally.complete:
            return tally, time.monotonic() - since
        if time.monotonic() > deadline:
            return tally, None
        time.sleep(0.5)


def _finish(result: Result, tally: checks.Tally, recovered: float | None, senders: list) -> Result:
    result.lost = len(tally.lost) + len(tally.pending)
    result.duplicated = len(tally.duplicated)
    result.recovered_s = recovered
    for sender in senders:
        if sender.error:
            result.errors.append(sender.error)
    if tally.pending and recovered is None:
        result.errors.append(f"not there after the wait limit: {tally.pending[:5]}")
    if tally.lost:
        result.errors.append(f"lost: {tally.lost[:5]}")
    if tally.duplicated:
        result.errors.append(f"duplicated: {tally.duplicated[:5]}")
    retries = sum(s.failures for s in senders)
    if retries:
        result.detail = (result.detail + f"; {retries} posts answered non-2xx and re-sent").lstrip(
            "; "
        )
    return result


# --- scenarios with a fault in the middle of a burst -------------------------------------------


def _burst_with_fault(
    name: str, stack: Stack, world: World, allot: Allotment, cfg: Config, fault: Callable
) -> Result:
    invoice_ids = allot.invoices(cfg.invoices)
    batches, usage = allot.usage(cfg.usage_keys)
    result = Result(name, events=len(invoice_ids) + len(usage))
    senders = [
        webhooks_send(stack, [world.finalized[i] for i in invoice_ids], spread=cfg.burst).start(),
        usage_send(stack, world.producer_token, batches, spread=cfg.burst).start(),
    ]
    time.sleep(cfg.burst / 3)
    # Break it while a webhook or a delivery is under way (not between two of them).
    until = time.monotonic() + cfg.burst
    in_flight, busy = stack.in_flight()
    while not busy and time.monotonic() < until:
        time.sleep(0.05)
        in_flight, busy = stack.in_flight()
    result.detail = f"{fault(stack, cfg)}; {in_flight}"
    repaired = time.monotonic()
    for sender in senders:
        sender.join(cfg.wait_limit)
    tally, recovered = wait_complete(
        stack, cfg, lambda: _tally(stack, invoice_ids, usage), repaired
    )
    result.detail += f"; {stack.retried(invoice_ids, list(usage))}"
    return _finish(result, tally, recovered, senders)


def fault_worker_kill(stack: Stack, cfg: Config) -> str:
    killed = stack.worker_kill()
    log(f"  SIGKILLed the worker ({killed} processes)")
    time.sleep(cfg.restart_pause)
    stack.worker_start()
    return f"{killed} worker processes killed"


def fault_postgres_restart(stack: Stack, cfg: Config) -> str:
    started = time.monotonic()
    stack.cluster.stop("fast")
    time.sleep(cfg.restart_pause)
    stack.cluster.start()
    stack.cluster.wait_ready()
    return f"down {time.monotonic() - started:.1f} s"


def fault_seaweed_down(stack: Stack, cfg: Config) -> str:
    stack.s3.halt()
    time.sleep(cfg.outage)
    stack.s3.resume()
    return f"stopped {cfg.outage:g} s"


def fault_mailgun_5xx(stack: Stack, cfg: Config) -> str:
    stack.servers.call("mailgun_fail", {"n": 1_000_000, "status": 503})
    time.sleep(cfg.outage)
    stack.servers.call("mailgun_heal")
    return f"503 for {cfg.outage:g} s"


def fault_stripe_5xx_429(stack: Stack, cfg: Config) -> str:
    stack.servers.call("stripe_fail", {"count": 1_000_000, "status": 500})
    time.sleep(cfg.outage / 2)
    stack.servers.call("stripe_heal")
    stack.servers.call("stripe_fail", {"count": 1_000_000, "status": 429, "retry_after": 1})
    time.sleep(cfg.outage / 2)
    stack.servers.call("stripe_heal")
    return f"500 for {cfg.outage / 2:g} s, then 429 for {cfg.outage / 2:g} s"


# --- scenarios without an outage ---------------------------------------------------------------


def duplicated_reordered(stack: Stack, world: World, allot: Allotment, cfg: Config) -> Result:
    """Every event of each invoice (created, finalized, paid, …) posted two or three times, in a
    shuffled order over two connections; each usage batch posted twice, then corrections."""
    invoice_ids = allot.invoices(cfg.invoices)
    batches, usage = allot.usage(cfg.usage_keys)
    events = stack.servers.call("stripe_events", invoice_ids)
    rng = random.Random(len(invoice_ids))
    posts = [e for e in events for _ in range(rng.choice((2, 3)))]
    rng.shuffle(posts)
    result = Result("webhooks duplicated + reordered", events=len(invoice_ids) + len(usage))
    result.detail = f"{len(posts)} posts of {len(events)} events; usage batches sent twice"
    doubled = [b for batch in batches for b in (batch, batch)]
    senders = [
        webhooks_send(stack, posts[0::2], spread=cfg.burst).start(),
        webhooks_send(stack, posts[1::2], spread=cfg.burst).start(),
        usage_send(stack, world.producer_token, doubled[0::2], spread=cfg.burst).start(),
        usage_send(stack, world.producer_token, doubled[1::2], spread=cfg.burst).start(),
    ]
    for sender in senders:
        sender.join(cfg.wait_limit)
    corrections = _corrections(usage)
    result.detail += f"; {len(corrections)} usage corrections (up and down) sent twice"
    senders.append(
        usage_send(stack, world.producer_token, [corrections, corrections]).start(),
    )
    senders[-1].join(cfg.wait_limit)
    since = time.monotonic()
    tally, recovered = wait_complete(stack, cfg, lambda: _tally(stack, invoice_ids, usage), since)
    return _finish(result, tally, recovered, senders)


def _corrections(usage: dict[str, int]) -> list[dict]:
    """A correction for every other key, alternately up and down; `usage` gets the new
    quantities (what Stripe's meter must add up to)."""
    items = []
    for n, key in enumerate(list(usage)[::2]):
        acct, day, usage_type = key.split(":")
        usage[key] += 500 if n % 2 == 0 else -300
        items.append(
            {
                "acct_id": int(acct),
                "period": day,
                "type": usage_type,
                "quantity": usage[key],
                "correction": True,
            }
        )
    return items


def tracking_replayed(stack: Stack, world: World, allot: Allotment, cfg: Config) -> Result:
    """Fresh invoices emailed, then a `delivered` and an `opened` tracking webhook for each,
    every one posted three times in a shuffled order over two connections."""
    invoice_ids = allot.invoices(cfg.invoices)
    sender = webhooks_send(stack, [world.finalized[i] for i in invoice_ids]).start()
    sender.join(cfg.wait_limit)
    tally, _ = wait_complete(
        stack, cfg, lambda: checks.invoices_tally(stack, invoice_ids), time.monotonic()
    )
    result = Result("tracking webhooks replayed")
    if not tally.complete:
        result.errors.append("the invoices were not emailed before the replay")
        return _finish(result, tally, None, [sender])
    messages = [m for m in stack.servers.call("messages") if m["invoice"] in set(invoice_ids)]
    payloads = []
    for message in messages:
        for event in ("delivered", "opened"):
            payloads.append(
                stack.servers.call(
                    "tracking_payload",
                    {"event": event, "message_id": message["id"], "recipient": message["to"][0]},
                )
            )
    event_ids = [p["signature"]["token"] for p in payloads]  # what Anymail calls event_id
    rng = random.Random(len(payloads))
    posts = [p for p in payloads for _ in range(3)]
    rng.shuffle(posts)
    result.events = len(payloads)
    result.detail = f"{len(posts)} posts of {len(payloads)} tracking events"
    senders = [tracking_send(stack, posts[0::2]).start(), tracking_send(stack, posts[1::2]).start()]
    for one in senders:
        one.join(cfg.wait_limit)
    since = time.monotonic()

    def measure() -> checks.Tally:
        from invoices.models import InvoiceDelivery

        found = checks.tracking_tally(event_ids).merge(checks.invoices_tally(stack, invoice_ids))
        undelivered = list(
            InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids)
            .exclude(state="delivered")
            .values_list("stripe_invoice_id", flat=True)
        )
        found.pending += undelivered
        return found

    tally, recovered = wait_complete(stack, cfg, measure, since)
    tally.expected = len(payloads)
    return _finish(result, tally, recovered, senders)


def _with_fault(name: str, fault: Callable) -> Callable:
    def run(stack: Stack, world: World, allot: Allotment, cfg: Config) -> Result:
        return _burst_with_fault(name, stack, world, allot, cfg, fault)

    return run


SCENARIOS: dict[str, Callable[[Stack, World, Allotment, Config], Result]] = {
    "worker-kill": _with_fault("worker SIGKILLed mid-burst, restarted", fault_worker_kill),
    "postgres-restart": _with_fault("PostgreSQL restarted mid-burst", fault_postgres_restart),
    "seaweed-down": _with_fault("SeaweedFS stopped", fault_seaweed_down),
    "mailgun-5xx": _with_fault("Mailgun answering 503", fault_mailgun_5xx),
    "stripe-5xx-429": _with_fault("Stripe answering 500, then 429", fault_stripe_5xx_429),
    "webhooks-duplicated": duplicated_reordered,
    "tracking-replayed": tracking_replayed,
}
