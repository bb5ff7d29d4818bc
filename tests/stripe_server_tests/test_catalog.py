"""Products, prices and features on the Stripe-compatible server, driven by stripe-python."""

from decimal import Decimal

import pytest
import stripe

FONT_TIERS = [
    {"up_to": 5, "unit_amount": 700},
    {"up_to": 10, "unit_amount_decimal": "650"},
    {"up_to": "inf", "unit_amount": 600, "flat_amount": 100},
]


@pytest.fixture
def server(stripe):
    return stripe


@pytest.fixture
def product(server):
    return stripe.Product.create(name="Webfonts", metadata={"plan": "fonts"})


def events_of(server, event_type):
    return [e for e in server.store.events if e["type"] == event_type]


def invalid(call, *args, **params):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call(*args, **params)
    return caught.value


def test_product_create_retrieve_update_and_events(server, product):
    assert product.object == "product"
    assert product.id.startswith("prod_")
    assert product.active is True
    assert product.default_price is None
    assert stripe.Product.retrieve(product.id).name == "Webfonts"

    updated = stripe.Product.modify(product.id, name="Webfonts Pro", metadata={"plan": ""})
    assert updated.name == "Webfonts Pro"
    assert updated.metadata.to_dict() == {}
    assert [e["data"]["object"]["id"] for e in events_of(server, "product.created")] == [product.id]
    (event,) = events_of(server, "product.updated")
    assert event["data"]["previous_attributes"] == {
        "name": "Webfonts",
        "metadata": {"plan": "fonts"},
    }


def test_product_requires_a_name(server):
    error = invalid(stripe.Product.create, description="no name")
    assert error.http_status == 400
    assert error.param == "name"
    assert error.user_message == "Missing required param: name."


def test_unknown_product_is_404_with_resource_missing(server):
    error = invalid(stripe.Product.retrieve, "prod_missing")
    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert error.user_message == "No such product: 'prod_missing'"


def test_product_list_paginates_with_limit_and_starting_after(server):
    created = [stripe.Product.create(name=f"Product {n}").id for n in range(5)]
    first = stripe.Product.list(limit=2)
    assert len(first.data) == 2
    assert first.has_more is True
    second = stripe.Product.list(limit=2, starting_after=first.data[-1].id)
    third = stripe.Product.list(limit=2, starting_after=second.data[-1].id)
    assert second.has_more is True
    assert third.has_more is False
    seen = [p.id for page in (first, second, third) for p in page.data]
    assert seen == list(reversed(created))
    assert [p.id for p in stripe.Product.list(limit=2).auto_paging_iter()] == seen


def test_product_list_filters_active(server):
    kept = stripe.Product.create(name="Kept")
    stripe.Product.create(name="Retired", active=False)
    assert [p.id for p in stripe.Product.list(active=True).data] == [kept.id]


def test_product_with_prices_cannot_be_deleted(server, product):
    stripe.Price.create(product=product.id, currency="usd", unit_amount=500)
    error = invalid(stripe.Product.delete, product.id)
    assert error.http_status == 400
    assert "cannot be deleted" in error.user_message
    lonely = stripe.Product.create(name="No prices")
    assert stripe.Product.delete(lonely.id).deleted is True
    assert events_of(server, "product.deleted")[0]["data"]["object"]["id"] == lonely.id


def test_product_default_price_data_creates_the_default_price(server):
    product = stripe.Product.create(
        name="Seat",
        default_price_data={
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
        },
    )
    price = stripe.Price.retrieve(product.default_price)
    assert price.product == product.id
    assert price.unit_amount == 1200
    assert price.type == "recurring"
    assert events_of(server, "product.created")[0]["data"]["object"]["default_price"] == price.id


def test_product_default_price_must_belong_to_the_product(server, product):
    other = stripe.Product.create(name="Other")
    price = stripe.Price.create(product=other.id, currency="usd", unit_amount=100)
    error = invalid(stripe.Product.modify, product.id, default_price=price.id)
    assert error.param == "default_price"


def test_entitlement_features_attach_to_products(server, product):
    feature = stripe.entitlements.Feature.create(name="Variable fonts", lookup_key="variable")
    assert feature.id.startswith("feat_")
    duplicate = invalid(stripe.entitlements.Feature.create, name="Again", lookup_key="variable")
    assert duplicate.param == "lookup_key"

    attached = stripe.Product.create_feature(product.id, entitlement_feature=feature.id)
    assert attached.object == "product_feature"
    assert attached.entitlement_feature.lookup_key == "variable"
    listed = stripe.Product.list_features(product.id)
    assert [f.id for f in listed.data] == [attached.id]
    again = invalid(stripe.Product.create_feature, product.id, entitlement_feature=feature.id)
    assert again.param == "entitlement_feature"
    unknown = invalid(stripe.Product.create_feature, product.id, entitlement_feature="feat_nope")
    assert (unknown.http_status, unknown.code) == (400, "resource_missing")

    assert stripe.Product.delete_feature(product.id, attached.id).deleted is True
    assert stripe.Product.list_features(product.id).data == []
    assert [f.id for f in stripe.entitlements.Feature.list(lookup_key="variable").data] == [
        feature.id
    ]


def test_per_unit_price_with_integer_and_decimal_amounts(server, product):
    whole = stripe.Price.create(product=product.id, currency="USD", unit_amount=2000)
    assert (whole.unit_amount, whole.unit_amount_decimal) == (2000, Decimal("2000"))
    assert whole.currency == "usd"
    assert whole.type == "one_time"
    assert whole.billing_scheme == "per_unit"
    assert whole.recurring is None

    fraction = stripe.Price.create(product=product.id, currency="usd", unit_amount_decimal="0.05")
    assert (fraction.unit_amount, fraction.unit_amount_decimal) == (None, Decimal("0.05"))
    integral = stripe.Price.create(product=product.id, currency="usd", unit_amount_decimal="500")
    assert (integral.unit_amount, integral.unit_amount_decimal) == (500, Decimal("500"))
    assert [
        server.store.get("price", p.id)["unit_amount_decimal"] for p in (whole, fraction, integral)
    ] == ["2000", "0.05", "500"]
    assert "tiers" not in whole


def test_unit_amount_and_unit_amount_decimal_are_exclusive(server, product):
    error = invalid(
        stripe.Price.create,
        product=product.id,
        currency="usd",
        unit_amount=5,
        unit_amount_decimal="5",
    )
    assert error.http_status == 400
    assert error.param == "unit_amount_decimal"
    assert error.json_body["error"]["type"] == "invalid_request_error"
    assert error.user_message == (
        "You may only specify one of these parameters: unit_amount, unit_amount_decimal."
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"billing_scheme": "tiered", "tiers_mode": "volume"}, "tiers"),
        ({"billing_scheme": "tiered", "tiers": FONT_TIERS}, "tiers_mode"),
        (
            {"billing_scheme": "tiered", "tiers_mode": "stepped", "tiers": FONT_TIERS},
            "tiers_mode",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": 5, "unit_amount": 1}, {"up_to": 10, "unit_amount": 1}],
            },
            "tiers[1][up_to]",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": 5, "unit_amount": 1}, {"up_to": 5, "unit_amount": 1}],
            },
            "tiers[1][up_to]",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": "inf", "unit_amount": 1, "unit_amount_decimal": "1"}],
            },
            "tiers[0][unit_amount_decimal]",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "unit_amount": 5,
                "tiers": FONT_TIERS,
            },
            "unit_amount",
        ),
        ({"tiers_mode": "volume", "unit_amount": 5}, "tiers_mode"),
        ({}, "unit_amount"),
        ({"unit_amount": -1}, "unit_amount"),
        ({"unit_amount_decimal": "0.0000000000001"}, "unit_amount_decimal"),
        ({"unit_amount": 5, "recurring": {"interval": "fortnight"}}, "recurring[interval]"),
        (
            {"unit_amount": 5, "recurring": {"interval": "month", "interval_count": 13}},
            "recurring[interval_count]",
        ),
        (
            {"unit_amount": 5, "recurring": {"interval": "month", "aggregate_usage": "sum"}},
            "recurring[aggregate_usage]",
        ),
        (
            {"unit_amount": 5, "recurring": {"interval": "month", "usage_type": "metered"}},
            "recurring[meter]",
        ),
        (
            {"unit_amount": 5, "transform_quantity": {"divide_by": 0, "round": "up"}},
            "transform_quantity[divide_by]",
        ),
    ],
)
def test_price_validation_names_the_param(server, product, params, param):
    error = invalid(stripe.Price.create, product=product.id, currency="usd", **params)
    assert error.http_status == 400
    assert error.param == param


def test_metered_price_needs_an_existing_meter(server, product):
    error = invalid(
        stripe.Price.create,
        product=product.id,
        currency="usd",
        unit_amount=5,
        recurring={"interval": "month", "usage_type": "metered", "meter": "mtr_missing"},
    )
    assert (error.http_status, error.code, error.param) == (
        400,
        "resource_missing",
        "recurring[meter]",
    )
    meter = stripe.billing.Meter.create(
        display_name="Requests", event_name="requests", default_aggregation={"formula": "sum"}
    )
    price = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount_decimal="0.05",
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    assert price.recurring.meter == meter.id
    assert price.recurring.usage_type == "metered"


def test_price_for_an_unknown_product_is_a_400(server):
    error = invalid(stripe.Price.create, product="prod_missing", currency="usd", unit_amount=1)
    assert (error.http_status, error.code, error.param) == (400, "resource_missing", "product")


def test_product_data_creates_the_product_inline(server):
    price = stripe.Price.create(
        currency="usd", unit_amount=900, product_data={"name": "Inline", "unit_label": "font"}
    )
    product = stripe.Product.retrieve(price.product)
    assert (product.name, product.unit_label) == ("Inline", "font")
    error = invalid(stripe.Price.create, currency="usd", unit_amount=900, product_data={})
    assert error.param == "product"
    error = invalid(
        stripe.Price.create, currency="usd", unit_amount=9, product_data={"unit_label": "x"}
    )
    assert error.param == "product_data[name]"
    assert len(stripe.Product.list().data) == 1


def test_tiers_are_only_returned_when_expanded(server, product):
    price = stripe.Price.create(
        product=product.id,
        currency="usd",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=FONT_TIERS,
        recurring={"interval": "month"},
        lookup_key="fonts_graduated",
    )
    assert "tiers" not in price
    assert price.unit_amount is None
    assert price.tiers_mode == "graduated"
    assert "tiers" not in stripe.Price.retrieve(price.id)
    assert "tiers" not in events_of(server, "price.created")[0]["data"]["object"]

    expanded = stripe.Price.retrieve(price.id, expand=["tiers"])
    assert [t.to_dict() for t in expanded.tiers] == [
        {
            "flat_amount": None,
            "flat_amount_decimal": None,
            "unit_amount": 700,
            "unit_amount_decimal": Decimal("700"),
            "up_to": 5,
        },
        {
            "flat_amount": None,
            "flat_amount_decimal": None,
            "unit_amount": 650,
            "unit_amount_decimal": Decimal("650"),
            "up_to": 10,
        },
        {
            "flat_amount": 100,
            "flat_amount_decimal": Decimal("100"),
            "unit_amount": 600,
            "unit_amount_decimal": Decimal("600"),
            "up_to": None,
        },
    ]
    listed = stripe.Price.list(lookup_keys=["fonts_graduated"], expand=["data.tiers"])
    assert len(listed.data[0].tiers) == 3
    assert "tiers" not in stripe.Price.list(lookup_keys=["fonts_graduated"]).data[0]


def test_list_by_lookup_keys_product_active_and_type(server, product):
    monthly = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=1000,
        recurring={"interval": "month"},
        lookup_key="fonts_monthly",
    )
    yearly = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=10000,
        recurring={"interval": "year"},
        lookup_key="fonts_yearly",
    )
    once = stripe.Price.create(product=product.id, currency="usd", unit_amount=50, active=False)
    other = stripe.Price.create(currency="usd", unit_amount=1, product_data={"name": "Other"})

    by_keys = stripe.Price.list(lookup_keys=["fonts_monthly", "fonts_yearly", "absent"])
    assert {p.id for p in by_keys.data} == {monthly.id, yearly.id}
    assert [p.id for p in stripe.Price.list(lookup_keys=["fonts_yearly"]).data] == [yearly.id]
    assert {p.id for p in stripe.Price.list(product=product.id).data} == {
        monthly.id,
        yearly.id,
        once.id,
    }
    assert [p.id for p in stripe.Price.list(type="one_time").data] == [other.id, once.id]
    assert [p.id for p in stripe.Price.list(type="one_time", active=True).data] == [other.id]
    assert [p.id for p in stripe.Price.list(recurring={"interval": "year"}).data] == [yearly.id]


def test_lookup_key_is_unique_unless_transferred(server, product):
    first = stripe.Price.create(
        product=product.id, currency="usd", unit_amount=1000, lookup_key="standard"
    )
    error = invalid(
        stripe.Price.create,
        product=product.id,
        currency="usd",
        unit_amount=1100,
        lookup_key="standard",
    )
    assert error.param == "lookup_key"
    assert first.id in error.user_message

    second = stripe.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=1100,
        lookup_key="standard",
        transfer_lookup_key=True,
    )
    assert second.lookup_key == "standard"
    assert stripe.Price.retrieve(first.id).lookup_key is None
    assert [p.id for p in stripe.Price.list(lookup_keys=["standard"]).data] == [second.id]
    (moved,) = events_of(server, "price.updated")
    assert moved["data"]["object"]["id"] == first.id
    assert moved["data"]["previous_attributes"] == {"lookup_key": "standard"}


def test_price_update_is_limited_to_mutable_fields(server, product):
    price = stripe.Price.create(product=product.id, currency="usd", unit_amount=1000)
    updated = stripe.Price.modify(
        price.id, nickname="Standard", active=False, metadata={"tier": "std"}
    )
    assert (updated.nickname, updated.active, updated.metadata.tier) == ("Standard", False, "std")
    (event,) = events_of(server, "price.updated")
    assert event["data"]["previous_attributes"] == {
        "active": True,
        "nickname": None,
        "metadata": {},
    }
    error = invalid(stripe.Price.modify, price.id, unit_amount=5)
    assert (error.param, error.user_message) == (
        "unit_amount",
        "Received unknown parameter: unit_amount",
    )
    assert stripe.Price.retrieve(price.id).unit_amount == 1000


def test_price_creation_replays_under_the_same_idempotency_key(server, product):
    params = {"product": product.id, "currency": "usd", "unit_amount": 700}
    first = stripe.Price.create(**params, idempotency_key="price-create-1")
    again = stripe.Price.create(**params, idempotency_key="price-create-1")
    assert again.id == first.id
    assert len(events_of(server, "price.created")) == 1
    assert len(stripe.Price.list().data) == 1

    with pytest.raises(stripe.IdempotencyError) as caught:
        stripe.Price.create(**dict(params, unit_amount=800), idempotency_key="price-create-1")
    assert caught.value.http_status == 400
    assert "price-create-1" in caught.value.user_message
    assert len(stripe.Price.list().data) == 1
