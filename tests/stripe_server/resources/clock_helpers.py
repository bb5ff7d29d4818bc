"""Test clocks: create, retrieve, list, delete, advance (runs the billing cycles on the way)."""

import copy
import threading
import time
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
    """Stripe answers an advance with the clock `advancing` and does the work afterwards; the
    clock is `ready` again once every cycle on the way has run. Here the work runs before the
    answer is sent unless `server.test_clock_advance_delay` is set (then on a thread, after that
    many seconds), but the answer is always the `advancing` clock Stripe sends."""
    store, server = request.store, request.server
    clock = test_clock_retrieve(request)
    if "frozen_time" not in request.params:
        raise StripeError("Missing required param: frozen_time.", param="frozen_time")
    target = to_int(request.params["frozen_time"], "frozen_time")
    with store.lock:
        if clock["status"] == "advancing":
            raise StripeError(
                "The test clock is currently advancing. Wait until it is ready before advancing "
                "it again.",
                code="test_clock_advancing",
            )
        if target <= clock["frozen_time"]:
            raise StripeError(
                "The frozen_time must be after the current frozen_time of the test clock.",
                param="frozen_time",
            )
        clock["status"] = "advancing"
        clock["status_details"] = {"advancing": {"target_frozen_time": target}}
        answer = copy.deepcopy(clock)
    store.emit("test_helpers.test_clock.advancing", clock)
    delay = server.test_clock_advance_delay
    if delay is None:
        _advance(store, server, clock, target)
    else:

        def later() -> None:
            time.sleep(delay)
            _advance(store, server, clock, target)

        threading.Thread(target=later, name=f"advance-{clock['id']}", daemon=True).start()
    return answer


def _advance(store: Any, server: Any, clock: dict[str, Any], target: int) -> None:
    clock_advance(store, server, clock, target)
    with store.lock:
        clock["status"] = "ready"
        clock["status_details"] = {}
    store.emit("test_helpers.test_clock.ready", clock)
