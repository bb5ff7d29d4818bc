"""API v2: event destinations (where thin events are sent) and `GET /v2/core/events/{id}`.
Request bodies are JSON; timestamps are RFC 3339 strings."""

import secrets
import time
from typing import Any

from ..app import Request, route
from ..store import StripeError
from ..thin_events import DESTINATION, KIND, iso

SECRET_INCLUDE = "webhook_endpoint.signing_secret"


def _present(request: Request, destination: dict[str, Any], include: Any) -> dict[str, Any]:
    out = dict(destination, webhook_endpoint=dict(destination["webhook_endpoint"]))
    if isinstance(include, list) and SECRET_INCLUDE in include:
        secret = request.store.private_of(destination["id"])["signing_secret"]
        out["webhook_endpoint"]["signing_secret"] = secret
    return out


def _missing(kind: str, object_id: str) -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param="id"
    )


@route("POST", r"/v2/core/event_destinations")
def event_destination_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    for field in ("name", "type", "event_payload", "enabled_events"):
        if not params.get(field):
            raise StripeError(f"Missing required param: {field}.", param=field)
    if params["type"] != "webhook_endpoint":
        raise StripeError(
            "Only webhook_endpoint destinations are supported by this server.", param="type"
        )
    url = (params.get("webhook_endpoint") or {}).get("url")
    if not url:
        raise StripeError(
            "Missing required param: webhook_endpoint.url.", param="webhook_endpoint.url"
        )
    now = iso(time.time())
    destination = {
        "id": store.new_id("ed_test"),
        "object": DESTINATION,
        "amazon_eventbridge": None,
        "azure_event_grid": None,
        "created": now,
        "description": params.get("description") or "",
        "enabled_events": list(params["enabled_events"]),
        "event_payload": params["event_payload"],
        "events_from": list(params.get("events_from") or ["self"]),
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "name": params["name"],
        "snapshot_api_version": params.get("snapshot_api_version"),
        "status": "enabled",
        "status_details": None,
        "type": "webhook_endpoint",
        "updated": now,
        "webhook_endpoint": {"signing_secret": None, "url": url},
    }
    store.put(DESTINATION, destination)
    store.private_of(destination["id"])["signing_secret"] = "whsec_" + secrets.token_hex(16)
    return _present(request, destination, params.get("include"))


@route("GET", r"/v2/core/event_destinations/(?P<id>ed_[^/]+)")
def event_destination_retrieve(request: Request) -> dict[str, Any]:
    destination = request.store.objects.get(DESTINATION, {}).get(request.match["id"])
    if destination is None:
        raise _missing("event destination", request.match["id"])
    return _present(request, destination, request.params.get("include"))


@route("DELETE", r"/v2/core/event_destinations/(?P<id>ed_[^/]+)")
def event_destination_delete(request: Request) -> dict[str, Any]:
    destination = event_destination_retrieve(request)
    request.store.delete(DESTINATION, destination["id"])
    return {"id": destination["id"], "object": DESTINATION, "deleted": True}


@route("GET", r"/v2/core/events/(?P<id>evt_[^/]+)")
def v2_event_retrieve(request: Request) -> dict[str, Any]:
    event = request.store.objects.get(KIND, {}).get(request.match["id"])
    if event is None:
        raise _missing("event", request.match["id"])
    return event
