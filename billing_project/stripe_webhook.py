"""The dj-stripe webhook endpoint record: where Stripe posts events and the secret that signs them.

Recording is a release step: it writes the local endpoint row from the environment (UUID, signing
secret, pinned API version), so rotating `STRIPE_WEBHOOK_SECRET` takes effect on the next deploy.
Registering (optional, once per environment) creates the endpoint in Stripe and returns the
signing secret Stripe generated, which operators then set as `STRIPE_WEBHOOK_SECRET`.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import WebhookEndpoint

from . import stripe_api

ENABLED_EVENTS = [
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.updated",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
]


@dataclass(frozen=True)
class EndpointRecord:
    endpoint: WebhookEndpoint
    created: bool
    changed_fields: list[str]


def webhook_endpoint_url(base_url: str) -> str:
    path = reverse(
        "djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID}
    )
    return base_url.rstrip("/") + path


def webhook_endpoint_record(
    *, base_url: str, stripe_id: str | None = None, secret: str | None = None, dry_run: bool = False
) -> EndpointRecord:
    """Create or update the local endpoint row for our UUID. Idempotent."""
    wanted = {
        "url": webhook_endpoint_url(base_url),
        "secret": secret if secret is not None else settings.STRIPE_WEBHOOK_SECRET,
        "api_version": settings.STRIPE_API_VERSION,
        "enabled_events": ENABLED_EVENTS,
        "status": WebhookEndpointStatus.enabled,
        "livemode": settings.STRIPE_LIVE_MODE,
    }
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update()
            .filter(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID)
            .first()
        )
        if endpoint is None:
            endpoint = WebhookEndpoint(
                id=stripe_id or f"we_unregistered_{settings.STRIPE_WEBHOOK_UUID.replace('-', '')}",
                djstripe_uuid=settings.STRIPE_WEBHOOK_UUID,
                **wanted,
            )
            if not dry_run:
                endpoint.save()
            return EndpointRecord(endpoint, created=True, changed_fields=sorted(wanted))
        changed = [key for key, value in wanted.items() if getattr(endpoint, key) != value]
        if stripe_id and endpoint.id != stripe_id:
            # The primary key is Stripe's id: move the row to the registered id.
            if not dry_run:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(id=stripe_id)
                endpoint = WebhookEndpoint.objects.get(id=stripe_id)
            changed.append("id")
        for key, value in wanted.items():
            setattr(endpoint, key, value)
        if changed and not dry_run:
            endpoint.save()
    return EndpointRecord(endpoint, created=False, changed_fields=changed)


def webhook_endpoint_register(*, base_url: str) -> tuple[str, str]:
    """Create the endpoint in Stripe; returns (Stripe id, signing secret). Network call."""
    created = stripe_api.request(
        "post",
        "/v1/webhook_endpoints",
        url=webhook_endpoint_url(base_url),
        enabled_events=ENABLED_EVENTS,
        api_version=settings.STRIPE_API_VERSION,
        description="Billing: invoice delivery and subscription state",
        metadata={"djstripe_uuid": settings.STRIPE_WEBHOOK_UUID},
    )
    return created["id"], created["secret"]


def webhook_endpoint_remote_status(endpoint_id: str) -> str:
    """Stripe's status of the registered endpoint (`enabled`/`disabled`). Network call."""
    return stripe_api.request("get", f"/v1/webhook_endpoints/{endpoint_id}")["status"]
