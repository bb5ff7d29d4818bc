"""Billing cycles: what happens as (test-clock) time passes a subscription's period end.

At a period end Stripe creates a `subscription_cycle` draft invoice: licensed prices billed in
advance for the new period, metered prices billed in arrears for the period that ended (from
the meter events received), pending invoice items attached. The draft finalizes after a grace
period (`finalization_grace_seconds`, 1 h by default); meter events that arrive inside the grace
period still count, later ones do not. Then payment is attempted for `charge_automatically`.
"""

from typing import Any

from .clocks import customer_time
from .invoicing import (
    attach_pending_items,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_new,
    invoice_recalculate,
    invoice_void,
    line_for_subscription_item,
)
from .periods import add_interval
from .store import Store


def _product_name(store: Store, product_id: str) -> str:
    product = store.objects.get("product", {}).get(product_id)
    return product["name"] if product else product_id


def _is_metered(price: dict[str, Any]) -> bool:
    return (price.get("recurring") or {}).get("usage_type") == "metered"


def _full_price(store: Store, price: dict[str, Any]) -> dict[str, Any]:
    """The stored price with its tiers (subscription items may hold a copy without them)."""
    return store.objects.get("price", {}).get(price["id"], price)


def metered_quantity(
    store: Store,
    *,
    customer_id: str,
    price: dict[str, Any],
    period: tuple[int, int],
    received_before: int,
) -> int:
    from .resources.meters import usage_total

    meter_id = (price.get("recurring") or {}).get("meter")
    if not meter_id:
        return 0
    # Stripe bills negative period usage as zero.
    return max(
        0,
        usage_total(
            store,
            customer_id=customer_id,
            meter_id=meter_id,
            start=period[0],
            end=period[1],
            received_before=received_before,
        ),
    )


def item_line(
    store: Store,
    *,
    invoice: dict[str, Any],
    subscription: dict[str, Any],
    item: dict[str, Any],
    period: tuple[int, int],
    quantity: int,
    proration_fraction: tuple[int, int] | None = None,
) -> dict[str, Any]:
    from .pricing import line_amount, unit_amount_decimal_for

    price = _full_price(store, item["price"])
    amount = line_amount(price, quantity)
    if proration_fraction is not None:
        used, whole = proration_fraction
        amount = (amount * used * 2 + whole) // (whole * 2) if whole else 0
    name = _product_name(store, price["product"])
    metered = _is_metered(price)
    description = f"{name} ({quantity:,} units)" if metered else f"{quantity} x {name}"
    return line_for_subscription_item(
        store,
        invoice=invoice,
        item=item,
        subscription=subscription,
        quantity=quantity,
        amount=amount,
        unit_amount_decimal=unit_amount_decimal_for(price, quantity),
        period=period,
        description=description,
        proration=proration_fraction is not None,
    )


def usage_line(
    store: Store,
    *,
    invoice: dict[str, Any],
    subscription: dict[str, Any],
    item: dict[str, Any],
    period: tuple[int, int],
    at: int,
) -> dict[str, Any]:
    """A metered item's line: the usage its meter received for `period` up to time `at`."""
    quantity = metered_quantity(
        store,
        customer_id=subscription["customer"],
        price=item["price"],
        period=period,
        received_before=at,
    )
    return item_line(
        store,
        invoice=invoice,
        subscription=subscription,
        item=item,
        period=period,
        quantity=quantity,
    )


def _recurring(item: dict[str, Any]) -> tuple[str, int]:
    recurring = item["price"].get("recurring") or {}
    return recurring.get("interval", "month"), recurring.get("interval_count", 1)


TRIAL_WILL_END_NOTICE = 3 * 86_400


def subscription_trial_will_end(store: Store, subscription: dict[str, Any]) -> None:
    """`customer.subscription.trial_will_end`, once per trial, three days before it ends."""
    bookkeeping = store.private_of(subscription["id"])
    if bookkeeping.get("trial_will_end_sent") == subscription["trial_end"]:
        return
    bookkeeping["trial_will_end_sent"] = subscription["trial_end"]
    store.emit("customer.subscription.trial_will_end", subscription)


def _has_payment_method(store: Store, subscription: dict[str, Any]) -> bool:
    customer = store.objects.get("customer", {}).get(subscription["customer"]) or {}
    return bool(
        subscription.get("default_payment_method")
        or (customer.get("invoice_settings") or {}).get("default_payment_method")
    )


def _trial_ends(store: Store, subscription: dict[str, Any], at: int) -> bool:
    """The trial is over: the subscription goes on (active), or, without a payment method,
    does what `trial_settings.end_behavior.missing_payment_method` says. True if it goes on."""
    behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
    if behavior == "create_invoice" or _has_payment_method(store, subscription):
        with store.lock:
            subscription["status"] = "active"
        return True
    if behavior == "pause":
        with store.lock:
            subscription["status"] = "paused"
        store.emit("customer.subscription.paused", subscription)
        store.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes={"status": "trialing"},
        )
        return False
    with store.lock:
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
    subscription_end(store, subscription, at)
    return False


def subscription_resume(store: Store, server: Any, subscription: dict[str, Any]) -> dict[str, Any]:
    """A paused subscription starts a new period now, invoiced at once."""
    at = customer_time(store, subscription["customer"])
    items = subscription["items"]["data"]
    interval, count = _recurring(items[0])
    end = add_interval(at, anchor=at, interval=interval, count=count)
    customer = store.get("customer", subscription["customer"])
    with store.lock:
        subscription.update(status="active", billing_cycle_anchor=at)
        for item in items:
            item["current_period_start"] = at
            item["current_period_end"] = end
    invoice = invoice_new(
        store,
        customer=customer,
        billing_reason="subscription_update",
        collection_method=subscription["collection_method"],
        days_until_due=subscription.get("days_until_due"),
        subscription=subscription,
        period=(at, at),
        currency=subscription["currency"],
    )
    for item in items:
        if not _is_metered(item["price"]):
            invoice["lines"]["data"].append(
                item_line(
                    store,
                    invoice=invoice,
                    subscription=subscription,
                    item=item,
                    period=(at, end),
                    quantity=item.get("quantity") or 1,
                )
            )
    invoice_recalculate(store, invoice)
    store.put("invoice", invoice)
    with store.lock:
        subscription["latest_invoice"] = invoice["id"]
    store.emit("customer.subscription.resumed", subscription)
    store.emit(
        "customer.subscription.updated", subscription, previous_attributes={"status": "paused"}
    )
    store.emit("invoice.created", invoice)
    invoice_finalize(store, server, invoice)
    return subscription


def subscription_cycle(
    store: Store, server: Any, subscription: dict[str, Any], at: int
) -> dict[str, Any] | None:
    """Close the period ending at `at`: the cycle draft invoice, then roll the items forward.
    At the end of a trial the subscription may pause or cancel instead (then None)."""
    if subscription["status"] == "trialing" and not _trial_ends(store, subscription, at):
        return None
    customer = store.get("customer", subscription["customer"])
    items = subscription["items"]["data"]
    ended = (items[0]["current_period_start"], items[0]["current_period_end"])
    interval, count = _recurring(items[0])
    next_end = add_interval(
        at, anchor=subscription["billing_cycle_anchor"], interval=interval, count=count
    )
    ending = subscription.get("cancel_at_period_end") or (
        subscription.get("cancel_at") is not None and subscription["cancel_at"] <= at
    )
    invoice = invoice_new(
        store,
        customer=customer,
        billing_reason="subscription_cycle",
        collection_method=subscription["collection_method"],
        days_until_due=subscription.get("days_until_due"),
        subscription=subscription,
        period=ended,
        currency=subscription.get("currency") or "usd",
    )
    invoice["created"] = at
    previous_latest = subscription.get("latest_invoice")
    for item in items:
        if _is_metered(item["price"]):
            invoice["lines"]["data"].append(
                usage_line(
                    store,
                    invoice=invoice,
                    subscription=subscription,
                    item=item,
                    period=ended,
                    at=at,
                )
            )
        elif not ending:
            invoice["lines"]["data"].append(
                item_line(
                    store,
                    invoice=invoice,
                    subscription=subscription,
                    item=item,
                    period=(at, next_end),
                    quantity=item.get("quantity") or 1,
                )
            )
    attach_pending_items(store, invoice)
    invoice_recalculate(store, invoice)
    invoice["automatically_finalizes_at"] = at + server.finalization_grace_seconds
    store.put("invoice", invoice)
    with store.lock:
        subscription["latest_invoice"] = invoice["id"]
    store.emit("invoice.created", invoice)
    previous = {"items": {"data": [dict(i) for i in items]}, "latest_invoice": previous_latest}
    if ending:
        subscription_end(store, subscription, at)
    else:
        with store.lock:
            for item in items:
                item["current_period_start"] = at
                item["current_period_end"] = next_end
        store.emit("customer.subscription.updated", subscription, previous_attributes=previous)
    return invoice


def subscription_end(store: Store, subscription: dict[str, Any], at: int) -> None:
    with store.lock:
        subscription.update(
            status="canceled", ended_at=at, canceled_at=subscription.get("canceled_at") or at
        )
    store.emit("customer.subscription.deleted", subscription)


def subscription_resume_collection(store: Store, subscription: dict[str, Any]) -> None:
    """`pause_collection.resumes_at` has passed: collection resumes (an update, not a resume)."""
    with store.lock:
        previous = {"pause_collection": subscription["pause_collection"]}
        subscription["pause_collection"] = None
    store.emit("customer.subscription.updated", subscription, previous_attributes=previous)


def draft_finalize(store: Store, server: Any, invoice: dict[str, Any]) -> None:
    """Finalize a cycle draft at its time: late meter events inside the grace period count."""
    now = invoice["automatically_finalizes_at"]
    parent = invoice.get("parent") or {}
    subscription_id = (parent.get("subscription_details") or {}).get("subscription")
    subscription = (
        store.objects.get("subscription", {}).get(subscription_id) if subscription_id else None
    )
    if subscription is not None:
        items = {item["id"]: item for item in subscription["items"]["data"]}
        for index, line in enumerate(invoice["lines"]["data"]):
            details = (line.get("parent") or {}).get("subscription_item_details") or {}
            item = items.get(details.get("subscription_item"))
            if item is None or not _is_metered(item["price"]):
                continue
            period = (line["period"]["start"], line["period"]["end"])
            quantity = metered_quantity(
                store,
                customer_id=invoice["customer"],
                price=item["price"],
                period=period,
                received_before=now,
            )
            if quantity != line["quantity"]:
                fresh = item_line(
                    store,
                    invoice=invoice,
                    subscription=subscription,
                    item=item,
                    period=period,
                    quantity=quantity,
                )
                fresh["id"] = line["id"]
                invoice["lines"]["data"][index] = fresh
        invoice_recalculate(store, invoice)
    pause = (subscription or {}).get("pause_collection") or {}
    behavior = pause.get("behavior") if pause else None
    if behavior == "keep_as_draft":
        invoice["automatically_finalizes_at"] = None
        invoice["auto_advance"] = False
        return
    if behavior in ("mark_uncollectible", "void"):
        invoice["auto_advance"] = False
    invoice_finalize(store, server, invoice)
    if behavior == "mark_uncollectible" and invoice["status"] == "open":
        invoice_mark_uncollectible(store, invoice)
    elif behavior == "void" and invoice["status"] == "open":
        invoice_void(store, invoice)


def _next_due(store: Store, clock_id: str, target: int) -> tuple[int, str, dict[str, Any]] | None:
    """The earliest scheduled thing on this clock at or before `target`."""
    candidates: list[tuple[int, str, dict[str, Any]]] = []
    for invoice in store.all("invoice"):
        due = invoice.get("automatically_finalizes_at")
        if (
            invoice.get("test_clock") == clock_id
            and invoice["status"] == "draft"
            and due
            and due <= target
        ):
            candidates.append((due, "finalize", invoice))
    for subscription in store.all("subscription"):
        if subscription.get("test_clock") != clock_id or subscription["status"] in (
            "canceled",
            "incomplete_expired",
            "paused",
        ):
            continue
        notice_at = (subscription.get("trial_end") or 0) - TRIAL_WILL_END_NOTICE
        if (
            subscription["status"] == "trialing"
            and notice_at <= target
            and store.private_of(subscription["id"]).get("trial_will_end_sent")
            != subscription["trial_end"]
        ):
            candidates.append((notice_at, "trial_will_end", subscription))
        end = (
            subscription["items"]["data"][0]["current_period_end"]
            if subscription["items"]["data"]
            else None
        )
        resumes_at = (subscription.get("pause_collection") or {}).get("resumes_at")
        if resumes_at is not None and resumes_at <= target:
            candidates.append((resumes_at, "resume", subscription))
        cancel_at = subscription.get("cancel_at")
        if cancel_at is not None and cancel_at <= target and (end is None or cancel_at < end):
            candidates.append((cancel_at, "cancel", subscription))
        elif end is not None and end <= target:
            candidates.append((end, "cycle", subscription))
    if not candidates:
        return None
    order = {"trial_will_end": 0, "finalize": 1, "resume": 2, "cancel": 3, "cycle": 4}
    return min(candidates, key=lambda c: (c[0], order[c[1]], c[2]["id"]))


def clock_advance(store: Store, server: Any, clock: dict[str, Any], target: int) -> None:
    """Move a test clock to `target`, running every cycle and finalization due on the way."""
    while True:
        due = _next_due(store, clock["id"], target)
        if due is None:
            break
        at, kind, obj = due
        with store.lock:
            clock["frozen_time"] = max(clock["frozen_time"], at)
        if kind == "finalize":
            draft_finalize(store, server, obj)
        elif kind == "resume":
            subscription_resume_collection(store, obj)
        elif kind == "trial_will_end":
            subscription_trial_will_end(store, obj)
        elif kind == "cancel":
            subscription_end(store, obj, at)
        else:
            subscription_cycle(store, server, obj, at)
    with store.lock:
        clock["frozen_time"] = target


def now_for(store: Store, subscription: dict[str, Any]) -> int:
    return customer_time(store, subscription["customer"])
