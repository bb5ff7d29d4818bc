"""A stateful Stripe-compatible HTTP server for tests, the demo and benchmarks.

stripe-python and dj-stripe, unmodified, talk to it through `STRIPE_API_BASE`. Object shapes
come from Stripe's own fixtures (`fixtures3.json`, the current API shape). It never imports
application code.
"""

from .app import StripeServer
from .signing import signature_header

__all__ = ["StripeServer", "signature_header"]
