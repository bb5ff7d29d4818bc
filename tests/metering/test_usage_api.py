"""`POST /usage`: per-item results, idempotency on the key, corrections, request errors."""

import json

import pytest
from rest_framework.test import APIClient

from metering.usage_models import ProducerToken, UsageRecord, UsageRevision
from metering.usage_services import producer_token_revoke
from tests.metering.usage_helpers import item, post

pytest_plugins = ["tests.metering.usage_fixtures"]

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


def test_a_single_item_is_created_once_and_then_answered_as_duplicate(usage_api, usage_accounts):
    body = item(usage_accounts[0].acct_id, 1234)
    first = post(usage_api, body)
    assert first.status_code == 201
    key = f"{usage_accounts[0].acct_id}:{body['period']}:ST"
    assert first.json() == {
        "index": 0,
        "status": "created",
        "key": key,
        "quantity": 1234,
        "revision": 1,
    }
    again = post(usage_api, body)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    record = UsageRecord.objects.get()
    assert (record.quantity, record.revision) == (1234, 1)
    revision = UsageRevision.objects.get()
    assert (revision.delta, revision.identifier, revision.state) == (1234, f"{key}:1", "pending")


def test_the_same_batch_twice_is_all_duplicate(usage_api, usage_accounts):
    batch = [
        item(a.acct_id, 100 + n, usage_type=t)
        for n, a in enumerate(usage_accounts)
        for t in ("ST", "RM", "CV")
    ]
    first = post(usage_api, batch)
    assert first.status_code == 200
    assert first.json()["counts"] == {
        "created": 15,
        "duplicate": 0,
        "corrected": 0,
        "conflict": 0,
        "invalid": 0,
    }
    second = post(usage_api, batch).json()
    assert [r["status"] for r in second["results"]] == ["duplicate"] * 15
    assert UsageRecord.objects.count() == 15
    assert UsageRevision.objects.count() == 15


def test_one_changed_item_is_a_conflict_and_the_rest_duplicates(usage_api, usage_accounts):
    batch = [item(a.acct_id, 500) for a in usage_accounts]
    post(usage_api, batch)
    batch[2] = {**batch[2], "quantity": 501}
    answer = post(usage_api, batch).json()
    assert [r["status"] for r in answer["results"]] == [
        "duplicate",
        "duplicate",
        "conflict",
        "duplicate",
        "duplicate",
    ]
    conflict = answer["results"][2]
    assert (conflict["quantity"], conflict["stored_quantity"]) == (501, 500)
    assert "correction" in conflict["errors"]["quantity"]
    assert UsageRecord.objects.get(account=usage_accounts[2]).quantity == 500


def test_a_single_conflicting_item_answers_409(usage_api, usage_accounts):
    post(usage_api, item(usage_accounts[0].acct_id, 10))
    response = post(usage_api, item(usage_accounts[0].acct_id, 11))
    assert response.status_code == 409
    assert response.json()["status"] == "conflict"
    assert response.json()["stored_quantity"] == 10


def test_a_correction_stores_a_revision_that_sends_only_the_difference(usage_api, usage_accounts):
    acct = usage_accounts[0].acct_id
    post(usage_api, item(acct, 1000))
    raised = post(usage_api, item(acct, 1500, correction=True))
    assert raised.status_code == 200
    assert raised.json()["status"] == "corrected"
    assert raised.json()["revision"] == 2
    lowered = post(usage_api, item(acct, 1200, correction=True)).json()
    assert lowered["revision"] == 3
    repeated = post(usage_api, item(acct, 1200, correction=True)).json()
    assert repeated["status"] == "duplicate"
    record = UsageRecord.objects.get()
    assert (record.quantity, record.revision) == (1200, 3)
    revisions = list(record.revisions.order_by("revision").values_list("revision", "delta"))
    assert revisions == [(1, 1000), (2, 500), (3, -300)]
    assert sum(delta for _, delta in revisions) == record.quantity


def test_a_correction_of_an_unknown_key_creates_it(usage_api, usage_accounts):
    response = post(usage_api, item(usage_accounts[0].acct_id, 7, correction=True))
    assert response.status_code == 201


def test_a_bad_item_does_not_sink_the_good_ones(usage_api, usage_accounts):
    batch = [
        item(usage_accounts[0].acct_id, 1),
        item(999_999_1, 1),
        {**item(usage_accounts[1].acct_id, 1), "type": "XX"},
        {**item(usage_accounts[2].acct_id, 1), "period": "2026-01"},
        item(usage_accounts[3].acct_id, -5),
        item(usage_accounts[4].acct_id, 2.5),
        item(usage_accounts[4].acct_id, 3, usage_type="CV"),
    ]
    answer = post(usage_api, batch).json()
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["created"] + ["invalid"] * 5 + ["created"]
    errors = [r.get("errors", {}) for r in answer["results"]]
    assert "no billing account has acct_id 9999991" in errors[1]["acct_id"]
    assert "must be one of ST, RM, CV" in errors[2]["type"]
    assert "not a month" in errors[3]["period"]
    assert "must not be negative" in errors[4]["quantity"]
    assert "whole number" in errors[5]["quantity"]
    assert UsageRecord.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"acct_id": 987654}, "acct_id", "no billing account"),
        ({"type": "st"}, "type", "must be one of ST, RM, CV"),
        ({"period": "2026-01"}, "period", "not a month"),
        ({"period": "2026-01-15T00:00:00Z"}, "period", "not a timestamp"),
        ({"period": "2026-02-30"}, "period", "not a calendar day"),
        ({"period": "2999-01-01"}, "period", "in the future"),
        ({"quantity": -1}, "quantity", "must not be negative"),
        ({"quantity": 1.5}, "quantity", "whole number"),
        ({"quantity": "12"}, "quantity", "JSON integer"),
        ({"quantity": 2**64}, "quantity", "must be at most"),
        ({"correction": "yes"}, "correction", "true or false"),
        ({"qty": 1}, "item", "unknown field(s): qty"),
    ],
)
def test_a_single_invalid_item_answers_400_naming_the_field(
    usage_api, usage_accounts, change, field, words
):
    response = post(usage_api, {**item(usage_accounts[0].acct_id), **change})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid"
    assert words in body["errors"][field]
    assert not UsageRecord.objects.exists()


def test_missing_fields_are_each_named(usage_api):
    body = post(usage_api, {}).json()
    assert set(body["errors"]) == {"acct_id", "period", "type", "quantity"}


def test_malformed_json_is_400(usage_api):
    response = usage_api.post("/usage", data='{"acct_id": 1,', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(("body", "code"), [("[]", "empty_batch"), ("42", "invalid_body")])
def test_an_empty_list_or_a_scalar_is_400(usage_api, body, code):
    response = usage_api.post("/usage", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_1001_items_are_413_and_nothing_is_stored(usage_api, usage_accounts):
    batch = [item(usage_accounts[0].acct_id, n, days_ago=1 + n % 30) for n in range(1001)]
    response = post(usage_api, batch)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_many_items",
        "message": "at most 1,000 items per request (got 1,001)",
    }
    assert not UsageRecord.objects.exists()


def test_a_key_twice_in_one_batch_is_invalid_the_second_time(usage_api, usage_accounts):
    answer = post(
        usage_api, [item(usage_accounts[0].acct_id, 5), item(usage_accounts[0].acct_id, 5)]
    ).json()
    assert [r["status"] for r in answer["results"]] == ["created", "invalid"]
    assert "first at index 0" in answer["results"][1]["errors"]["key"]


def test_non_json_content_is_415(usage_api):
    response = usage_api.post(
        "/usage", data="acct_id=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert "error" in response.json()


def test_no_token_is_401(usage_accounts):
    response = post(APIClient(), item(usage_accounts[0].acct_id))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="usage"'
    assert "Bearer" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "header", ["Bearer mtp_not-a-real-token", "Token abc", "Bearer", "Basic dXNlcjpwYXNz"]
)
def test_a_bad_token_is_401(usage_accounts, header):
    response = post(APIClient(), item(usage_accounts[0].acct_id), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not UsageRecord.objects.exists()


def test_a_revoked_token_is_401(usage_api, usage_accounts, usage_token):
    token = ProducerToken.objects.get()
    producer_token_revoke(token_id=token.pk)
    response = post(usage_api, item(usage_accounts[0].acct_id))
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_tokens_are_stored_only_as_sha256(usage_token):
    import hashlib

    token = ProducerToken.objects.get()
    assert token.token_sha256 == hashlib.sha256(usage_token.encode()).hexdigest()
    assert usage_token not in json.dumps(list(ProducerToken.objects.values()), default=str)


def test_a_body_over_the_upload_limit_is_413_not_a_server_error(usage_api):
    body = "[" + ",".join(['{"acct_id": 1, "period": "2026-01-01", "type": "ST"}'] * 60_000) + "]"
    response = usage_api.post("/usage", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
