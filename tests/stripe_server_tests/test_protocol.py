"""The HTTP protocol of the Stripe-compatible server: keys, errors, idempotency, faults."""

import json
import time
import urllib.error
import urllib.request

import pytest
import stripe

from tests.stripe_server import StripeServer
from tests.stripe_server.forms import decode_form


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def raw(server, method, path, *, key="sk_test_Abc000000000000000000000000", body="", headers=None):
    request = urllib.request.Request(
        server.url + path,
        data=body.encode() if method == "POST" else None,
        method=method,
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.mark.parametrize(
    "key", ["sk_test_Abc000000000000000000000000", "rk_test_Abc000000000000000000000000"]
)
def test_test_mode_secret_and_restricted_keys_are_accepted(server, key):
    status, _, body = raw(server, "GET", "/v1/account", key=key)
    assert status == 200
    assert body["object"] == "account"


@pytest.mark.parametrize("key", ["sk_live_Abc000000000000000000000000", "pk_test_Abc", "whatever"])
def test_other_keys_get_401_like_stripe(server, key):
    status, _, body = raw(server, "GET", "/v1/account", key=key)
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("Invalid API Key provided")
    assert key not in body["error"]["message"] or len(key) < 12


def test_missing_key_gets_401(server):
    request = urllib.request.Request(server.url + "/v1/customers")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 401


def test_unknown_url_and_unknown_object_use_stripes_error_shape(server):
    status, _, body = raw(server, "GET", "/v1/nonsense")
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL")
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe.Customer.retrieve("cus_missing")
    assert error.value.http_status == 404
    assert error.value.code == "resource_missing"


def test_same_idempotency_key_and_params_replays_the_first_answer(server):
    first = stripe.Customer.create(email="a@example.com", idempotency_key="create-a")
    again = stripe.Customer.create(email="a@example.com", idempotency_key="create-a")
    assert again.id == first.id
    assert len(server.store.all("customer")) == 1
    assert len([e for e in server.store.events if e["type"] == "customer.created"]) == 1


def test_same_idempotency_key_with_other_params_is_an_idempotency_error(server):
    stripe.Customer.create(email="a@example.com", idempotency_key="create-a")
    with pytest.raises(stripe.IdempotencyError):
        stripe.Customer.create(email="b@example.com", idempotency_key="create-a")
    assert len(server.store.all("customer")) == 1


def test_replayed_answer_is_marked(server):
    body = "email=a%40example.com"
    _, first_headers, first = raw(
        server, "POST", "/v1/customers", body=body, headers={"Idempotency-Key": "k1"}
    )
    _, headers, again = raw(
        server, "POST", "/v1/customers", body=body, headers={"Idempotency-Key": "k1"}
    )
    assert again == first
    assert headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first_headers


def test_fail_next_answers_500_then_recovers(server):
    server.fail_next(2, status=500, path="/v1/customers")
    assert raw(server, "GET", "/v1/customers")[0] == 500
    assert raw(server, "GET", "/v1/account")[0] == 200  # other paths unaffected
    assert raw(server, "GET", "/v1/customers")[0] == 500
    assert raw(server, "GET", "/v1/customers")[0] == 200


def test_rate_limit_fault_carries_retry_after(server):
    server.fail_next(1, status=429, retry_after=7)
    status, headers, body = raw(server, "GET", "/v1/account")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body["error"]["type"] == "rate_limit"


def test_slow_fault_delays_the_answer(server):
    server.fail_next(1, status=500, delay=0.3)
    started = time.monotonic()
    assert raw(server, "GET", "/v1/account")[0] == 500
    assert time.monotonic() - started >= 0.3


def test_stripe_python_sees_an_injected_error_after_its_own_retries(server):
    server.fail_next(1 + stripe.max_network_retries, status=500, path="/v1/customers")
    with pytest.raises(stripe.APIError):
        stripe.Customer.list()
    assert stripe.Customer.list().data == []


def test_list_pagination_with_limit_and_starting_after(server):
    created = [stripe.Customer.create(email=f"c{i}@example.com").id for i in range(5)]
    page = stripe.Customer.list(limit=2)
    assert [c.id for c in page.data] == created[::-1][:2]
    assert page.has_more is True
    rest = stripe.Customer.list(limit=10, starting_after=page.data[-1].id)
    assert [c.id for c in rest.data] == created[::-1][2:]
    assert rest.has_more is False
    assert [c.id for c in stripe.Customer.list(limit=2).auto_paging_iter()] == created[::-1]
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe.Customer.list(limit=0)
    assert error.value.param == "limit"


def test_expand_replaces_ids_in_the_answer_only(server):
    customer = stripe.Customer.create(email="a@example.com")
    expanded = stripe.Customer.retrieve(customer.id, expand=["sources"])
    assert expanded.sources.object == "list"
    plain = server.store.get("customer", customer.id)
    assert "sources" not in plain


def test_nested_form_encoding_is_decoded():
    body = "items[0][price]=p1&items[0][metadata][k]=v&items[1][price]=p2&expand[]=a&expand[]=b&x="
    assert decode_form(body) == {
        "items": [{"price": "p1", "metadata": {"k": "v"}}, {"price": "p2"}],
        "expand": ["a", "b"],
        "x": "",
    }


def test_a_server_starts_on_a_free_port_and_stops_cleanly():
    with StripeServer() as other:
        assert other.port > 0
        status, _, _ = raw(other, "GET", "/v1/account")
        assert status == 200
    with pytest.raises(urllib.error.URLError):
        raw(other, "GET", "/v1/account")
