"""The Stripe boundary refuses a call made inside a database transaction of the app's own."""

import pytest
from django.db import transaction

from billing_project import stripe_api

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


def test_a_call_outside_any_transaction_reaches_stripe(stripe):
    customer = stripe_api.request("post", "/v1/customers", email="ops@customer.example")

    assert stripe_api.retrieve(f"/v1/customers/{customer['id']}")["email"] == (
        "ops@customer.example"
    )


def test_a_call_inside_a_transaction_is_refused_before_it_is_sent(stripe):
    refused = pytest.raises(stripe_api.StripeCallInTransaction, match="POST /v1/customers")
    with refused, transaction.atomic():
        stripe_api.request("post", "/v1/customers", email="ops@customer.example")

    assert stripe_api.request("get", "/v1/customers")["data"] == []


def test_a_transaction_on_the_legacy_database_counts_too(stripe):
    refused = pytest.raises(stripe_api.StripeCallInTransaction, match="legacy")
    with refused, transaction.atomic(using="legacy"):
        stripe_api.request("get", "/v1/customers")


def test_production_logs_the_call_instead(stripe, settings, caplog):
    settings.STRIPE_CALLS_IN_TRANSACTION = "log"
    with transaction.atomic():
        stripe_api.request("get", "/v1/customers")

    assert "GET /v1/customers inside a database transaction" in caplog.text
