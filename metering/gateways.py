"""The metering app's boundary to Stripe for customers, the catalog, subscriptions, invoice
items and portal sessions. Plain dicts in and out; `stripe.StripeError` propagates.

Every create carries an idempotency key derived from our own row or key, so a retry within
Stripe's window replays the first answer; past it, our recorded ids are the guard.
"""

from typing import Any

import stripe
from django.conf import settings

from .usage_types import METER_CUSTOMER_KEY, METER_VALUE_KEY


def _opts() -> dict[str, Any]:
    return {"api_key": settings.STRIPE_SECRET_KEY}


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def is_missing(error: stripe.StripeError) -> bool:
    """Stripe answered 404 (the object does not exist)."""
    return isinstance(error, stripe.InvalidRequestError) and error.http_status == 404


# --- customers --------------------------------------------------------------------------------


def customer_retrieve(customer_id: str) -> dict[str, Any] | None:
    """The customer, or None when Stripe has no such customer (or it was deleted)."""
    try:
        customer = _plain(stripe.Customer.retrieve(customer_id, **_opts()))
    except stripe.StripeError as error:
        if is_missing(error):
            return None
        raise
    return None if customer.get("deleted") else customer


def customer_set_metadata(customer_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    return _plain(stripe.Customer.modify(customer_id, metadata=metadata, **_opts()))


def customers_by_email(email: str) -> list[dict[str, Any]]:
    return [
        _plain(customer)
        for customer in stripe.Customer.list(email=email, limit=100, **_opts()).auto_paging_iter()
    ]


def customer_create(
    *, name: str, email: str, metadata: dict[str, str], idempotency_key: str
) -> dict[str, Any]:
    return _plain(
        stripe.Customer.create(
            name=name,
            email=email or None,
            metadata=metadata,
            idempotency_key=idempotency_key,
            **_opts(),
        )
    )


# --- catalog ----------------------------------------------------------------------------------


def products_active() -> list[dict[str, Any]]:
    return [
        _plain(product)
        for product in stripe.Product.list(active=True, limit=100, **_opts()).auto_paging_iter()
    ]


def product_create(*, name: str, metadata: dict[str, str], idempotency_key: str) -> dict:
    return _plain(
        stripe.Product.create(
            name=name, metadata=metadata, idempotency_key=idempotency_key, **_opts()
        )
    )


def product_set_metadata(product_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    return _plain(stripe.Product.modify(product_id, metadata=metadata, **_opts()))


def meters_active() -> list[dict[str, Any]]:
    return [
        _plain(meter)
        for meter in stripe.billing.Meter.list(
            status="active", limit=100, **_opts()
        ).auto_paging_iter()
    ]


def meter_create(*, event_name: str, display_name: str, idempotency_key: str) -> dict:
    return _plain(
        stripe.billing.Meter.create(
            display_name=display_name,
            event_name=event_name,
            default_aggregation={"formula": "sum"},
            customer_mapping={"event_payload_key": METER_CUSTOMER_KEY, "type": "by_id"},
            value_settings={"event_payload_key": METER_VALUE_KEY},
            idempotency_key=idempotency_key,
            **_opts(),
        )
    )


def price_by_lookup_key(lookup_key: str) -> dict[str, Any] | None:
    found = stripe.Price.list(lookup_keys=[lookup_key], expand=["data.tiers"], limit=1, **_opts())
    return _plain(found.data[0]) if found.data else None


def price_retrieve(price_id: str) -> dict[str, Any] | None:
    try:
        return _plain(stripe.Price.retrieve(price_id, expand=["tiers"], **_opts()))
    except stripe.StripeError as error:
        if is_missing(error):
            return None
        raise


def price_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _plain(stripe.Price.create(**params, idempotency_key=idempotency_key, **_opts()))


# --- subscriptions, invoice items, portal -----------------------------------------------------


def subscription_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _plain(stripe.Subscription.create(**params, idempotency_key=idempotency_key, **_opts()))


def subscription_retrieve(subscription_id: str) -> dict[str, Any] | None:
    try:
        return _plain(stripe.Subscription.retrieve(subscription_id, **_opts()))
    except stripe.StripeError as error:
        if is_missing(error):
            return None
        raise


def subscriptions_for_customer(customer_id: str) -> list[dict[str, Any]]:
    return [
        _plain(subscription)
        for subscription in stripe.Subscription.list(
            customer=customer_id, limit=100, **_opts()
        ).auto_paging_iter()
    ]


def invoice_collection_method(invoice_id: str) -> tuple[str, int | None] | None:
    """A legacy Stripe invoice's collection method and days until due; None if unknown."""
    try:
        invoice = stripe.Invoice.retrieve(invoice_id, **_opts())
    except stripe.StripeError as error:
        if is_missing(error):
            return None
        raise
    return invoice.get("collection_method"), invoice.get("days_until_due")


def invoice_item_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _plain(stripe.InvoiceItem.create(**params, idempotency_key=idempotency_key, **_opts()))


def invoice_items_for_customer(customer_id: str) -> list[dict[str, Any]]:
    return [
        _plain(item)
        for item in stripe.InvoiceItem.list(
            customer=customer_id, limit=100, **_opts()
        ).auto_paging_iter()
    ]


def portal_session_create(*, customer_id: str, return_url: str) -> dict[str, Any]:
    return _plain(
        stripe.billing_portal.Session.create(customer=customer_id, return_url=return_url, **_opts())
    )
