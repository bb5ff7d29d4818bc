"""`GET /v1/account`: the account the API key belongs to."""

from typing import Any

from ..app import Request, route
from ..store import shape


def _account(request: Request) -> dict[str, Any]:
    store = request.store
    with store.lock:
        existing = store.objects.get("account", {}).get(store.account_id)
        if existing is None:
            existing = shape("account")
            existing.update(
                id=store.account_id,
                email="billing@adventive.com",
                country="US",
                default_currency="usd",
                charges_enabled=True,
                payouts_enabled=True,
                details_submitted=True,
            )
            existing["business_profile"]["name"] = "Adventive"
            existing["settings"]["dashboard"]["display_name"] = "Adventive"
            store.put("account", existing)
    return existing


@route("GET", r"/v1/account")
def account_retrieve(request: Request) -> dict[str, Any]:
    return _account(request)


@route("GET", r"/v1/accounts/(?P<id>[^/]+)")
def account_retrieve_by_id(request: Request) -> dict[str, Any]:
    account = _account(request)
    if request.match["id"] != account["id"]:
        return request.store.get("account", request.match["id"])
    return account
