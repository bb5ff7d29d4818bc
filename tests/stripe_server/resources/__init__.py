"""Resource handlers; importing this package registers their routes."""

from typing import Any

from . import account, customers, events, webhook_endpoints  # noqa: F401

EXPANDERS: dict[tuple[str | None, str], Any] = {**customers.EXPANDERS}
