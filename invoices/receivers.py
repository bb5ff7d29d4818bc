"""Our handlers of Stripe's invoice and subscription events: record, then start the delivery
after commit.

They run in the worker task that handles a stored webhook (`billing_project.webhook_intake`),
never in Stripe's request, and read the event as Stripe signed it (the endpoint's pinned API
version): dj-stripe's copy of the objects is made afterwards and may lag or fail. The delivery
fetches the invoice fresh from Stripe before it renders anything.
"""

import logging
from typing import Any

from django.db import transaction

from billing_project.datapoints import datapoint_record
from billing_project.stripe_events import stripe_event_handlers_register

from .services import delivery_record, delivery_start

logger = logging.getLogger("billing.invoices")

INVOICE_EVENTS = ["invoice.finalized", "invoice.paid", "invoice.payment_failed", "invoice.updated"]
SUBSCRIPTION_EVENTS = [
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
]


def _received(event: dict[str, Any]) -> None:
    datapoint_record(
        name="webhook_received",
        dimensions={"event_type": event.get("type"), "idempotency_key": event.get("id")},
    )


def invoice_event_received(event: dict[str, Any]) -> None:
    """Record the invoice's delivery; start its work once the webhook's transaction commits."""
    _received(event)
    invoice = (event.get("data") or {}).get("object") or {}
    if not invoice.get("id"):
        return
    delivery, needs_work = delivery_record(invoice=invoice, event_type=event["type"])
    if delivery is not None and needs_work:
        transaction.on_commit(lambda: delivery_start(delivery.pk))


def subscription_event_received(event: dict[str, Any]) -> None:
    """Subscription changes are Stripe's to act on (dunning, cancellation); we keep the record."""
    _received(event)


def receivers_register() -> None:
    stripe_event_handlers_register(INVOICE_EVENTS, invoice_event_received)
    stripe_event_handlers_register(SUBSCRIPTION_EVENTS, subscription_event_received)
