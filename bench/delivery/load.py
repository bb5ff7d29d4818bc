"""Posting signed webhook events to the app as Stripe does, over keep-alive connections."""

from __future__ import annotations

import http.client
import queue
import random
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.stripe_server.signing import signature_header

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class Item:
    """One webhook post: the event as Stripe renders it for the endpoint."""

    bench_id: str
    event_id: str
    invoice_id: str
    payload: str
    duplicate: bool = False


@dataclass(frozen=True)
class Post:
    item: Item
    sent_at: float  # wall clock (time.time) when the request started
    seconds: float  # request written until the response was read
    status: int | None
    error: str = ""
    reconnects: int = 0


class WebhookClient:
    """One keep-alive HTTP/1.1 connection to the app, like one of Stripe's senders."""

    def __init__(self, host: str, port: int, path: str, secret: str) -> None:
        self.host, self.port, self.path, self.secret = host, port, path, secret
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def post(self, item: Item) -> Post:
        reconnects = 0
        while True:
            connection = self._connect()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": signature_header(self.secret, item.payload),
                "X-Bench-Id": item.bench_id,
            }
            sent_at = time.time()
            started = time.perf_counter()
            try:
                connection.request("POST", self.path, body=item.payload.encode(), headers=headers)
                response = connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # The server closed an idle keep-alive connection: open a new one and resend.
                self.close()
                reconnects += 1
                if reconnects > 2:
                    return Post(item, sent_at, time.perf_counter() - started, None, str(exc))
                continue
            except OSError as exc:
                self.close()
                return Post(item, sent_at, time.perf_counter() - started, None, str(exc))
            seconds = time.perf_counter() - started
            if response.will_close:
                self.close()
            return Post(item, sent_at, seconds, response.status, "", reconnects)


def post_concurrently(
    items: Sequence[Item], *, host: str, port: int, path: str, secret: str, connections: int
) -> list[Post]:
    """Post every item as fast as `connections` keep-alive connections allow, in order."""
    todo: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    for _ in range(connections):
        todo.put(None)
    done: list[Post] = []
    lock = threading.Lock()

    def sender() -> None:
        client = WebhookClient(host, port, path, secret)
        try:
            while (item := todo.get()) is not None:
                result = client.post(item)
                with lock:
                    done.append(result)
        finally:
            client.close()

    threads = [
        threading.Thread(target=sender, name=f"webhook-sender-{n}") for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(done, key=lambda post: post.sent_at)


def post_paced(
    items: Iterable[Item],
    *,
    host: str,
    port: int,
    path: str,
    secret: str,
    rate: float,
    rng: random.Random,
) -> list[Post]:
    """Post `rate` items per second on one connection: item n at a uniformly random moment of
    its 1/rate-second slot. Random phases matter: the worker polls its queue every 0.5 s, and a
    strict 1 s beat would meet every poll at the same phase, so one run would measure the lucky
    or the unlucky wait for all invoices."""
    client = WebhookClient(host, port, path, secret)
    done: list[Post] = []
    start = time.monotonic()
    try:
        for n, item in enumerate(items):
            delay = start + (n + rng.random()) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            done.append(client.post(item))
    finally:
        client.close()
    return done


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); with 30 samples p99 is the maximum."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }
