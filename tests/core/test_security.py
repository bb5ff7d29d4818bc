"""Security properties the security review (docs/security.md) points to."""

import logging
from io import StringIO

import pytest
import stripe as stripe_lib
from django.conf import settings
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from django_q.conf import Conf

from billing_project.stripe_webhook import webhook_endpoint_url
from billing_project.webhook_intake import webhook_trigger_process
from tests.fixtures.stripe import sign_event

# Every view that accepts a POST without Django's CSRF check, and why.
CSRF_EXEMPT_ALLOWED = {
    "billing_project.views.StripeWebhookView",  # Stripe: signature checked
    "metering.views.StripeEventDestinationView",  # Stripe thin events: signature checked
    "djstripe.views.ProcessWebhookView",  # shadowed by ours at the same path
    "invoices.webhooks.MailgunTrackingView",  # Mailgun: signature checked
}


def _views(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _name(callback) -> str:
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
    return f"{view.__module__}.{view.__qualname__}"


def test_csrf_exemptions_are_the_signed_webhooks_and_the_token_api_only():
    exempt = {
        (_name(callback), route)
        for route, callback in _views(get_resolver())
        if getattr(callback, "csrf_exempt", False)
    }
    unexpected = {
        (name, route)
        for name, route in exempt
        if name not in CSRF_EXEMPT_ALLOWED
        and not name.startswith("metering.api.")  # producer-token API, no cookies
        and not name.startswith("drf_spectacular.")  # read-only schema (GET)
    }
    assert unexpected == set()
    assert any(name == "billing_project.views.StripeWebhookView" for name, _ in exempt)


@pytest.fixture
def endpoint_url(stripe):
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    return webhook_endpoint_url("http://testserver").removeprefix("http://testserver")


@pytest.fixture
def event(stripe):
    customer = stripe_lib.Customer.create(email="ap@lighthouse.example")
    return next(e for e in stripe.store.events if e["data"]["object"]["id"] == customer.id)


@pytest.mark.django_db
@pytest.mark.parametrize(("debug", "status"), [(False, 400), (True, 200)])
def test_djstripe_secret_override_header_works_only_in_debug(
    client, endpoint_url, event, settings, debug, status
):
    settings.DEBUG = debug
    payload, headers = sign_event(event, secret="whsec_attacker_chosen")
    headers["HTTP_X_DJSTRIPE_WEBHOOK_SECRET"] = "whsec_attacker_chosen"
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == status


@pytest.mark.django_db
def test_secrets_never_reach_the_logs_even_when_stripe_fails(
    client, endpoint_url, event, stripe, caplog, monkeypatch
):
    monkeypatch.setattr(stripe_lib, "max_network_retries", 0)
    monkeypatch.setattr(Conf, "SYNC", False)  # the worker's view of it: the task fails
    payload, headers = sign_event(event)
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            endpoint_url, data=payload, content_type="application/json", **headers
        )
        assert response.status_code == 200
        stripe.fail_next(5, status=500)
        with pytest.raises(stripe_lib.APIError):
            webhook_trigger_process(trigger_id=int(response.content))
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert "could not be processed" in logged  # the failure itself is logged
    for secret in (
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_WEBHOOK_SECRET,
        settings.ANYMAIL["MAILGUN_API_KEY"],
        settings.SECRET_KEY,
    ):
        assert secret not in logged
