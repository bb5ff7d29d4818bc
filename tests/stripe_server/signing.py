"""Webhook signatures exactly as Stripe makes them.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`
https://docs.stripe.com/webhooks#verify-manually
"""

import hashlib
import hmac
import time


def compute_signature(secret: str, payload: str, timestamp: int) -> str:
    signed = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, payload: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={compute_signature(secret, payload, timestamp)}"
