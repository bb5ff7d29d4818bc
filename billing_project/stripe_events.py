"""Our handling of a verified Stripe event, dispatched through one table: event type -> handlers.

Apps register their handlers in `AppConfig.ready` (`stripe_event_handlers_register`). The intake
task (`billing_project.webhook_intake`) calls `stripe_event_dispatch` with the event exactly as
Stripe signed it (a plain dict at the endpoint's pinned API version), inside the transaction
that records the event. Handlers make no network call: they record, and start work with
`transaction.on_commit`. They must be idempotent on their own keys: Stripe sends different
events for the same object, in any order.
"""

from collections.abc import Callable, Iterable
from typing import Any

Handler = Callable[[dict[str, Any]], None]

_HANDLERS: dict[str, list[Handler]] = {}


def stripe_event_handlers_register(event_types: Iterable[str], handler: Handler) -> None:
    """Call `handler(event)` for each of these event types (registering twice is harmless)."""
    for event_type in event_types:
        handlers = _HANDLERS.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)


def stripe_event_types() -> list[str]:
    """Event types something here handles."""
    return sorted(_HANDLERS)


def stripe_event_dispatch(event: dict[str, Any]) -> int:
    """Run the handlers of the event's type; how many ran."""
    handlers = _HANDLERS.get(event.get("type") or "", [])
    for handler in handlers:
        handler(event)
    return len(handlers)
