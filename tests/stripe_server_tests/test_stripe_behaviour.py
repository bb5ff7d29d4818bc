"""Where the server used to differ from Stripe: subscription line metadata, invoices embedding
only their first lines, test clocks that advance asynchronously, the rate limit."""

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
import stripe


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    return stripe_server


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


JAN_1 = ts(2026, 1, 1)


def clock_customer(frozen_time=JAN_1):
    clock = stripe.test_helpers.TestClock.create(frozen_time=frozen_time)
    return clock, stripe.Customer.create(email="ap@northwind.example", test_clock=clock.id)


def monthly_price(amount=5_000, **price_params):
    product = stripe.Product.create(name="Platform")
    return stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=amount,
        recurring={"interval": "month"},
        **price_params,
    )


def test_subscription_line_metadata_is_the_subscriptions_not_the_items_or_prices(server):
    _, cust = clock_customer()
    price = monthly_price(metadata={"from": "price"})
    subscription = stripe.Subscription.create(
        customer=cust.id,
        items=[{"price": price.id, "metadata": {"from": "item"}}],
        metadata={"acct_id": "A-17"},
    )

    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)

    [line] = invoice.lines.data
    assert line.metadata.to_dict() == {"acct_id": "A-17"}


def test_subscription_line_metadata_follows_the_subscriptions_current_metadata(server):
    _, cust = clock_customer()
    subscription = stripe.Subscription.create(
        customer=cust.id, items=[{"price": monthly_price().id}], metadata={"acct_id": "A-17"}
    )
    stripe.Subscription.modify(subscription.id, metadata={"cohort": "2"})

    [line] = stripe.Invoice.list_lines(subscription.latest_invoice).data

    assert line.metadata.to_dict() == {"acct_id": "A-17", "cohort": "2"}


def test_invoice_item_lines_keep_the_items_metadata(server):
    _, cust = clock_customer()
    invoice = stripe.Invoice.create(customer=cust.id)
    stripe.InvoiceItem.create(
        customer=cust.id, amount=100, currency="usd", invoice=invoice.id, metadata={"job": "9"}
    )

    [line] = stripe.Invoice.retrieve(invoice.id).lines.data

    assert line.metadata.to_dict() == {"job": "9"}


def invoice_with_lines(count):
    _, cust = clock_customer()
    invoice = stripe.Invoice.create(customer=cust.id)
    for index in range(count):
        stripe.InvoiceItem.create(
            customer=cust.id,
            amount=100 + index,
            currency="usd",
            invoice=invoice.id,
            description=f"job {index}",
        )
    return invoice


def test_an_invoice_embeds_its_first_ten_lines_and_says_there_are_more(server):
    invoice = stripe.Invoice.retrieve(invoice_with_lines(12).id)

    assert len(invoice.lines.data) == 10
    assert invoice.lines.has_more is True
    assert invoice.lines.url == f"/v1/invoices/{invoice.id}/lines"
    assert "total_count" not in invoice.lines
    assert [line.description for line in invoice.lines.data] == [f"job {i}" for i in range(10)]
    # The totals still count every line.
    assert invoice.subtotal == sum(100 + i for i in range(12))


def test_the_rest_of_the_lines_come_from_the_lines_endpoint(server):
    invoice = invoice_with_lines(12)

    first = stripe.Invoice.list_lines(invoice.id, limit=10)
    rest = stripe.Invoice.list_lines(invoice.id, limit=10, starting_after=first.data[-1].id)
    every = [line.description for line in stripe.Invoice.list_lines(invoice.id).auto_paging_iter()]

    assert first.has_more is True
    assert [line.description for line in rest.data] == ["job 10", "job 11"]
    assert rest.has_more is False
    assert every == [f"job {i}" for i in range(12)]


def test_event_snapshots_embed_at_most_ten_lines(server):
    invoice = invoice_with_lines(11)
    stripe.Invoice.finalize_invoice(invoice.id)

    [finalized] = [e for e in server.store.events if e["type"] == "invoice.finalized"]

    assert len(finalized["data"]["object"]["lines"]["data"]) == 10
    assert finalized["data"]["object"]["lines"]["has_more"] is True
    assert len(server.store.get("invoice", invoice.id)["lines"]["data"]) == 11


def test_an_invoice_with_ten_lines_has_no_more(server):
    invoice = stripe.Invoice.retrieve(invoice_with_lines(10).id)
    assert len(invoice.lines.data) == 10
    assert invoice.lines.has_more is False


def test_advancing_a_clock_answers_advancing_and_the_clock_is_ready_once_done(server):
    clock, _ = clock_customer()

    answer = stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1 + 86_400)

    assert answer.status == "advancing"
    assert answer.status_details.advancing.target_frozen_time == JAN_1 + 86_400
    later = stripe.test_helpers.TestClock.retrieve(clock.id)
    assert later.status == "ready"
    assert later.frozen_time == JAN_1 + 86_400
    types = [e["type"] for e in server.store.events if e["data"]["object"]["id"] == clock.id]
    assert types[-2:] == ["test_helpers.test_clock.advancing", "test_helpers.test_clock.ready"]


def test_a_clock_advanced_asynchronously_is_advancing_until_its_work_is_done(server):
    server.test_clock_advance_delay = 0.3
    clock, cust = clock_customer()
    subscription = stripe.Subscription.create(
        customer=cust.id, items=[{"price": monthly_price().id}]
    )

    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 2))

    assert stripe.test_helpers.TestClock.retrieve(clock.id).status == "advancing"
    with pytest.raises(stripe.InvalidRequestError):
        stripe.test_helpers.TestClock.advance(clock.id, frozen_time=ts(2026, 2, 3))
    deadline = time.monotonic() + 10
    while stripe.test_helpers.TestClock.retrieve(clock.id).status != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    invoices = stripe.Invoice.list(subscription=subscription.id).data
    assert {i.billing_reason for i in invoices} == {"subscription_create", "subscription_cycle"}


def raw_get(server, path):
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": "Bearer sk_test_RateLimit00000000000000"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_the_rate_limit_is_off_by_default(server):
    assert server.rate_limit_per_second is None
    statuses = {raw_get(server, "/v1/customers")[0] for _ in range(40)}
    assert statuses == {200}


def test_requests_over_the_test_mode_rate_limit_get_stripes_429(server):
    server.rate_limit_per_second = 25
    answers = [raw_get(server, "/v1/customers") for _ in range(30)]

    statuses = [status for status, _, _ in answers]
    assert statuses[:25] == [200] * 25
    assert 429 in statuses[25:]
    _, headers, body = next(a for a in answers if a[0] == 429)
    assert headers["Retry-After"] == "1"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "rate_limit"
    assert "rate limit" in body["error"]["message"]


def test_the_limit_is_per_second(server):
    server.rate_limit_per_second = 5
    assert [raw_get(server, "/v1/customers")[0] for _ in range(6)][-1] == 429
    time.sleep(1.05)
    assert raw_get(server, "/v1/customers")[0] == 200


def test_stripe_python_sees_a_rate_limit_error(server):
    server.rate_limit_per_second = 1
    stripe.Customer.list()
    with pytest.raises(stripe.RateLimitError) as caught:
        stripe.Customer.list(max_network_retries=0)
    assert caught.value.http_status == 429
    assert caught.value.json_body["error"]["code"] == "rate_limit"


def test_an_expanded_invoice_embeds_at_most_ten_lines_too(server):
    invoice = invoice_with_lines(11)
    item_id = server.store.get("invoice", invoice.id)["lines"]["data"][0]["parent"][
        "invoice_item_details"
    ]["invoice_item"]

    item = stripe.InvoiceItem.retrieve(item_id, expand=["invoice"])

    assert item.invoice.id == invoice.id
    assert len(item.invoice.lines.data) == 10
    assert item.invoice.lines.has_more is True
