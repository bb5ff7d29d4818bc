"""dj-stripe webhook receivers: record, then start the delivery after commit.

They run in the worker task that processes a stored webhook (`billing_project.webhook_intake`),
never in Stripe's request.

dj-stripe has already re-fetched and stored the object when these run; we read its
`stripe_data` (the pinned API version's shape) rather than the raw payload.
"""

import logging

from django.db import transaction
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Invoice

from billing_project.datapoints import datapoint_record

from .services import delivery_record, delivery_start

logger = logging.getLogger("billing.invoices")

INVOICE_EVENTS = ["invoice.finalized", "invoice.paid", "invoice.payment_failed", "invoice.updated"]
SUBSCRIPTION_EVENTS = [
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
]


@djstripe_receiver(INVOICE_EVENTS)
def invoice_event_received(sender, event, **kwargs) -> None:
    """Record the invoice's delivery; start its work once the webhook's transaction commits."""
    datapoint_record(
        name="webhook_received",
        dimensions={"event_type": event.type, "idempotency_key": event.id},
    )
    invoice_id = (event.data.get("object") or {}).get("id")
    synced = Invoice.objects.filter(id=invoice_id).first()
    invoice = synced.stripe_data if synced is not None else event.data["object"]
    delivery, needs_work = delivery_record(invoice=invoice, event_type=event.type)
    if delivery is not None and needs_work:
        transaction.on_commit(lambda: delivery_start(delivery.pk))


@djstripe_receiver(SUBSCRIPTION_EVENTS)
def subscription_event_received(sender, event, **kwargs) -> None:
    """Subscription changes are Stripe's to act on (dunning, cancellation); we keep the record."""
    datapoint_record(
        name="webhook_received",
        dimensions={"event_type": event.type, "idempotency_key": event.id},
    )
