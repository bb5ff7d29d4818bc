"""Replay from Stripe's events API after missed deliveries."""

from datetime import timedelta
from io import StringIO

import pytest
import stripe as stripe_lib
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from djstripe.models import Customer, Event, WebhookEventTrigger

from billing_project.stripe_webhook import ENABLED_EVENTS, webhook_endpoint_url
from tests.fixtures.stripe import sign_event

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


@pytest.fixture
def endpoint(stripe):
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())


def _since() -> str:
    return f"{timezone.now() - timedelta(days=1):%Y-%m-%d}"


def test_missed_events_are_processed_once_and_a_second_replay_does_nothing(
    client, endpoint, stripe, django_capture_on_commit_callbacks
):
    first = stripe_lib.Customer.create(email="ap@westbrook.example")
    stripe_lib.Customer.modify(first.id, name="Westbrook Media")  # customer.updated: not ours
    stripe_lib.Customer.create(email="ap@union.example")
    out = StringIO()
    call_command("stripe_events_replay", since=_since(), stdout=out)
    # The endpoint listens to invoice and subscription events only: customers are not replayed.
    assert "0 queued" in out.getvalue()

    product = stripe_lib.Product.create(name="Account Charges")
    price = stripe_lib.Price.create(
        product=product.id, currency="usd", unit_amount=1000, recurring={"interval": "month"}
    )
    subscription = stripe_lib.Subscription.create(customer=first.id, items=[{"price": price.id}])
    stripe_lib.Subscription.modify(subscription.id, metadata={"acct_id": "1020"})
    wanted = [e["id"] for e in stripe.store.events if e["type"] in ENABLED_EVENTS]
    assert len(wanted) >= 3  # invoice finalized and paid, subscription updated
    delivered = next(e for e in stripe.store.events if e["id"] == wanted[0])
    payload, headers = sign_event(delivered)
    url = webhook_endpoint_url("http://testserver").removeprefix("http://testserver")
    response = client.post(url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 200

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # dj-stripe's mirror runs too
        call_command("stripe_events_replay", since=_since(), stdout=out)
    assert f"{len(wanted) - 1} queued, 1 already held" in out.getvalue()
    assert set(Event.objects.values_list("id", flat=True)) >= set(wanted)
    triggers = WebhookEventTrigger.objects.count()

    out = StringIO()
    call_command("stripe_events_replay", since=_since(), stdout=out)
    assert "0 queued" in out.getvalue()
    assert WebhookEventTrigger.objects.count() == triggers
    assert Customer.objects.filter(id=first.id).exists()


def test_dry_run_queues_nothing(endpoint, stripe):
    customer = stripe_lib.Customer.create(email="ap@pinecrest.example")
    product = stripe_lib.Product.create(name="Account Charges")
    price = stripe_lib.Price.create(
        product=product.id, currency="usd", unit_amount=1000, recurring={"interval": "month"}
    )
    stripe_lib.Subscription.create(customer=customer.id, items=[{"price": price.id}])
    out = StringIO()
    call_command("stripe_events_replay", since=_since(), dry_run=True, stdout=out)
    assert "would queue" in out.getvalue()
    assert not WebhookEventTrigger.objects.exists()


@pytest.mark.parametrize(
    ("since", "words"),
    [("2026-13-01", "YYYY-MM-DD"), ("2020-01-01", "more than 30 days ago")],
)
def test_bad_since_is_refused(endpoint, since, words):
    with pytest.raises(CommandError, match=words):
        call_command("stripe_events_replay", since=since, stdout=StringIO())
