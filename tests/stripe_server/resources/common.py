"""Helpers shared by resource handlers."""

from typing import Any

from ..store import StripeError


def metadata_update(current: dict[str, str], given: Any) -> dict[str, str]:
    """Stripe's metadata rules: merge keys; an empty string value deletes that key;
    an empty string for the whole field clears it."""
    if given in ("", None):
        return {} if given == "" else current
    if not isinstance(given, dict):
        raise StripeError("Invalid metadata: must be a hash", param="metadata")
    merged = dict(current)
    for key, value in given.items():
        if len(key) > 40:
            raise StripeError(
                "Metadata keys can have up to 40 characters", param=f"metadata[{key}]"
            )
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)[:500]
    if len(merged) > 50:
        raise StripeError("Metadata can have up to 50 keys", param="metadata")
    return merged


def to_int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise StripeError(f"Invalid integer: {value}", param=param) from exc


def to_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise StripeError(f"Invalid boolean: {value}", param=param)


def deleted(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}


def customer_param(store: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The customer a request's required `customer` parameter names, or Stripe's error."""
    customer_id = params.get("customer")
    if not customer_id:
        raise StripeError("Missing required param: customer.", param="customer")
    customer = store.objects.get("customer", {}).get(customer_id)
    if customer is None:
        raise StripeError(
            f"No such customer: '{customer_id}'", param="customer", code="resource_missing"
        )
    return customer


def reject_unknown(params: dict[str, Any], known: set[str], prefix: str = "") -> None:
    """Stripe's unknown-parameter 400 from a hand-written list, for the few routes that are not
    Stripe's API and so have no generated params type (the rest: `conformance.check_request`)."""
    for key in params:
        if key not in known:
            name = f"{prefix}[{key}]" if prefix else key
            raise StripeError(f"Received unknown parameter: {name}", param=name)
