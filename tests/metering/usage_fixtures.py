"""Fixtures of the usage tests (loaded with `pytest_plugins`): a producer token, an API client
holding it, and billing accounts."""

import pytest
from rest_framework.test import APIClient

from metering.usage_services import producer_token_create
from tests.factories import BillingAccountFactory


@pytest.fixture
def usage_token(db):
    _, raw = producer_token_create(name="redshift-exporter")
    return raw


@pytest.fixture
def usage_api(usage_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {usage_token}")
    return client


@pytest.fixture
def usage_accounts(db):
    return [BillingAccountFactory(acct_id=5000 + n) for n in range(5)]
