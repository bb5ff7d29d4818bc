"""Structured datapoints: one `BillingEvent` row and one JSON log line each.

The names and dimensions follow the deployment document (webhook_received, pdf_rendered,
pdf_render_failed, email_sent, email_failed, reconcile_drift, reconcile_clean, ...).
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from .models import BillingEvent

logger = logging.getLogger("billing.datapoints")


def datapoint_record(
    *, name: str, dimensions: Mapping[str, Any] | None = None, at: datetime | None = None
) -> BillingEvent:
    """Append one datapoint and log it as one JSON line. Append-only; never updated."""
    dims = {key: _plain(value) for key, value in (dimensions or {}).items()}
    event = BillingEvent.objects.create(
        name=name, dimensions=dims, occurred_at=at or timezone.now()
    )
    logger.info(name, extra={"datapoint": name, "dimensions": dims})
    return event


def _plain(value: Any) -> Any:
    """JSON-safe values: ints stay ints (money is minor units); others become strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
