"""What the outside world sends during a scenario, each sender retrying as the real one does.

- Stripe posts each webhook until it is answered 2xx (it retries for three days; here every
  `RETRY_WAIT` seconds), on keep-alive connections (`bench/delivery/load.py`).
- A usage producer posts batches to `POST /usage` with its token until it gets a 200 with a
  result per item; a retried batch is answered `duplicate` for what was stored the first time.
- Mailgun posts each tracking webhook until it is answered 2xx.

The world is built once per run: invoices finalized on the Stripe-compatible server (the
delivery benchmark's `stripe_side`), their accounts, the three usage meters, usage accounts
whose customers are not on test clocks (a meter event is checked against the customer's
clock), and a producer token.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import delivery_bench
from bench.delivery.load import Item, WebhookClient

RETRY_WAIT = 1.0
USAGE_ACCT_BASE = 810_000
USAGE_TYPES = ("ST", "RM", "CV")
ACCEPTED_USAGE = ("created", "duplicate", "corrected")


@dataclass
class World:
    invoices: list[str]  # Stripe invoice ids, in creation order
    finalized: dict[str, dict]  # invoice id -> its invoice.finalized event
    usage_accounts: list[int]
    producer_token: str


def world_build(stack, *, invoices: int, usage_accounts: int) -> World:
    import stripe

    from metering.models import BillingAccount
    from metering.usage_services import producer_token_create
    from metering.usage_types import METER_EVENT_NAMES

    built = delivery_bench.stripe_side(stack.servers, invoices)
    delivery_bench.accounts_create(built)
    stripe.api_key = delivery_bench.STRIPE_SECRET_KEY
    stripe.api_base = stack.servers.urls["stripe"]["setup"]
    for usage_type, event_name in METER_EVENT_NAMES.items():
        stripe.billing.Meter.create(
            display_name=f"{usage_type} impressions",
            event_name=event_name,
            default_aggregation={"formula": "sum"},
            customer_mapping={"event_payload_key": "stripe_customer_id", "type": "by_id"},
            value_settings={"event_payload_key": "value"},
        )
    accounts = []
    for n in range(usage_accounts):
        acct_id = USAGE_ACCT_BASE + n
        customer = stripe.Customer.create(
            email=f"usage+{acct_id}@customer.example", metadata={"acct_id": str(acct_id)}
        )
        accounts.append(
            BillingAccount(
                acct_id=acct_id,
                name=f"Usage Account {n}",
                billing_email=f"usage+{acct_id}@customer.example",
                stripe_customer_id=customer.id,
                billing_owner=BillingAccount.BillingOwner.PARALLEL,
            )
        )
    BillingAccount.objects.bulk_create(accounts)
    _, raw = producer_token_create(name="fault suite")
    return World(
        invoices=[event["data"]["object"]["id"] for _, _, event in built],
        finalized={event["data"]["object"]["id"]: event for _, _, event in built},
        usage_accounts=[a.acct_id for a in accounts],
        producer_token=raw,
    )


def usage_days(count: int, today: datetime | None = None) -> list[str]:
    """`count` distinct UTC days ending today, newest first. They may reach into the previous
    month: these accounts have no subscription, so no invoice bills their usage and none of it
    can be `too_late` (that is decided by the invoice Stripe made, never by the calendar)."""
    if not 1 <= count <= 30:
        raise ValueError(f"usage days: {count} is outside 1..30 (Stripe's 35-day window)")
    today = (today or datetime.now(UTC)).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(count)]


# --- senders -----------------------------------------------------------------------------------


class Sender:
    """Posts in a thread until every item is answered; `join()` returns the attempts made."""

    def __init__(self, name: str, work) -> None:
        self.attempts = 0
        self.failures = 0
        self.error = ""
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)

    def _run(self, work) -> None:
        try:
            work(self)
        except Exception as exc:  # reported by the scenario
            self.error = f"{type(exc).__name__}: {exc}"

    def start(self) -> Sender:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def webhooks_send(
    stack, payloads: list[dict], *, spread: float = 0.0, deadline: float = 600
) -> Sender:
    """Post each event (a dict as Stripe renders it) until answered 2xx, `spread` seconds from
    the first to the last first attempt."""

    def work(sender: Sender) -> None:
        client = WebhookClient(
            "127.0.0.1", stack.web_port, stack.webhook_path, delivery_bench.WEBHOOK_SECRET
        )
        started = time.monotonic()
        try:
            for n, event in enumerate(payloads):
                if spread and len(payloads) > 1:
                    wait = started + spread * n / (len(payloads) - 1) - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                item = Item(
                    f"fault-{n}", event["id"], event["data"]["object"]["id"], json.dumps(event)
                )
                while True:
                    sender.attempts += 1
                    post = client.post(item)
                    if post.status is not None and 200 <= post.status < 300:
                        break
                    sender.failures += 1
                    if time.monotonic() - started > deadline:
                        raise RuntimeError(f"{event['id']} never accepted ({post.status})")
                    client.close()
                    time.sleep(RETRY_WAIT)
        finally:
            client.close()

    return Sender("stripe-webhooks", work)


def usage_send(
    stack, token: str, batches: list[list[dict]], *, spread: float = 0.0, deadline: float = 600
) -> Sender:
    """POST each batch to /usage until it is answered 200 with no `conflict` or `invalid`
    (`correction` items are answered `corrected`, or `duplicate` when sent again)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def work(sender: Sender) -> None:
        started = time.monotonic()
        for n, batch in enumerate(batches):
            if spread and len(batches) > 1:
                wait = started + spread * n / (len(batches) - 1) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            answer = _post_until_accepted(
                sender, stack.web_port, "/usage", batch, headers, started + deadline
            )
            bad = [r for r in answer["results"] if r["status"] not in ACCEPTED_USAGE]
            if bad:
                raise RuntimeError(f"usage batch {n} refused items: {bad[:3]}")

    return Sender("usage-producer", work)


def tracking_send(stack, payloads: list[dict], *, deadline: float = 600) -> Sender:
    """POST each Mailgun tracking webhook body until answered 2xx."""
    headers = {"Content-Type": "application/json"}

    def work(sender: Sender) -> None:
        until = time.monotonic() + deadline
        for payload in payloads:
            _post_until_accepted(
                sender, stack.web_port, "/anymail/mailgun/tracking/", payload, headers, until
            )

    return Sender("mailgun-tracking", work)


def _post_until_accepted(
    sender: Sender, port: int, path: str, payload: object, headers: dict, until: float
) -> dict:
    """POST until answered 2xx (a 4xx other than 429 is a refusal, raised); the answer."""
    body = json.dumps(payload).encode()
    while True:
        sender.attempts += 1
        status, answer = _post(port, path, body, headers)
        if status is not None and 200 <= status < 300:
            return answer
        sender.failures += 1
        if status is not None and 400 <= status < 500 and status != 429:
            raise RuntimeError(f"{path} answered {status}: {answer}")
        if time.monotonic() > until:
            raise RuntimeError(f"{path} never accepted (last answer {status})")
        time.sleep(RETRY_WAIT)


def _post(port: int, path: str, body: bytes, headers: dict) -> tuple[int | None, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    except OSError:
        return None, {}
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw or b"{}")
    except ValueError:
        return response.status, {}
