"""Checks on a Stripe post that stripe-python's signature check leaves out.

stripe-python refuses a `Stripe-Signature` timestamp older than its tolerance but accepts one
from any future, and the signature says nothing about which mode sent the event: an endpoint
takes only events of its own mode (a test-mode event is never processed by the live
endpoint, nor the other way round). https://docs.stripe.com/webhooks#verify-events
"""

import json
import time

MAX_FUTURE_SECONDS = 300


def signature_timestamp_problem(header: str, *, now: float | None = None) -> str | None:
    """Why the header's `t=` cannot be accepted (missing, not a number, in the future)."""
    now = time.time() if now is None else now
    stamps = [part[2:] for part in header.split(",") if part.strip().startswith("t=")]
    if len(stamps) != 1 or not stamps[0].strip().isascii() or not stamps[0].strip().isdigit():
        return "Stripe-Signature must carry one numeric t= timestamp"
    ahead = int(stamps[0]) - now
    if ahead > MAX_FUTURE_SECONDS:
        return f"Stripe-Signature timestamp is {int(ahead)} s in the future"
    return None


def livemode_problem(body: bytes, *, livemode: bool) -> str | None:
    """Why the event's `livemode` does not belong to an endpoint of this mode."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    value = event.get("livemode") if isinstance(event, dict) else None
    if not isinstance(value, bool):
        return "the event has no livemode"
    if value != livemode:
        mode = "live" if livemode else "test"
        return f"a {'live' if value else 'test'}-mode event posted to the {mode}-mode endpoint"
    return None
