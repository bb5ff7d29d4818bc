"""Run the Stripe-compatible server: `python -m tests.stripe_server --port 12111`."""

import argparse
import signal
import threading

from .app import StripeServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    args = parser.parse_args()
    server = StripeServer(host=args.host, port=args.port).start()
    print(f"Stripe-compatible server on {server.url} (keys: sk_test_… / rk_test_…)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
