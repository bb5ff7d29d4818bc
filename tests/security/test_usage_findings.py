"""`POST /usage` takes nothing as it comes: duplicate keys, deep nesting, implausible days and
quantities are refused with the field named; each token is rate limited (429, Retry-After)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from metering.usage_models import UsageRecord

pytest_plugins = ["tests.metering.usage_fixtures"]
pytestmark = [pytest.mark.django_db]

NOW = datetime(2026, 11, 18, 10, 15, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def acct(usage_accounts):
    return usage_accounts[0].acct_id


def post(api, body: str):
    return api.post("/usage", data=body, content_type="application/json")


def test_a_duplicate_key_is_refused_naming_it(usage_api, acct):
    body = (
        f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": 1, '
        '"quantity": 900}'
    )
    response = post(usage_api, body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "duplicate_key",
        "message": "the key 'quantity' appears twice in one object",
        "field": "quantity",
    }
    assert UsageRecord.objects.count() == 0


def test_a_duplicate_key_inside_a_batch_refuses_the_batch(usage_api, acct):
    good = f'{{"acct_id": {acct}, "period": "2026-11-16", "type": "ST", "quantity": 4}}'
    bad = (
        f'{{"acct_id": {acct}, "acct_id": 1, "period": "2026-11-17", "type": "ST", "quantity": 4}}'
    )
    response = post(usage_api, f"[{good}, {bad}]")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "acct_id"
    assert UsageRecord.objects.count() == 0


@pytest.mark.parametrize("depth", [5, 50, 2_500, 100_000])
def test_deep_nesting_is_400_naming_the_body(usage_api, depth):
    response = post(usage_api, "[" * depth + "]" * depth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_deep"
    assert response.json()["error"]["field"] == "body"


def test_a_value_nested_once_is_an_item_error_not_a_body_error(usage_api, acct):
    body = f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": [[1]]}}'
    response = post(usage_api, body)
    assert response.status_code == 400
    assert response.json()["errors"] == {"quantity": "must be a JSON integer"}


@pytest.mark.parametrize(
    ("period", "reason"),
    [
        ("0001-01-01", "more than 400 days ago"),
        ("2025-10-13", "more than 400 days ago"),
        ("2026-11-19", "in the future"),
    ],
)
def test_an_implausible_day_is_refused_naming_the_period(usage_api, acct, period, reason):
    body = f'{{"acct_id": {acct}, "period": "{period}", "type": "ST", "quantity": 1}}'
    response = post(usage_api, body)
    assert response.status_code == 400
    assert reason in response.json()["errors"]["period"]


def test_the_oldest_day_of_the_window_is_accepted(usage_api, acct):
    oldest = NOW.date() - timedelta(days=400)
    assert oldest == date(2025, 10, 14)
    body = f'{{"acct_id": {acct}, "period": "{oldest}", "type": "ST", "quantity": 1}}'
    assert post(usage_api, body).status_code == 201


@pytest.mark.parametrize("quantity", [2**63 - 1, 10**12 + 1, 10**40])
def test_an_absurd_quantity_is_refused_naming_the_quantity(usage_api, acct, quantity):
    body = f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": {quantity}}}'
    response = post(usage_api, body)
    assert response.status_code == 400
    assert "at most 1,000,000,000,000" in response.json()["errors"]["quantity"]
    assert UsageRecord.objects.count() == 0


def test_the_documented_maximum_quantity_is_accepted(usage_api, acct):
    body = f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": {10**12}}}'
    assert post(usage_api, body).status_code == 201


def test_each_token_is_rate_limited_with_retry_after(usage_api, usage_token, settings, acct):
    settings.USAGE_REQUESTS_PER_MINUTE = 3
    body = f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": 1}}'
    statuses = [post(usage_api, body).status_code for _ in range(3)]
    assert statuses == [201, 200, 200]
    refused = post(usage_api, body)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"  # 10:15:30 -> the window ends at 10:16:00
    assert refused.json()["error"]["code"] == "rate_limited"
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        assert post(usage_api, body).status_code == 200


def test_the_rate_limit_counts_per_token(usage_api, settings, acct):
    from rest_framework.test import APIClient

    from metering.usage_services import producer_token_create

    settings.USAGE_REQUESTS_PER_MINUTE = 1
    body = f'{{"acct_id": {acct}, "period": "2026-11-17", "type": "ST", "quantity": 1}}'
    assert post(usage_api, body).status_code == 201
    assert post(usage_api, body).status_code == 429
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {producer_token_create(name='other')[1]}")
    assert post(other, body).status_code == 200
