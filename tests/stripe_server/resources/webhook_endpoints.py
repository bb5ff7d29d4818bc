"""Webhook endpoints: create (returns the signing `secret` once), retrieve, update, list,
delete."""

import secrets
from typing import Any

from ..app import Request, list_page, route
from ..store import StripeError, shape
from .common import deleted, metadata_update


@route("POST", r"/v1/webhook_endpoints")
def webhook_endpoint_create(request: Request) -> dict[str, Any]:
    params, store = request.params, request.store
    if not params.get("url"):
        raise StripeError("Missing required param: url.", param="url")
    if not params.get("enabled_events"):
        raise StripeError("Missing required param: enabled_events.", param="enabled_events")
    endpoint = shape("webhook_endpoint")
    endpoint.update(
        id=store.new_id("we"),
        created=store.now(),
        url=params["url"],
        enabled_events=list(params["enabled_events"]),
        description=params.get("description"),
        api_version=params.get("api_version"),
        metadata=metadata_update({}, params.get("metadata", {})),
        status="enabled",
    )
    stored = dict(endpoint, secret="whsec_" + secrets.token_hex(16))
    store.put("webhook_endpoint", stored)
    return stored


@route("GET", r"/v1/webhook_endpoints/(?P<id>we_[^/]+)")
def webhook_endpoint_retrieve(request: Request) -> dict[str, Any]:
    endpoint = request.store.get("webhook_endpoint", request.match["id"])
    return {key: value for key, value in endpoint.items() if key != "secret"}


@route("POST", r"/v1/webhook_endpoints/(?P<id>we_[^/]+)")
def webhook_endpoint_update(request: Request) -> dict[str, Any]:
    endpoint = request.store.get("webhook_endpoint", request.match["id"])
    params = request.params
    with request.store.lock:
        for field in ("url", "description"):
            if field in params:
                endpoint[field] = params[field]
        if "enabled_events" in params:
            endpoint["enabled_events"] = list(params["enabled_events"])
        if "disabled" in params:
            endpoint["status"] = "disabled" if params["disabled"] == "true" else "enabled"
        if "metadata" in params:
            endpoint["metadata"] = metadata_update(endpoint["metadata"], params["metadata"])
    return webhook_endpoint_retrieve(request)


@route("DELETE", r"/v1/webhook_endpoints/(?P<id>we_[^/]+)")
def webhook_endpoint_delete(request: Request) -> dict[str, Any]:
    return deleted(request.store.delete("webhook_endpoint", request.match["id"]))


@route("GET", r"/v1/webhook_endpoints")
def webhook_endpoint_list(request: Request) -> dict[str, Any]:
    items = [
        {key: value for key, value in endpoint.items() if key != "secret"}
        for endpoint in request.store.all("webhook_endpoint")
    ]
    return list_page(request, items, "/v1/webhook_endpoints")
