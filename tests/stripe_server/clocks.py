"""Time as each object sees it: a customer on a test clock lives at the clock's frozen time."""

from typing import Any

from .store import Store


def clock_time(store: Store, clock_id: str | None) -> int:
    if clock_id:
        clock = store.objects.get("test_helpers.test_clock", {}).get(clock_id)
        if clock is not None:
            return clock["frozen_time"]
    return store.now()


def customer_time(store: Store, customer_id: str | None) -> int:
    """The current time for this customer: its test clock's frozen time, else real time."""
    customer: dict[str, Any] | None = None
    if customer_id:
        customer = store.objects.get("customer", {}).get(customer_id)
    return clock_time(store, customer.get("test_clock") if customer else None)
