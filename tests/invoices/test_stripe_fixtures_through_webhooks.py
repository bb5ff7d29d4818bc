"""Stripe's own example objects (`fixtures3.json`, the current API shape) through our webhook
handling and delivery: every object our endpoint can receive is handled without an error."""

import copy
import json
from pathlib import Path

import pytest
from djstripe.models import Event, WebhookEventTrigger

from billing_project.models import StripeMirror
from billing_project.stripe_mirror import stripe_mirror_update
from invoices.models import InvoiceDelivery
from tests.factories import BillingAccountFactory
from tests.fixtures.stripe import sign_event

pytestmark = pytest.mark.django_db

FIXTURES = json.loads((Path(__file__).parents[1] / "stripe_server" / "fixtures3.json").read_text())[
    "resources"
]
# Event type -> the fixture object it carries, for the events our endpoint may receive.
EVENTS = {
    "customer.created": "customer",
    "customer.updated": "customer",
    "customer.discount.created": "discount",
    "invoice.finalized": "invoice",
    "invoice.paid": "invoice",
    "invoice.payment_failed": "invoice",
    "invoice.updated": "invoice",
    "customer.subscription.updated": "subscription",
    "customer.subscription.deleted": "subscription",
    "customer.subscription.paused": "subscription",
    "customer.subscription.trial_will_end": "subscription",
    "credit_note.created": "credit_note",
}


def fixture_event(event_type: str, obj: dict) -> dict:
    event = copy.deepcopy(FIXTURES["event"])
    event.update(
        id=f"evt_fixture_{event_type.replace('.', '_')}",
        type=event_type,
        data={"object": obj},
        api_version="2026-08-26.dahlia",
        livemode=False,
    )
    return event


@pytest.fixture
def seeded(server):
    """Stripe holds the fixture objects (dj-stripe's mirror re-fetches them)."""
    objects = {kind: copy.deepcopy(FIXTURES[kind]) for kind in set(EVENTS.values())}
    # An invoice.finalized event carries a finalized invoice. The fixture still has the
    # `subscription` field this API version moved to `parent.subscription_details`.
    objects["invoice"].pop("subscription", None)
    objects["invoice"].update(status="open", number="7FE1103-0001")
    objects["invoice"]["status_transitions"]["finalized_at"] = objects["invoice"]["created"]
    for kind, obj in objects.items():
        server.store.put(kind, obj)
    return objects


@pytest.mark.parametrize("event_type", list(EVENTS))
def test_each_fixture_object_is_handled_without_an_error(
    client,
    server,
    endpoint_url,
    seeded,
    event_type,
    s3_bucket,
    mailgun,
    django_capture_on_commit_callbacks,
):
    BillingAccountFactory(
        acct_id=1099, stripe_customer_id=seeded["customer"]["id"], billing_owner="parallel"
    )
    event = fixture_event(event_type, seeded[EVENTS[event_type]])
    payload, headers = sign_event(event)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            endpoint_url, data=payload, content_type="application/json", **headers
        )
    assert response.status_code == 200, response.content
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.processed, trigger.exception) == (True, "")
    assert Event.objects.filter(id=event["id"], type=event_type).exists()
    mirror = StripeMirror.objects.get(event_id=event["id"])
    if mirror.state != StripeMirror.State.DONE:
        # dj-stripe could not copy it: recorded and retried, never in the way of our work.
        assert mirror.last_error
    if EVENTS[event_type] == "invoice":
        delivery = InvoiceDelivery.objects.get(stripe_invoice_id=seeded["invoice"]["id"])
        assert delivery.state in (InvoiceDelivery.State.SENT, InvoiceDelivery.State.NOT_OURS)
        assert delivery.last_error == "", delivery.last_error
    assert stripe_mirror_update(event_id=event["id"]) in ("done", "pending", "failed")
