"""Events: retrieve and list (filters `type`, `types[]`, `created[gte|lte|gt|lt]`,
`delivery_success`)."""

from typing import Any

from ..app import Request, list_page, route
from ..store import StripeError
from .common import to_bool, to_int


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
    created = params.get("created")
    if isinstance(created, dict):
        bounds = {op: to_int(value, f"created[{op}]") for op, value in created.items()}
        checks = {
            "gte": lambda c, v: c >= v,
            "gt": lambda c, v: c > v,
            "lte": lambda c, v: c <= v,
            "lt": lambda c, v: c < v,
        }
        for op, value in bounds.items():
            if op not in checks:
                raise StripeError(f"Invalid created filter: {op}", param="created")
            items = [e for e in items if checks[op](e["created"], value)]
    elif created is not None:
        value = to_int(created, "created")
        items = [e for e in items if e["created"] == value]
    if "delivery_success" in params:
        wanted = to_bool(params["delivery_success"], "delivery_success")
        items = [e for e in items if (e["pending_webhooks"] == 0) == wanted]
    return list_page(request, items, "/v1/events")
