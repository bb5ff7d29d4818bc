"""The rate limit of `POST /usage`: requests per producer token per minute, in PostgreSQL.

A fixed one-minute window counted on the token's row (locked for the increment), so every web
process shares one count. Over the limit a request is answered 429 with `Retry-After` (seconds
to the next window) and nothing is read or stored.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .usage_models import ProducerToken

WINDOW = timedelta(minutes=1)


def usage_rate_take(*, token: ProducerToken, now: datetime | None = None) -> int | None:
    """Count one request for `token`; None when allowed, else the seconds to wait."""
    limit = settings.USAGE_REQUESTS_PER_MINUTE
    if limit <= 0:
        return None
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0)
    with transaction.atomic():
        row = (
            ProducerToken.objects.select_for_update()
            .only("rate_window_start", "rate_window_count")
            .get(pk=token.pk)
        )
        count = row.rate_window_count + 1 if row.rate_window_start == start else 1
        if count > limit:
            return max(1, int((start + WINDOW - now).total_seconds() + 0.999))
        ProducerToken.objects.filter(pk=token.pk).update(
            rate_window_start=start, rate_window_count=count
        )
    return None
