"""Subscriptions and subscription items: create (anchor, proration_behavior), update (items,
pause_collection, cancel_at_period_end, metadata), cancel, list."""

import copy
from typing import Any

from ..app import Request, list_page, route
from ..clocks import customer_time
from ..cycles import (
    TRIAL_WILL_END_NOTICE,
    item_line,
    subscription_resume,
    subscription_trial_will_end,
)
from ..discounts import discounts_from_params
from ..invoicing import (
    invoice_finalize,
    invoice_new,
    invoice_recalculate,
    payment_declines,
    subscription_lines_follow_metadata,
)
from ..periods import add_interval
from ..store import Store, StripeError, shape
from .common import customer_param, metadata_update, to_bool, to_int

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def _price(store: Store, price_id: Any, param: str) -> dict[str, Any]:
    if not isinstance(price_id, str) or not price_id:
        raise StripeError(f"Missing required param: {param}.", param=param)
    price = store.objects.get("price", {}).get(price_id)
    if price is None:
        raise StripeError(f"No such price: '{price_id}'", param=param, code="resource_missing")
    if price.get("type") != "recurring":
        raise StripeError(
            f"The price specified is set to `type=one_time` but this field only accepts prices "
            f"with `type=recurring`: {price_id}",
            param=param,
        )
    return price


def _item(
    store: Store, subscription_id: str, spec: dict[str, Any], index: int, period: tuple[int, int]
) -> dict[str, Any]:
    price = _price(store, spec.get("price"), f"items[{index}][price]")
    metered = (price.get("recurring") or {}).get("usage_type") == "metered"
    if metered and "quantity" in spec:
        raise StripeError(
            "Quantity should not be specified where usage_type is `metered`. Remove quantity "
            f"from `items[{index}]`.",
            param=f"items[{index}][quantity]",
        )
    item = shape("subscription_item")
    visible_price = {key: value for key, value in price.items() if key != "tiers"}
    item.update(
        id=store.new_id("si"),
        created=period[0],
        price=copy.deepcopy(visible_price),
        quantity=None if metered else to_int(spec.get("quantity", 1), f"items[{index}][quantity]"),
        subscription=subscription_id,
        metadata=metadata_update({}, spec.get("metadata", {})),
        current_period_start=period[0],
        current_period_end=period[1],
        billing_thresholds=None,
        discounts=[],
        tax_rates=[],
    )
    item["plan"] = plan_for(price)
    return item


def plan_for(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` Stripe still renders on a subscription item, mirroring its price."""
    recurring = price.get("recurring") or {}
    plan = shape("plan")
    unit = price.get("unit_amount_decimal")
    plan.update(
        id=price["id"],
        active=price.get("active", True),
        amount=price.get("unit_amount"),
        amount_decimal=unit,
        billing_scheme=price.get("billing_scheme", "per_unit"),
        created=price.get("created"),
        currency=price["currency"],
        interval=recurring.get("interval", "month"),
        interval_count=recurring.get("interval_count", 1),
        livemode=False,
        metadata=dict(price.get("metadata") or {}),
        meter=recurring.get("meter"),
        nickname=price.get("nickname"),
        product=price.get("product"),
        tiers_mode=price.get("tiers_mode"),
        transform_usage=copy.deepcopy(price.get("transform_quantity")),
        trial_period_days=recurring.get("trial_period_days"),
        usage_type=recurring.get("usage_type", "licensed"),
    )
    return plan


def _interval(price: dict[str, Any]) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return recurring.get("interval", "month"), recurring.get("interval_count", 1)


@route("POST", r"/v1/subscriptions")
def subscription_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    customer = customer_param(store, params)
    customer_id = customer["id"]
    specs = params.get("items")
    if not specs or not isinstance(specs, list):
        raise StripeError("Missing required param: items.", param="items")
    proration = params.get("proration_behavior", "create_prorations")
    if proration not in PRORATION_BEHAVIORS:
        raise StripeError(f"Invalid proration_behavior: {proration}", param="proration_behavior")
    collection = params.get("collection_method", "charge_automatically")
    if collection not in ("charge_automatically", "send_invoice"):
        raise StripeError(f"Invalid collection_method: {collection}", param="collection_method")
    days_until_due = params.get("days_until_due")
    if collection == "send_invoice" and days_until_due is None:
        raise StripeError(
            "Missing required param: days_until_due (required with send_invoice).",
            param="days_until_due",
        )
    now = customer_time(store, customer_id)
    first_price = _price(store, specs[0].get("price"), "items[0][price]")
    interval, count = _interval(first_price)
    anchor = (
        to_int(params["billing_cycle_anchor"], "billing_cycle_anchor")
        if "billing_cycle_anchor" in params
        else now
    )
    if anchor < now:
        raise StripeError(
            "billing_cycle_anchor cannot be in the past.", param="billing_cycle_anchor"
        )
    if anchor > add_interval(now, anchor=now, interval=interval, count=count):
        raise StripeError(
            "billing_cycle_anchor cannot be later than next natural billing date for plan.",
            param="billing_cycle_anchor",
        )
    trial_end = _trial_end(params, now, first_price)
    if trial_end is not None:
        # The trial is the first period; billing starts when it ends.
        anchor = trial_end
    period = (
        (now, anchor)
        if anchor > now
        else (now, add_interval(now, anchor=now, interval=interval, count=count))
    )
    subscription = shape("subscription")
    subscription_id = store.new_id("sub")
    items = [_item(store, subscription_id, spec, index, period) for index, spec in enumerate(specs)]
    currencies = {item["price"]["currency"] for item in items}
    if len(currencies) > 1:
        raise StripeError(
            "All prices on a subscription must have the same currency.", param="items"
        )
    subscription.update(
        id=subscription_id,
        billing_cycle_anchor=anchor,
        billing_cycle_anchor_config=None,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method=collection,
        created=now,
        currency=currencies.pop(),
        customer=customer_id,
        days_until_due=to_int(days_until_due, "days_until_due")
        if days_until_due is not None
        else None,
        default_payment_method=params.get("default_payment_method"),
        description=params.get("description"),
        discounts=[],
        ended_at=None,
        latest_invoice=None,
        metadata=metadata_update({}, params.get("metadata", {})),
        next_pending_invoice_item_invoice=None,
        pause_collection=None,
        pending_invoice_item_interval=None,
        pending_setup_intent=None,
        pending_update=None,
        schedule=None,
        start_date=now,
        status="active",
        test_clock=customer.get("test_clock"),
        transfer_data=None,
        trial_end=trial_end,
        trial_start=now if trial_end is not None else None,
        trial_settings={
            "end_behavior": {
                "missing_payment_method": (
                    (params.get("trial_settings") or {}).get("end_behavior") or {}
                ).get("missing_payment_method", "create_invoice")
            }
        },
        billing_thresholds=None,
        billing_schedules=[],
        items={
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
    )
    if "discounts" in params:
        subscription["discounts"] = discounts_from_params(
            store, params["discounts"], at=now, customer=customer_id, subscription=subscription_id
        )
    if trial_end is not None:
        subscription["status"] = "trialing"
    invoice = _first_invoice(
        store, subscription, customer, proration, anchor > now and trial_end is None
    )
    subscription["latest_invoice"] = invoice["id"]
    store.put("subscription", subscription)
    if (
        collection == "charge_automatically"
        and invoice["amount_due"] > 0
        and payment_declines(store, invoice)
    ):
        # payment_behavior=allow_incomplete (Stripe's default): created, but incomplete until
        # the first invoice is paid.
        subscription["status"] = "incomplete"
    store.put("invoice", invoice)
    store.emit("customer.subscription.created", subscription)
    store.emit("invoice.created", invoice)
    invoice_finalize(store, request.server, invoice)
    if trial_end is not None and trial_end - now <= TRIAL_WILL_END_NOTICE:
        # Stripe: a trial shorter than the notice gets its trial_will_end at once.
        subscription_trial_will_end(store, subscription)
    return subscription


def _trial_end(params: dict[str, Any], now: int, price: dict[str, Any]) -> int | None:
    if params.get("trial_end") not in (None, ""):
        if params["trial_end"] == "now":
            return None
        end = to_int(params["trial_end"], "trial_end")
        if end <= now:
            raise StripeError(
                "Invalid timestamp: must be an integer Unix timestamp in the future.",
                param="trial_end",
            )
        return end
    days = params.get("trial_period_days")
    if days in (None, "") and params.get("trial_from_plan") == "true":
        days = (price.get("recurring") or {}).get("trial_period_days")
    if days in (None, "", 0, "0"):
        return None
    return now + to_int(days, "trial_period_days") * 86_400


def _first_invoice(
    store: Store,
    subscription: dict[str, Any],
    customer: dict[str, Any],
    proration: str,
    anchored: bool,
) -> dict[str, Any]:
    """The `subscription_create` draft: licensed items for the first (maybe partial) period."""
    items = subscription["items"]["data"]
    period = (items[0]["current_period_start"], items[0]["current_period_end"])
    invoice = invoice_new(
        store,
        customer=customer,
        billing_reason="subscription_create",
        collection_method=subscription["collection_method"],
        days_until_due=subscription.get("days_until_due"),
        subscription=subscription,
        period=(period[0], period[0]),
        currency=subscription["currency"],
    )
    interval, count = _interval(items[0]["price"])
    whole = period[1] - add_interval(
        period[1],
        anchor=subscription["billing_cycle_anchor"],
        interval=interval,
        count=count,
        steps=-1,
    )
    for item in items:
        if (item["price"].get("recurring") or {}).get("usage_type") == "metered":
            continue
        if anchored and proration == "none":
            fraction = (0, whole)
        elif anchored:
            fraction = (period[1] - period[0], whole)
        else:
            fraction = None
        invoice["lines"]["data"].append(
            item_line(
                store,
                invoice=invoice,
                subscription=subscription,
                item=item,
                period=period,
                quantity=item.get("quantity") or 1,
                proration_fraction=fraction,
            )
        )
    if subscription["status"] == "trialing":
        for line in invoice["lines"]["data"]:
            name = line["description"].split(" x ", 1)[-1]
            line.update(amount=0, subtotal=0, description=f"Trial period for {name}")
    invoice_recalculate(store, invoice)
    return invoice


def _get(request: Request) -> dict[str, Any]:
    return request.store.get("subscription", request.match["id"])


@route("GET", r"/v1/subscriptions/(?P<id>sub_[^/]+)")
def subscription_retrieve(request: Request) -> dict[str, Any]:
    return _get(request)


@route("POST", r"/v1/subscriptions/(?P<id>sub_[^/]+)")
def subscription_update(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    subscription = _get(request)
    if subscription["status"] == "canceled" and set(params) - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise StripeError(
            "A canceled subscription can only update its cancellation_details and metadata.",
        )
    previous: dict[str, Any] = {}
    with store.lock:
        if "metadata" in params:
            previous["metadata"] = dict(subscription["metadata"])
            subscription["metadata"] = metadata_update(subscription["metadata"], params["metadata"])
        if "pause_collection" in params:
            previous["pause_collection"] = subscription["pause_collection"]
            pause = params["pause_collection"]
            if pause == "":
                subscription["pause_collection"] = None
            else:
                if not isinstance(pause, dict) or pause.get("behavior") not in PAUSE_BEHAVIORS:
                    raise StripeError(
                        "Invalid pause_collection[behavior]: must be one of keep_as_draft, "
                        "mark_uncollectible, or void",
                        param="pause_collection[behavior]",
                    )
                resumes = pause.get("resumes_at")
                subscription["pause_collection"] = {
                    "behavior": pause["behavior"],
                    "resumes_at": to_int(resumes, "pause_collection[resumes_at]")
                    if resumes
                    else None,
                }
        if "cancel_at_period_end" in params:
            previous["cancel_at_period_end"] = subscription["cancel_at_period_end"]
            previous["canceled_at"] = subscription["canceled_at"]
            ending = to_bool(params["cancel_at_period_end"], "cancel_at_period_end")
            subscription["cancel_at_period_end"] = ending
            # Stripe: canceled_at is the time of the request that scheduled the cancellation.
            subscription["canceled_at"] = (
                customer_time(store, subscription["customer"]) if ending else None
            )
            subscription["cancellation_details"]["reason"] = (
                "cancellation_requested" if ending else None
            )
        if "cancel_at" in params:
            previous["cancel_at"] = subscription["cancel_at"]
            subscription["cancel_at"] = (
                to_int(params["cancel_at"], "cancel_at") if params["cancel_at"] != "" else None
            )
        for field in ("description", "default_payment_method"):
            if field in params:
                previous[field] = subscription.get(field)
                subscription[field] = params[field] or None
        if "days_until_due" in params:
            previous["days_until_due"] = subscription["days_until_due"]
            subscription["days_until_due"] = to_int(params["days_until_due"], "days_until_due")
        if "collection_method" in params:
            previous["collection_method"] = subscription["collection_method"]
            subscription["collection_method"] = params["collection_method"]
        if "cancellation_details" in params and isinstance(params["cancellation_details"], dict):
            previous["cancellation_details"] = dict(subscription["cancellation_details"])
            for key in ("comment", "feedback"):
                if key in params["cancellation_details"]:
                    value = params["cancellation_details"][key]
                    subscription["cancellation_details"][key] = value or None
        if "discounts" in params:
            previous["discounts"] = list(subscription["discounts"])
            subscription["discounts"] = discounts_from_params(
                store,
                params["discounts"],
                at=customer_time(store, subscription["customer"]),
                customer=subscription["customer"],
                subscription=subscription["id"],
            )
        if "items" in params:
            previous["items"] = copy.deepcopy(subscription["items"])
            _update_items(store, subscription, params["items"])
    # pause_collection only pauses payment collection: Stripe's customer.subscription.paused
    # and .resumed are for status=paused, so a collection pause is just an update.
    if "metadata" in previous:
        subscription_lines_follow_metadata(store, subscription)
    if previous:
        store.emit("customer.subscription.updated", subscription, previous_attributes=previous)
    return subscription


def _update_items(store: Store, subscription: dict[str, Any], specs: Any) -> None:
    if not isinstance(specs, list):
        raise StripeError("Invalid array", param="items")
    current = subscription["items"]["data"]
    period = (
        (current[0]["current_period_start"], current[0]["current_period_end"])
        if current
        else (
            customer_time(store, subscription["customer"]),
            customer_time(store, subscription["customer"]),
        )
    )
    current = copy.deepcopy(current)  # applied only once every spec is valid
    by_id = {item["id"]: item for item in current}
    for index, spec in enumerate(specs):
        if spec.get("id"):
            item = by_id.get(spec["id"])
            if item is None:
                raise StripeError(
                    f"No such subscription item: '{spec['id']}'", param=f"items[{index}][id]"
                )
            if spec.get("deleted") == "true":
                current.remove(item)
                continue
            if "quantity" in spec:
                if item["quantity"] is None:  # metered: usage, not quantity, is billed
                    raise StripeError(
                        "Quantity should not be specified where usage_type is `metered`. "
                        f"Remove quantity from `items[{index}]`.",
                        param=f"items[{index}][quantity]",
                    )
                item["quantity"] = to_int(spec["quantity"], f"items[{index}][quantity]")
            if "metadata" in spec:
                item["metadata"] = metadata_update(item["metadata"], spec["metadata"])
            if "price" in spec:
                price = _price(store, spec["price"], f"items[{index}][price]")
                item["price"] = {k: v for k, v in price.items() if k != "tiers"}
                item["plan"] = plan_for(price)
        else:
            current.append(_item(store, subscription["id"], spec, index, period))
    if not current:
        raise StripeError(
            "A subscription must have at least one item; cancel the subscription instead of "
            "deleting every item.",
            param="items",
        )
    subscription["items"]["data"] = current
    subscription["items"]["total_count"] = len(current)


@route("DELETE", r"/v1/subscriptions/(?P<id>sub_[^/]+)")
def subscription_cancel(request: Request) -> dict[str, Any]:
    from ..cycles import subscription_end, usage_line

    store, params = request.store, request.params
    subscription = _get(request)
    if subscription["status"] == "canceled":
        raise StripeError(
            f"No such subscription: '{subscription['id']}'",  # Stripe's answer for a canceled one
            status=404,
            code="resource_missing",
        )
    now = customer_time(store, subscription["customer"])
    if to_bool(params.get("invoice_now", "false"), "invoice_now"):
        customer = store.get("customer", subscription["customer"])
        invoice = invoice_new(
            store,
            customer=customer,
            billing_reason="subscription_cycle",
            collection_method=subscription["collection_method"],
            days_until_due=subscription.get("days_until_due"),
            subscription=subscription,
            currency=subscription["currency"],
            period=(subscription["items"]["data"][0]["current_period_start"], now),
        )
        for item in subscription["items"]["data"]:
            if (item["price"].get("recurring") or {}).get("usage_type") != "metered":
                continue
            period = (item["current_period_start"], now)
            invoice["lines"]["data"].append(
                usage_line(
                    store,
                    invoice=invoice,
                    subscription=subscription,
                    item=item,
                    period=period,
                    at=now,
                )
            )
        invoice_recalculate(store, invoice)
        store.put("invoice", invoice)
        with store.lock:
            subscription["latest_invoice"] = invoice["id"]
        store.emit("invoice.created", invoice)
        invoice_finalize(store, request.server, invoice)
    details = params.get("cancellation_details")
    with store.lock:
        if isinstance(details, dict):
            for key in ("comment", "feedback"):
                if key in details:
                    subscription["cancellation_details"][key] = details[key] or None
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
        # Cancelling now supersedes a scheduled cancellation (and its request time).
        subscription["canceled_at"] = None
    subscription_end(store, subscription, now)
    return subscription


@route("POST", r"/v1/subscriptions/(?P<id>sub_[^/]+)/resume")
def subscription_resume_route(request: Request) -> dict[str, Any]:
    """Resume a paused subscription (`customer.subscription.resumed`): a new period starts now
    and is invoiced at once."""
    subscription = _get(request)
    if subscription["status"] != "paused":
        raise StripeError(
            "Only a paused subscription can be resumed; this subscription is "
            f"{subscription['status']}.",
        )
    return subscription_resume(request.store, request.server, subscription)


@route("GET", r"/v1/subscriptions")
def subscription_list(request: Request) -> dict[str, Any]:
    params = request.params
    items = request.store.all("subscription")
    # Stripe: without `status`, every subscription that has not been canceled; `ended` is
    # canceled plus incomplete_expired; `all` is everything.
    status = params.get("status")
    if status is None:
        items = [s for s in items if s["status"] != "canceled"]
    elif status == "ended":
        items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    if customer := params.get("customer"):
        items = [s for s in items if s["customer"] == customer]
    if price := params.get("price"):
        items = [s for s in items if any(i["price"]["id"] == price for i in s["items"]["data"])]
    if clock := params.get("test_clock"):
        items = [s for s in items if s.get("test_clock") == clock]
    return list_page(request, items, "/v1/subscriptions")


@route("GET", r"/v1/subscription_items")
def subscription_item_list(request: Request) -> dict[str, Any]:
    subscription_id = request.params.get("subscription")
    if not subscription_id:
        raise StripeError("Missing required param: subscription.", param="subscription")
    subscription = request.store.get("subscription", subscription_id)
    return list_page(request, list(subscription["items"]["data"]), "/v1/subscription_items")


@route("GET", r"/v1/subscription_items/(?P<id>si_[^/]+)")
def subscription_item_retrieve(request: Request) -> dict[str, Any]:
    for subscription in request.store.all("subscription"):
        for item in subscription["items"]["data"]:
            if item["id"] == request.match["id"]:
                return item
    raise StripeError(
        f"No such subscription item: '{request.match['id']}'", status=404, code="resource_missing"
    )
