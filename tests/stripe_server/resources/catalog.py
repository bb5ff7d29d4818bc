"""Products, prices, product features and entitlement features.

Prices are immutable once created except `active`, `metadata`, `nickname`, `lookup_key` and
`tax_behavior`. The stored price of a tiered price carries its `tiers` (what `pricing` needs);
responses and event snapshots leave them out unless expanded (`expand[]=tiers`,
`expand[]=data.tiers`), as Stripe does.
"""

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..app import Request, list_page, route
from ..pricing import format_decimal
from ..store import Store, StripeError, missing, shape
from .common import deleted, metadata_update, to_bool, to_int

PRODUCT_TEXT = ("description", "statement_descriptor", "tax_code", "unit_label", "url")
MAX_INTERVAL_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}
_CURRENCY = re.compile(r"^[a-z]{3}$")


def required(params: dict[str, Any], key: str, param: str | None = None) -> Any:
    value = params.get(key)
    if value in (None, "", {}):
        name = param or key
        raise StripeError(f"Missing required param: {name}.", param=name)
    return value


def one_of(value: Any, choices: tuple[str, ...], param: str) -> str:
    if value not in choices:
        head, last = ", ".join(choices[:-1]), choices[-1]
        listed = f"{head}, or {last}" if len(choices) > 2 else f"{head} or {last}"
        raise StripeError(f"Invalid {param}: must be one of {listed}", param=param)
    return value


def _exclusive(params: dict[str, Any], first: str, second: str, prefix: str = "") -> None:
    if params.get(first) not in (None, "") and params.get(second) not in (None, ""):
        a, b = (f"{prefix}[{first}]", f"{prefix}[{second}]") if prefix else (first, second)
        raise StripeError(
            f"You may only specify one of these parameters: {a}, {b}.",
            param=b,
            code="parameters_exclusive",
        )


def _amount(value: Any, param: str) -> int:
    amount = to_int(value, param)
    if amount < 0:
        raise StripeError(f"Invalid {param}: must be greater than or equal to 0", param=param)
    return amount


def _decimal(value: Any, param: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise StripeError(f"Invalid decimal: {value}", param=param) from exc
    if not number.is_finite() or number < 0:
        raise StripeError(f"Invalid decimal: {value}", param=param)
    if number.normalize().as_tuple().exponent < -12:  # type: ignore[operator]
        raise StripeError(f"Invalid {param}: must have at most 12 decimal places", param=param)
    return number


def _amount_pair(
    params: dict[str, Any], integer: str, decimal: str, prefix: str = ""
) -> tuple[int | None, str | None]:
    """An `x` / `x_decimal` pair as Stripe returns it: the integer only when it is whole."""
    _exclusive(params, integer, decimal, prefix)

    def name(key: str) -> str:
        return f"{prefix}[{key}]" if prefix else key

    if params.get(integer) not in (None, ""):
        value = _amount(params[integer], name(integer))
        return value, str(value)
    if params.get(decimal) not in (None, ""):
        number = _decimal(params[decimal], name(decimal))
        whole = int(number) if number == number.to_integral_value() else None
        return whole, format_decimal(number)
    return None, None


def _created_filter(items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
    if created is None:
        return items
    if not isinstance(created, dict):
        value = to_int(created, "created")
        return [item for item in items if item["created"] == value]
    checks = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
    }
    for op, raw in created.items():
        if op not in checks:
            raise StripeError(f"Received unknown parameter: created[{op}]", param="created")
        value = to_int(raw, f"created[{op}]")
        items = [item for item in items if checks[op](item["created"], value)]
    return items


def _expands(request: Request) -> list[str]:
    return list(request.params.get("expand") or [])


def price_tiers(store: Store, price_id: str) -> list[dict[str, Any]] | None:
    """A tiered price's tiers (None for per_unit prices)."""
    with store.lock:
        price = store.objects.get("price", {}).get(price_id)
        return copy.deepcopy(price.get("tiers")) if price else None


def visible_price(price: dict[str, Any]) -> dict[str, Any]:
    """The price as Stripe shows it unexpanded: without `tiers`."""
    return {key: copy.deepcopy(value) for key, value in price.items() if key != "tiers"}


def _tiers_expander(server: Any, price: dict[str, Any]) -> list[dict[str, Any]] | None:
    return price_tiers(server.store, price["id"])


EXPANDERS = {("price", "tiers"): _tiers_expander}


def _present_price(request: Request, price: dict[str, Any], expand_key: str) -> dict[str, Any]:
    out = visible_price(price)
    if expand_key in _expands(request) and price.get("tiers") is not None:
        out["tiers"] = copy.deepcopy(price["tiers"])
    return out


# --- products -----------------------------------------------------------------------------


def _new_product(
    store: Store, params: dict[str, Any], *, param: str = "", default_price: str | None = None
) -> dict[str, Any]:
    def name(key: str) -> str:
        return f"{param}[{key}]" if param else key

    product = shape("product")
    now = store.now()
    product_id = params.get("id") or store.new_id("prod")
    if params.get("id") and product_id in store.objects.get("product", {}):
        raise StripeError(
            f"Product already exists with id {product_id}.",
            param="id",
            code="resource_already_exists",
        )
    product.update(
        id=product_id,
        name=required(params, "name", name("name")),
        active=to_bool(params.get("active", True), name("active")),
        created=now,
        updated=now,
        default_price=default_price,
        description=params.get("description") or None,
        images=list(params.get("images") or []),
        marketing_features=[
            {"name": feature.get("name")} for feature in params.get("marketing_features") or []
        ],
        metadata=metadata_update({}, params.get("metadata", {})),
        package_dimensions=None,
        shippable=(
            to_bool(params["shippable"], name("shippable")) if "shippable" in params else None
        ),
        statement_descriptor=params.get("statement_descriptor") or None,
        tax_code=params.get("tax_code") or None,
        unit_label=params.get("unit_label") or None,
        url=params.get("url") or None,
        type=one_of(params.get("type", "service"), ("good", "service"), name("type")),
        livemode=False,
    )
    store.put("product", product)
    store.emit("product.created", product)
    return product


def missing_param(kind: str, object_id: str, param: str) -> StripeError:
    """An unknown id given as a request parameter: 400, where an unknown URL id is 404."""
    error = missing(kind, object_id, param)
    error.status = 400
    return error


def _product(store: Store, product_id: str, param: str = "id") -> dict[str, Any]:
    with store.lock:
        product = store.objects.get("product", {}).get(product_id)
    if product is None:
        raise missing("product", product_id, param)
    return product


@route("POST", r"/v1/products")
def product_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    required(params, "name")
    default_price_data = params.get("default_price_data")
    if default_price_data is not None and not isinstance(default_price_data, dict):
        raise StripeError("Invalid default_price_data: must be a hash", param="default_price_data")
    pending = None
    if default_price_data:
        pending = _validate_price(store, default_price_data, product_pending=True)
    default_price = pending.price["id"] if pending is not None else None
    product = _new_product(store, params, default_price=default_price)
    if pending is not None:
        pending.commit(store, product["id"])
    return copy.deepcopy(product)


@route("GET", r"/v1/products/(?P<id>[^/]+)")
def product_retrieve(request: Request) -> dict[str, Any]:
    if request.match["id"] == "search":
        raise StripeError("Search is not supported by this server.", status=404)
    return copy.deepcopy(_product(request.store, request.match["id"]))


@route("POST", r"/v1/products/(?P<id>[^/]+)")
def product_update(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    product = _product(store, request.match["id"])
    previous: dict[str, Any] = {}

    def change(field: str, value: Any) -> None:
        if product.get(field) != value:
            previous[field] = copy.deepcopy(product.get(field))
            product[field] = value

    with store.lock:
        if "name" in params:
            change("name", required(params, "name"))
        if "active" in params:
            change("active", to_bool(params["active"], "active"))
        for field in PRODUCT_TEXT:
            if field in params:
                change(field, params[field] or None)
        if "shippable" in params:
            change("shippable", to_bool(params["shippable"], "shippable"))
        if "images" in params:
            change("images", list(params["images"] or []))
        if "marketing_features" in params:
            features = params["marketing_features"] or []
            change("marketing_features", [{"name": f.get("name")} for f in features])
        if "default_price" in params:
            price_id = params["default_price"] or None
            if price_id is not None:
                price = store.objects.get("price", {}).get(price_id)
                if price is None:
                    raise missing_param("price", price_id, "default_price")
                if price["product"] != product["id"]:
                    raise StripeError(
                        f"The price `{price_id}` does not belong to product `{product['id']}`.",
                        param="default_price",
                    )
                if not price["active"]:
                    raise StripeError(
                        f"The price `{price_id}` is not active and cannot be the default price.",
                        param="default_price",
                    )
            change("default_price", price_id)
        if "metadata" in params:
            change("metadata", metadata_update(product["metadata"], params["metadata"]))
        if previous:
            product["updated"] = store.now()
    if previous:
        store.emit("product.updated", product, previous_attributes=previous)
    return copy.deepcopy(product)


@route("DELETE", r"/v1/products/(?P<id>[^/]+)")
def product_delete(request: Request) -> dict[str, Any]:
    store = request.store
    product = _product(store, request.match["id"])
    if any(price["product"] == product["id"] for price in store.all("price")):
        raise StripeError(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    store.delete("product", product["id"])
    store.emit("product.deleted", product)
    return deleted(product)


@route("GET", r"/v1/products")
def product_list(request: Request) -> dict[str, Any]:
    params = request.params
    items = request.store.all("product")
    if "active" in params:
        wanted = to_bool(params["active"], "active")
        items = [p for p in items if p["active"] == wanted]
    if "shippable" in params:
        wanted = to_bool(params["shippable"], "shippable")
        items = [p for p in items if p["shippable"] == wanted]
    if ids := params.get("ids"):
        items = [p for p in items if p["id"] in ids]
    if url := params.get("url"):
        items = [p for p in items if p["url"] == url]
    items = _created_filter(items, params.get("created"))
    return copy.deepcopy(list_page(request, items, "/v1/products"))


# --- entitlement features and product features -------------------------------------------


def _feature(store: Store, feature_id: str) -> dict[str, Any]:
    with store.lock:
        feature = store.objects.get("entitlements.feature", {}).get(feature_id)
    if feature is None:
        raise missing("feature", feature_id)
    return feature


@route("POST", r"/v1/entitlements/features")
def feature_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    name = required(params, "name")
    lookup_key = required(params, "lookup_key")
    with store.lock:
        if any(f["lookup_key"] == lookup_key for f in store.all("entitlements.feature")):
            raise StripeError(
                f"A feature with lookup_key `{lookup_key}` already exists.",
                param="lookup_key",
                code="resource_already_exists",
            )
        feature = shape("entitlements.feature")
        feature.update(
            id=store.new_id("feat_test"),
            name=name,
            lookup_key=lookup_key,
            active=True,
            livemode=False,
            metadata=metadata_update({}, params.get("metadata", {})),
        )
        store.put("entitlements.feature", feature)
    return copy.deepcopy(feature)


@route("GET", r"/v1/entitlements/features/(?P<id>[^/]+)")
def feature_retrieve(request: Request) -> dict[str, Any]:
    return copy.deepcopy(_feature(request.store, request.match["id"]))


@route("POST", r"/v1/entitlements/features/(?P<id>[^/]+)")
def feature_update(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    feature = _feature(store, request.match["id"])
    with store.lock:
        if "name" in params:
            feature["name"] = required(params, "name")
        if "active" in params:
            feature["active"] = to_bool(params["active"], "active")
        if "metadata" in params:
            feature["metadata"] = metadata_update(feature["metadata"], params["metadata"])
    return copy.deepcopy(feature)


@route("GET", r"/v1/entitlements/features")
def feature_list(request: Request) -> dict[str, Any]:
    params = request.params
    items = request.store.all("entitlements.feature")
    if "archived" in params:
        archived = to_bool(params["archived"], "archived")
        items = [f for f in items if f["active"] != archived]
    if lookup_key := params.get("lookup_key"):
        items = [f for f in items if f["lookup_key"] == lookup_key]
    page = list_page(request, items, "/v1/entitlements/features")
    return copy.deepcopy(page)


def _present_product_feature(store: Store, record: dict[str, Any]) -> dict[str, Any]:
    out = shape("product_feature")
    out.update(
        id=record["id"],
        livemode=False,
        entitlement_feature=copy.deepcopy(_feature(store, record["entitlement_feature"])),
    )
    return out


@route("POST", r"/v1/products/(?P<product>[^/]+)/features")
def product_feature_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    product = _product(store, request.match["product"], "product")
    feature_id = required(params, "entitlement_feature")
    with store.lock:
        feature = store.objects.get("entitlements.feature", {}).get(feature_id)
    if feature is None:
        raise missing_param("feature", feature_id, "entitlement_feature")
    with store.lock:
        attached = [
            r
            for r in store.all("product_feature")
            if r["product"] == product["id"] and r["entitlement_feature"] == feature["id"]
        ]
        if attached:
            raise StripeError(
                f"The feature `{feature['id']}` is already attached to product `{product['id']}`.",
                param="entitlement_feature",
                code="resource_already_exists",
            )
        record = {
            "id": store.new_id("prodft"),
            "object": "product_feature",
            "product": product["id"],
            "entitlement_feature": feature["id"],
            "created": store.now(),
        }
        store.put("product_feature", record)
    return _present_product_feature(store, record)


def _product_feature(request: Request) -> dict[str, Any]:
    store = request.store
    _product(store, request.match["product"], "product")
    with store.lock:
        record = store.objects.get("product_feature", {}).get(request.match["id"])
    if record is None or record["product"] != request.match["product"]:
        raise missing("product_feature", request.match["id"])
    return record


@route("GET", r"/v1/products/(?P<product>[^/]+)/features/(?P<id>[^/]+)")
def product_feature_retrieve(request: Request) -> dict[str, Any]:
    return _present_product_feature(request.store, _product_feature(request))


@route("DELETE", r"/v1/products/(?P<product>[^/]+)/features/(?P<id>[^/]+)")
def product_feature_delete(request: Request) -> dict[str, Any]:
    record = _product_feature(request)
    request.store.delete("product_feature", record["id"])
    return deleted(record)


@route("GET", r"/v1/products/(?P<product>[^/]+)/features")
def product_feature_list(request: Request) -> dict[str, Any]:
    store = request.store
    product = _product(store, request.match["product"], "product")
    records = [r for r in store.all("product_feature") if r["product"] == product["id"]]
    page = list_page(request, records, f"/v1/products/{product['id']}/features")
    page["data"] = [_present_product_feature(store, record) for record in page["data"]]
    return page


# --- prices -------------------------------------------------------------------------------


def _recurring(store: Store, given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise StripeError("Invalid recurring: must be a hash", param="recurring")
    interval = one_of(
        required(given, "interval", "recurring[interval]"),
        ("day", "month", "week", "year"),
        "recurring[interval]",
    )
    count = to_int(given.get("interval_count", 1), "recurring[interval_count]")
    if count < 1 or count > MAX_INTERVAL_COUNT[interval]:
        raise StripeError(
            "The maximum recurring interval is one year (1 year, 12 months, or 52 weeks).",
            param="recurring[interval_count]",
        )
    usage_type = one_of(
        given.get("usage_type", "licensed"), ("licensed", "metered"), "recurring[usage_type]"
    )
    meter_id = given.get("meter") or None
    if usage_type == "metered":
        if meter_id is None:
            raise StripeError(
                "Missing required param: recurring[meter]. Metered prices must be backed "
                "by a billing meter.",
                param="recurring[meter]",
            )
        with store.lock:
            meter = store.objects.get("billing.meter", {}).get(meter_id)
        if meter is None:
            raise missing_param("billing meter", meter_id, "recurring[meter]")
        if meter["status"] != "active":
            raise StripeError(
                f"The billing meter `{meter_id}` is inactive; reactivate it before "
                "attaching it to a price.",
                param="recurring[meter]",
            )
    elif meter_id is not None:
        raise StripeError(
            "recurring[meter] can only be set when recurring[usage_type] is metered.",
            param="recurring[meter]",
        )
    trial = given.get("trial_period_days")
    return {
        "interval": interval,
        "interval_count": count,
        "meter": meter_id,
        "trial_period_days": (
            to_int(trial, "recurring[trial_period_days]") if trial not in (None, "") else None
        ),
        "usage_type": usage_type,
    }


def _tiers(given: Any) -> list[dict[str, Any]]:
    if not isinstance(given, list) or not given:
        raise StripeError("Invalid tiers: must be a non-empty array", param="tiers")
    tiers: list[dict[str, Any]] = []
    previous: int | None = None
    for index, tier in enumerate(given):
        prefix = f"tiers[{index}]"
        if not isinstance(tier, dict):
            raise StripeError(f"Invalid {prefix}: must be a hash", param=prefix)
        raw_up_to = required(tier, "up_to", f"{prefix}[up_to]")
        last = index == len(given) - 1
        if raw_up_to == "inf":
            if not last:
                raise StripeError(
                    "Only the last tier may have up_to=inf.", param=f"{prefix}[up_to]"
                )
            up_to = None
        else:
            up_to = to_int(raw_up_to, f"{prefix}[up_to]")
            if last:
                raise StripeError("The last tier must have up_to=inf.", param=f"{prefix}[up_to]")
            if up_to < 1 or (previous is not None and up_to <= previous):
                raise StripeError(
                    "Tiers must be sorted by up_to in strictly ascending order, starting "
                    "at 1 or more.",
                    param=f"{prefix}[up_to]",
                )
            previous = up_to
        unit, unit_decimal = _amount_pair(tier, "unit_amount", "unit_amount_decimal", prefix)
        flat, flat_decimal = _amount_pair(tier, "flat_amount", "flat_amount_decimal", prefix)
        if unit_decimal is None and flat_decimal is None:
            raise StripeError(
                f"Each tier needs a unit_amount or a flat_amount: {prefix} has neither.",
                param=f"{prefix}[unit_amount]",
            )
        tiers.append(
            {
                "flat_amount": flat,
                "flat_amount_decimal": flat_decimal,
                "unit_amount": unit,
                "unit_amount_decimal": unit_decimal,
                "up_to": up_to,
            }
        )
    return tiers


def _transform(given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise StripeError("Invalid transform_quantity: must be a hash", param="transform_quantity")
    divide_by = to_int(
        required(given, "divide_by", "transform_quantity[divide_by]"),
        "transform_quantity[divide_by]",
    )
    if divide_by < 1:
        raise StripeError(
            "Invalid transform_quantity[divide_by]: must be greater than or equal to 1",
            param="transform_quantity[divide_by]",
        )
    rounding = one_of(
        required(given, "round", "transform_quantity[round]"),
        ("down", "up"),
        "transform_quantity[round]",
    )
    return {"divide_by": divide_by, "round": rounding}


def _claim_lookup_key(
    store: Store, lookup_key: str, transfer: bool, price_id: str | None
) -> dict[str, Any] | None:
    """The price that holds `lookup_key` and must give it up, if any."""
    holder = next(
        (
            p
            for p in store.all("price")
            if p.get("lookup_key") == lookup_key and p["id"] != price_id
        ),
        None,
    )
    if holder is not None and not transfer:
        raise StripeError(
            f"A price (`{holder['id']}`) already uses that lookup key. Set "
            "transfer_lookup_key=true to move it to this price.",
            param="lookup_key",
            code="lookup_key_exists",
        )
    return holder


def _release_lookup_key(store: Store, holder: dict[str, Any] | None) -> None:
    if holder is None:
        return
    with store.lock:
        old = holder["lookup_key"]
        holder["lookup_key"] = None
    store.emit("price.updated", visible_price(holder), previous_attributes={"lookup_key": old})


class _PendingPrice:
    """A validated price not yet stored: creation is all or nothing."""

    def __init__(
        self,
        price: dict[str, Any],
        tiers: list[dict[str, Any]] | None,
        holder: dict[str, Any] | None,
        product_data: dict[str, Any] | None,
    ) -> None:
        self.price = price
        self.tiers = tiers
        self.holder = holder
        self.product_data = product_data

    def commit(self, store: Store, product_id: str | None = None) -> dict[str, Any]:
        price = self.price
        if product_id is not None:
            price["product"] = product_id
        elif self.product_data is not None:
            product = _new_product(store, self.product_data, param="product_data")
            price["product"] = product["id"]
        _release_lookup_key(store, self.holder)
        if self.tiers is not None:
            price["tiers"] = self.tiers
        store.put("price", price)
        store.emit("price.created", visible_price(price))
        return price


def _validate_price(
    store: Store, params: dict[str, Any], *, product_pending: bool = False
) -> _PendingPrice:
    """Check every create parameter; `product_pending` when the product comes with it."""
    currency = str(required(params, "currency")).lower()
    if not _CURRENCY.match(currency):
        raise StripeError(f"Invalid currency: {params['currency']}", param="currency")
    if params.get("product") and params.get("product_data"):
        raise StripeError(
            "You may only specify one of these parameters: product, product_data.",
            param="product_data",
            code="parameters_exclusive",
        )
    product_id = None
    product_data = None
    if product_pending:
        pass
    elif params.get("product"):
        product_id = params["product"]
        if product_id not in store.objects.get("product", {}):
            raise missing_param("product", product_id, "product")
    elif isinstance(params.get("product_data"), dict):
        product_data = params["product_data"]
        required(product_data, "name", "product_data[name]")
        to_bool(product_data.get("active", True), "product_data[active]")
    else:
        raise StripeError(
            "You must specify either `product` or `product_data` when creating a price.",
            param="product",
        )
    scheme = one_of(
        params.get("billing_scheme", "per_unit"), ("per_unit", "tiered"), "billing_scheme"
    )
    recurring = _recurring(store, params["recurring"]) if params.get("recurring") else None
    unit_amount, unit_amount_decimal = _amount_pair(params, "unit_amount", "unit_amount_decimal")
    tiers = None
    tiers_mode = None
    transform = None
    custom = None
    if scheme == "tiered":
        for field in ("unit_amount", "unit_amount_decimal", "custom_unit_amount"):
            if params.get(field) not in (None, ""):
                raise StripeError(
                    f"{field} cannot be used with billing_scheme=tiered; put the amounts in tiers.",
                    param=field,
                )
        if params.get("transform_quantity"):
            raise StripeError(
                "transform_quantity cannot be used with billing_scheme=tiered.",
                param="transform_quantity",
            )
        tiers_mode = one_of(required(params, "tiers_mode"), ("graduated", "volume"), "tiers_mode")
        tiers = _tiers(required(params, "tiers"))
    else:
        for field in ("tiers", "tiers_mode"):
            if params.get(field) not in (None, ""):
                raise StripeError(
                    f"{field} can only be used with billing_scheme=tiered.", param=field
                )
        if params.get("custom_unit_amount"):
            if recurring is not None:
                raise StripeError(
                    "custom_unit_amount cannot be used with recurring prices.",
                    param="custom_unit_amount",
                )
            given = params["custom_unit_amount"]
            custom = {
                key: (to_int(given[key], f"custom_unit_amount[{key}]") if key in given else None)
                for key in ("maximum", "minimum", "preset")
            }
        elif unit_amount_decimal is None:
            raise StripeError(
                "Missing required param: unit_amount. A per_unit price needs unit_amount, "
                "unit_amount_decimal or custom_unit_amount.",
                param="unit_amount",
            )
        if params.get("transform_quantity"):
            transform = _transform(params["transform_quantity"])
    tax_behavior = one_of(
        params.get("tax_behavior", "unspecified"),
        ("exclusive", "inclusive", "unspecified"),
        "tax_behavior",
    )
    transfer = to_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
    lookup_key = params.get("lookup_key") or None
    holder = _claim_lookup_key(store, lookup_key, transfer, None) if lookup_key else None
    price = shape("price")
    price.update(
        id=store.new_id("price"),
        active=to_bool(params.get("active", True), "active"),
        billing_scheme=scheme,
        created=store.now(),
        currency=currency,
        custom_unit_amount=custom,
        livemode=False,
        lookup_key=lookup_key,
        metadata=metadata_update({}, params.get("metadata", {})),
        nickname=params.get("nickname") or None,
        product=product_id,
        recurring=recurring,
        tax_behavior=tax_behavior,
        tiers_mode=tiers_mode,
        transform_quantity=transform,
        type="recurring" if recurring else "one_time",
        unit_amount=unit_amount,
        unit_amount_decimal=unit_amount_decimal,
    )
    return _PendingPrice(price, tiers, holder, product_data)


def _price(store: Store, price_id: str) -> dict[str, Any]:
    with store.lock:
        price = store.objects.get("price", {}).get(price_id)
    if price is None:
        raise missing("price", price_id)
    return price


@route("POST", r"/v1/prices")
def price_create(request: Request) -> dict[str, Any]:
    price = _validate_price(request.store, request.params).commit(request.store)
    return _present_price(request, price, "tiers")


@route("GET", r"/v1/prices/(?P<id>[^/]+)")
def price_retrieve(request: Request) -> dict[str, Any]:
    if request.match["id"] == "search":
        raise StripeError("Search is not supported by this server.", status=404)
    return _present_price(request, _price(request.store, request.match["id"]), "tiers")


@route("POST", r"/v1/prices/(?P<id>[^/]+)")
def price_update(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    price = _price(store, request.match["id"])
    previous: dict[str, Any] = {}
    holder = None
    if params.get("lookup_key"):
        transfer = to_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
        holder = _claim_lookup_key(store, params["lookup_key"], transfer, price["id"])
    if "tax_behavior" in params:
        wanted = one_of(
            params["tax_behavior"], ("exclusive", "inclusive", "unspecified"), "tax_behavior"
        )
        if price["tax_behavior"] not in ("unspecified", wanted):
            raise StripeError(
                "tax_behavior cannot be changed once it is set to exclusive or inclusive.",
                param="tax_behavior",
            )
    _release_lookup_key(store, holder)
    with store.lock:
        updates: dict[str, Any] = {}
        if "active" in params:
            updates["active"] = to_bool(params["active"], "active")
        if "nickname" in params:
            updates["nickname"] = params["nickname"] or None
        if "lookup_key" in params:
            updates["lookup_key"] = params["lookup_key"] or None
        if "tax_behavior" in params:
            updates["tax_behavior"] = params["tax_behavior"]
        if "metadata" in params:
            updates["metadata"] = metadata_update(price["metadata"], params["metadata"])
        for field, value in updates.items():
            if price.get(field) != value:
                previous[field] = copy.deepcopy(price.get(field))
                price[field] = value
    if previous:
        store.emit("price.updated", visible_price(price), previous_attributes=previous)
    return _present_price(request, price, "tiers")


@route("GET", r"/v1/prices")
def price_list(request: Request) -> dict[str, Any]:
    params = request.params
    items = request.store.all("price")
    if "active" in params:
        wanted = to_bool(params["active"], "active")
        items = [p for p in items if p["active"] == wanted]
    if currency := params.get("currency"):
        items = [p for p in items if p["currency"] == currency.lower()]
    if product := params.get("product"):
        items = [p for p in items if p["product"] == product]
    if price_type := params.get("type"):
        one_of(price_type, ("one_time", "recurring"), "type")
        items = [p for p in items if p["type"] == price_type]
    if "lookup_keys" in params:
        keys = params["lookup_keys"]
        if not isinstance(keys, list):
            raise StripeError("Invalid array", param="lookup_keys")
        items = [p for p in items if p.get("lookup_key") in keys]
    if isinstance(recurring := params.get("recurring"), dict):
        for field, value in recurring.items():
            items = [p for p in items if p["recurring"] and p["recurring"][field] == value]
    items = _created_filter(items, params.get("created"))
    page = list_page(request, items, "/v1/prices")
    page["data"] = [_present_price(request, price, "data.tiers") for price in page["data"]]
    return page
