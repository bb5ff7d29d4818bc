"""Billing portal sessions (a URL the customer follows to manage payment methods)."""

from typing import Any

from ..app import Request, route
from ..store import shape
from .common import customer_param


@route("POST", r"/v1/billing_portal/sessions")
def portal_session_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    customer = customer_param(store, params)["id"]
    session = shape("billing_portal.session")
    session.update(
        id=store.new_id("bps"),
        configuration=store.new_id("bpc"),
        created=store.now(),
        customer=customer,
        flow=None,
        livemode=False,
        return_url=params.get("return_url"),
        url=f"{request.server.url}/hosted/portal/{customer}",
    )
    store.put("billing_portal.session", session)
    return session
