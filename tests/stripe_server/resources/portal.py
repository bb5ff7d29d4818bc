"""Billing portal sessions (a URL the customer follows to manage payment methods)."""

from typing import Any

from ..app import Request, route
from ..store import StripeError, shape


@route("POST", r"/v1/billing_portal/sessions")
def portal_session_create(request: Request) -> dict[str, Any]:
    store, params = request.store, request.params
    customer = params.get("customer")
    if not customer:
        raise StripeError("Missing required param: customer.", param="customer")
    if store.objects.get("customer", {}).get(customer) is None:
        raise StripeError(
            f"No such customer: '{customer}'", param="customer", code="resource_missing"
        )
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
