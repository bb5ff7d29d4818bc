"""The metering app's boundary to Stripe for customers, the catalog, subscriptions, invoice
items and portal sessions, through the one Stripe client (`billing_project.stripe_api`).
Plain dicts in and out; `StripeApiError` propagates.

Every create carries an idempotency key derived from our own row or key, so a retry within
Stripe's window replays the first answer; past it, our recorded ids are the guard.
"""

from typing import Any

from billing_project import stripe_api
from billing_project.stripe_api import StripeApiError

from .usage_types import METER_CUSTOMER_KEY, METER_VALUE_KEY

__all__ = ["StripeApiError"]


# --- customers --------------------------------------------------------------------------------


def customer_retrieve(customer_id: str) -> dict[str, Any] | None:
    """The customer, or None when Stripe has no such customer (or it was deleted)."""
    return stripe_api.retrieve(f"/v1/customers/{customer_id}")


def customer_set_metadata(customer_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    return stripe_api.request("post", f"/v1/customers/{customer_id}", metadata=metadata)


def customers_by_email(email: str) -> list[dict[str, Any]]:
    return list(stripe_api.pages("/v1/customers", email=email))


def customer_create(
    *, name: str, email: str, metadata: dict[str, str], idempotency_key: str
) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "metadata": metadata}
    if email:
        params["email"] = email
    return stripe_api.request("post", "/v1/customers", idempotency_key=idempotency_key, **params)


# --- catalog ----------------------------------------------------------------------------------


def products_active() -> list[dict[str, Any]]:
    return list(stripe_api.pages("/v1/products", active=True))


def product_create(*, name: str, metadata: dict[str, str], idempotency_key: str) -> dict:
    return stripe_api.request(
        "post", "/v1/products", idempotency_key=idempotency_key, name=name, metadata=metadata
    )


def product_set_metadata(product_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    return stripe_api.request("post", f"/v1/products/{product_id}", metadata=metadata)


def meters_active() -> list[dict[str, Any]]:
    return list(stripe_api.pages("/v1/billing/meters", status="active"))


def meter_create(*, event_name: str, display_name: str, idempotency_key: str) -> dict:
    return stripe_api.request(
        "post",
        "/v1/billing/meters",
        idempotency_key=idempotency_key,
        display_name=display_name,
        event_name=event_name,
        default_aggregation={"formula": "sum"},
        customer_mapping={"event_payload_key": METER_CUSTOMER_KEY, "type": "by_id"},
        value_settings={"event_payload_key": METER_VALUE_KEY},
    )


def price_by_lookup_key(lookup_key: str) -> dict[str, Any] | None:
    found = stripe_api.request(
        "get", "/v1/prices", lookup_keys=[lookup_key], expand=["data.tiers"], limit=1
    )
    return found["data"][0] if found["data"] else None


def price_retrieve(price_id: str) -> dict[str, Any] | None:
    return stripe_api.retrieve(f"/v1/prices/{price_id}", expand=["tiers"])


def price_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return stripe_api.request("post", "/v1/prices", idempotency_key=idempotency_key, **params)


# --- subscriptions, invoice items, portal -----------------------------------------------------


def subscription_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return stripe_api.request(
        "post", "/v1/subscriptions", idempotency_key=idempotency_key, **params
    )


def subscription_retrieve(subscription_id: str) -> dict[str, Any] | None:
    return stripe_api.retrieve(f"/v1/subscriptions/{subscription_id}")


def subscriptions_for_customer(customer_id: str) -> list[dict[str, Any]]:
    return list(stripe_api.pages("/v1/subscriptions", customer=customer_id))


def invoice_payment_terms(invoice_id: str) -> tuple[str, int | None] | None:
    """A legacy Stripe invoice's collection method and its payment terms in days (from its
    due date against its finalization: Stripe's Invoice has no `days_until_due`); None if
    Stripe has no such invoice."""
    invoice = stripe_api.retrieve(f"/v1/invoices/{invoice_id}")
    if invoice is None:
        return None
    return invoice.get("collection_method"), payment_terms_days(invoice)


def payment_terms_days(invoice: dict[str, Any]) -> int | None:
    """Whole days from an invoice's finalization (or creation) to its due date, or None."""
    due = invoice.get("due_date")
    if not due:
        return None
    transitions = invoice.get("status_transitions") or {}
    issued = transitions.get("finalized_at") or invoice.get("effective_at") or invoice["created"]
    return max(0, round((due - issued) / 86_400))


def invoice_item_create(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return stripe_api.request("post", "/v1/invoiceitems", idempotency_key=idempotency_key, **params)


def invoice_items_for_customer(customer_id: str) -> list[dict[str, Any]]:
    return list(stripe_api.pages("/v1/invoiceitems", customer=customer_id))


def portal_session_create(*, customer_id: str, return_url: str) -> dict[str, Any]:
    return stripe_api.request(
        "post", "/v1/billing_portal/sessions", customer=customer_id, return_url=return_url
    )
