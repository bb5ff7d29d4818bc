"""The webhook flood: every event Stripe would send our endpoint for a set of subscriptions,
posted signed on N keep-alive connections with a share of re-sends, then drained by the worker.

The events are built on the Stripe-compatible server through stripe-python (the delivery
benchmark's `stripe_side`: customers with a monthly subscription on test clocks advanced past
the cycle) and read back from its events API, keeping the types our endpoint subscribes to
(`ENABLED_EVENTS`: per customer the first and the cycle invoice's `invoice.finalized`, their
`invoice.paid` when charged automatically, `customer.subscription.updated`), in the order the
server emitted them. A duplicate is an earlier event posted again at a random later place (a
Stripe re-send), so some go out at the same time as their original on another connection.

Drained: every post's trigger processed and every invoice's delivery out of the work states.
Checked afterwards: one dj-stripe `Event` row per distinct event, every trigger processed
without error, and per invoice exactly one email at the Mailgun-compatible server, at most one
sent email attempt and one PDF in the bucket.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from bench import delivery_bench
from bench.delivery.load import Item, Post, post_concurrently
from bench.load.stack import Stack, log

# Events of ENABLED_EVENTS per customer the stand-in emits (two finalized invoices, one or two
# paid, one subscription update); the build adds a margin and checks.
EVENTS_PER_CUSTOMER = 4.5
DRAIN_TIMEOUT_S = 1800


@dataclass
class Flood:
    items: list[Item]
    distinct: list[str]  # event ids
    invoices: list[str]  # invoice ids of the invoice events posted
    emailed: set[str]  # of those, the cycle invoices (the $0 opening ones are not delivered)


@dataclass
class FloodResult:
    posts: list[Post]
    started: float
    acked: float  # last answer, wall clock
    drained: float | None  # wall clock when drained, None if the timeout passed
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: dict[str, str] = field(default_factory=dict)


def _events_read(stack: Stack) -> list[dict]:
    """Every event the server holds, oldest first, through its list API."""
    base = stack.servers.urls["stripe"]["setup"].rstrip("/")
    found: list[dict] = []
    after = ""
    while True:
        url = f"{base}/v1/events?limit=100" + (f"&starting_after={after}" if after else "")
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {delivery_bench.STRIPE_SECRET_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.load(response)
        found += page["data"]
        if not page["has_more"] or not page["data"]:
            break
        after = page["data"][-1]["id"]
    found.reverse()
    return found


def flood_build(stack: Stack, *, events: int, duplicates: float, seed: int) -> Flood:
    from billing_project.stripe_webhook import ENABLED_EVENTS

    repeats = round(events * duplicates)
    distinct = events - repeats
    if distinct < 1:
        raise ValueError("--duplicates leaves no distinct event")
    customers = math.ceil(distinct / EVENTS_PER_CUSTOMER * 1.05) + 2
    log(f"webhook flood: building {customers} subscriptions on the Stripe-compatible server")
    built = delivery_bench.stripe_side(stack.servers, customers)
    delivery_bench.accounts_create(built)
    wanted = set(ENABLED_EVENTS)
    emitted = [e for e in _events_read(stack) if e["type"] in wanted]
    if len(emitted) < distinct:
        raise RuntimeError(f"only {len(emitted)} events for {distinct} distinct posts")
    emitted = emitted[:distinct]
    rng = random.Random(seed)
    unique = [_item(e, f"wh-{n}") for n, e in enumerate(emitted)]
    items = list(unique)
    for n in range(repeats):
        original = unique[rng.randrange(len(unique))]
        position = rng.randrange(items.index(original) + 1, len(items) + 1)
        items.insert(position, _item(json.loads(original.payload), f"wh-dup-{n}", True))
    invoices = sorted(
        {e["data"]["object"]["id"] for e in emitted if e["type"].startswith("invoice.")}
    )
    emailed = {
        e["data"]["object"]["id"]
        for e in emitted
        if e["type"].startswith("invoice.")
        and e["data"]["object"].get("billing_reason") == "subscription_cycle"
    }
    types = Counter(e["type"] for e in emitted)
    log(f"webhook flood: {len(items)} posts of {distinct} events ({dict(types)})")
    return Flood(items, [e["id"] for e in emitted], invoices, emailed)


def _item(event: dict, bench_id: str, duplicate: bool = False) -> Item:
    obj = event["data"]["object"]
    return Item(
        bench_id=bench_id,
        event_id=event["id"],
        invoice_id=obj.get("id", "") if event["type"].startswith("invoice.") else "",
        payload=json.dumps(event),
        duplicate=duplicate,
    )


def _drained(flood: Flood, posted: int) -> bool:
    from djstripe.models import WebhookEventTrigger

    from invoices.models import InvoiceDelivery

    if WebhookEventTrigger.objects.filter(processed=True).count() < posted:
        return False
    done = InvoiceDelivery.objects.filter(
        stripe_invoice_id__in=flood.invoices, state__in=delivery_bench.DONE_STATES
    ).count()
    return done == len(flood.invoices)


def flood_run(stack: Stack, flood: Flood, *, connections: int) -> FloodResult:
    posts: list[Post] = []
    started = time.time()
    sender = threading.Thread(
        target=lambda: posts.extend(
            post_concurrently(
                flood.items,
                host="127.0.0.1",
                port=stack.web_port,
                path=stack.webhook_path,
                secret=delivery_bench.WEBHOOK_SECRET,
                connections=connections,
            )
        ),
        name="webhook-flood",
    )
    sender.start()
    drained = None
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    reported = time.monotonic()
    while time.monotonic() < deadline:
        stack.worker_check()
        if not sender.is_alive() and _drained(flood, sum(p.status == 200 for p in posts)):
            drained = time.time()
            break
        if time.monotonic() - reported > 30:
            reported = time.monotonic()
            log(f"webhook flood: {len(posts)} answered so far; draining")
        time.sleep(0.5)
    sender.join()
    acked = max(p.sent_at + p.seconds for p in posts)
    result = FloodResult(posts, started, acked, drained)
    if drained is None:
        result.errors.append(f"webhook flood not drained after {DRAIN_TIMEOUT_S} s")
    _verify(stack, flood, result)
    return result


def _verify(stack: Stack, flood: Flood, result: FloodResult) -> None:
    from djstripe.models import Event, WebhookEventTrigger

    from invoices.models import EmailAttempt, InvoiceDelivery

    failed = [p for p in result.posts if p.status != 200]
    if failed:
        result.errors.append(
            f"{len(failed)} webhook posts not answered 200 (first: {failed[0].item.event_id} "
            f"status {failed[0].status} {failed[0].error})"
        )
    triggers = WebhookEventTrigger.objects.count()
    accepted = len(result.posts) - len(failed)
    unprocessed = WebhookEventTrigger.objects.filter(processed=False).count()
    with_error = WebhookEventTrigger.objects.exclude(exception="").count()
    if triggers != accepted:
        result.errors.append(f"{triggers} webhook triggers stored for {accepted} accepted posts")
    if unprocessed or with_error:
        result.errors.append(f"triggers: {unprocessed} unprocessed, {with_error} with an exception")
    stored = Counter(Event.objects.values_list("id", flat=True))
    expected = set(flood.distinct)
    result.lost += [f"event {e}" for e in expected - set(stored)]
    result.duplicated += [f"event {e}" for e, n in stored.items() if n > 1]
    strangers = set(stored) - expected
    if strangers:
        result.errors.append(f"{len(strangers)} Event rows for events never posted")

    states = dict(
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=flood.invoices).values_list(
            "stripe_invoice_id", "state"
        )
    )
    emails = Counter(m["invoice"] for m in stack.servers.call("messages"))
    attempts = Counter(
        EmailAttempt.objects.filter(status=EmailAttempt.Status.SENT).values_list(
            "delivery__stripe_invoice_id", flat=True
        )
    )
    pdf_keys = dict(
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=flood.invoices).values_list(
            "stripe_invoice_id", "pdf_key"
        )
    )
    bucket = Counter(delivery_bench.bucket_keys(stack.s3))
    for invoice in flood.invoices:
        state = states.get(invoice)
        if emails[invoice] > 1 or attempts[invoice] > 1:
            result.duplicated.append(f"invoice {invoice}: {emails[invoice]} emails")
        if invoice not in flood.emailed:
            if state != "not_ours" or emails[invoice] or pdf_keys.get(invoice):
                result.errors.append(
                    f"opening $0 invoice {invoice}: delivery {state}, {emails[invoice]} emails"
                )
        elif state not in ("sent", "delivered") or emails[invoice] == 0:
            result.lost.append(f"invoice {invoice}: delivery {state}, {emails[invoice]} emails")
        elif not pdf_keys.get(invoice) or bucket[pdf_keys[invoice]] != 1:
            result.lost.append(f"invoice {invoice}: no PDF in the bucket")
    strangers = set(emails) - set(flood.invoices)
    if strangers:
        result.errors.append(f"{len(strangers)} emails for invoices never posted")
    extra_pdfs = set(bucket) - {k for k in pdf_keys.values() if k}
    if extra_pdfs:
        result.duplicated.append(f"{len(extra_pdfs)} PDF objects no delivery refers to")
    result.counts = {
        "Event rows / distinct events": f"{len(stored)} / {len(expected)}",
        "triggers stored / processed": f"{triggers} / {triggers - unprocessed}",
        "cycle invoices: deliveries sent / emails / PDFs": (
            f"{sum(s in ('sent', 'delivered') for s in states.values())} / "
            f"{sum(emails[i] for i in flood.invoices)} / {len(bucket)} of {len(flood.emailed)}"
        ),
        "opening $0 invoices: not ours, no email": (
            f"{sum(s == 'not_ours' for s in states.values())} of "
            f"{len(flood.invoices) - len(flood.emailed)}"
        ),
    }
