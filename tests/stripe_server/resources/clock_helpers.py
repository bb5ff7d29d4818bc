"""Test clocks: create, retrieve, list, delete, advance (runs the billing cycles on the way)."""

from typing import Any

from ..app import Request, list_page, route
from ..cycles import clock_advance
from ..store import StripeError, shape
from .common import deleted, to_int

KIND = "test_helpers.test_clock"


@route("POST", r"/v1/test_helpers/test_clocks")
def test_clock_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    if "frozen_time" not in params:
        raise StripeError("Missing required param: frozen_time.", param="frozen_time")
    clock = shape(KIND)
    now = store.now()
    clock.update(
        id=store.new_id("clock"),
        created=now,
        deletes_after=now + 30 * 86_400,
        frozen_time=to_int(params["frozen_time"], "frozen_time"),
        name=params.get("name"),
        status="ready",
        status_details={},
    )
    store.put(KIND, clock)
    store.emit("test_helpers.test_clock.created", clock)
    return clock


@route("GET", r"/v1/test_helpers/test_clocks/(?P<id>clock_[^/]+)")
def test_clock_retrieve(request: Request) -> dict[str, Any]:
    return request.store.get(KIND, request.match["id"], label="test clock")


@route("GET", r"/v1/test_helpers/test_clocks")
def test_clock_list(request: Request) -> dict[str, Any]:
    return list_page(request, request.store.all(KIND), "/v1/test_helpers/test_clocks")


@route("DELETE", r"/v1/test_helpers/test_clocks/(?P<id>clock_[^/]+)")
def test_clock_delete(request: Request) -> dict[str, Any]:
    clock = request.store.delete(KIND, request.match["id"])
    request.store.emit("test_helpers.test_clock.deleted", clock)
    return deleted(clock)


@route("POST", r"/v1/test_helpers/test_clocks/(?P<id>clock_[^/]+)/advance")
def test_clock_advance(request: Request) -> dict[str, Any]:
    store = request.store
    clock = test_clock_retrieve(request)
    if "frozen_time" not in request.params:
        raise StripeError("Missing required param: frozen_time.", param="frozen_time")
    target = to_int(request.params["frozen_time"], "frozen_time")
    if target <= clock["frozen_time"]:
        raise StripeError(
            "The frozen_time must be after the current frozen_time of the test clock.",
            param="frozen_time",
        )
    with store.lock:
        clock["status"] = "advancing"
        clock["status_details"] = {"advancing": {"target_frozen_time": target}}
    store.emit("test_helpers.test_clock.advancing", clock)
    clock_advance(store, request.server, clock, target)
    with store.lock:
        clock["status"] = "ready"
        clock["status_details"] = {}
    store.emit("test_helpers.test_clock.ready", clock)
    return clock
