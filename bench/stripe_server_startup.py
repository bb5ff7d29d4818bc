"""How long the Stripe-compatible server takes to answer its first request.

Two figures: in-process (`StripeServer().start()` until `GET /v1/account` answers) and as a
separate process (`python -m tests.stripe_server` until it answers), each over several runs.
Run: `.venv/bin/python bench/stripe_server_startup.py [--runs 10]`.
"""

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stripe_server import StripeServer

KEY = "sk_test_Bench0000000000000000000000000"


def first_answer(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {KEY}"}
    request = urllib.request.Request(url + "/v1/account", headers=headers)
    while True:
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_process() -> float:
    started = time.perf_counter()
    server = StripeServer().start()
    first_answer(server.url)
    elapsed = time.perf_counter() - started
    server.stop()
    return elapsed


def separate_process() -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stripe_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        first_answer(f"http://127.0.0.1:{port}")
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    in_process()  # warm imports once, as a test session does
    for name, measure in (("in-process", in_process), ("separate process", separate_process)):
        samples = [measure() for _ in range(args.runs)]
        print(
            f"{name:17} runs={args.runs} median={statistics.median(samples) * 1000:.0f} ms "
            f"max={max(samples) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
