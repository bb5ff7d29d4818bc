"""Events: retrieve and list (filters `type`, `types[]`, `created[gte|lte|gt|lt]`,
`delivery_success`)."""

from typing import Any

from ..app import Request, list_page, route
from ..store import StripeError
from .common import to_bool, to_int

CHECKS = {
    "gte": lambda created, bound: created >= bound,
    "gt": lambda created, bound: created > bound,
    "lte": lambda created, bound: created <= bound,
    "lt": lambda created, bound: created < bound,
}


def created_filter(items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
    """Stripe's `created` list filter: an exact timestamp or `created[gte|gt|lte|lt]`."""
    if created is None:
        return items
    if isinstance(created, dict):
        for op, value in created.items():
            if op not in CHECKS:
                raise StripeError(f"Invalid created filter: {op}", param=f"created[{op}]")
            bound = to_int(value, f"created[{op}]")
            items = [item for item in items if CHECKS[op](item["created"], bound)]
        return items
    value = to_int(created, "created")
    return [item for item in items if item["created"] == value]


@route("GET", r"/v1/events/(?P<id>evt_[^/]+)")
def event_retrieve(request: Request) -> dict[str, Any]:
    return request.store.get("event", request.match["id"])


@route("GET", r"/v1/events")
def event_list(request: Request) -> dict[str, Any]:
    params = request.params
    with request.store.lock:
        items = list(request.store.events)
    if event_type := params.get("type"):
        if event_type.endswith(".*"):
            items = [e for e in items if e["type"].startswith(event_type[:-1])]
        else:
            items = [e for e in items if e["type"] == event_type]
    if types := params.get("types"):
        items = [e for e in items if e["type"] in types]
    items = created_filter(items, params.get("created"))
    if "delivery_success" in params:
        wanted = to_bool(params["delivery_success"], "delivery_success")
        items = [e for e in items if (e["pending_webhooks"] == 0) == wanted]
    return list_page(request, items, "/v1/events")
