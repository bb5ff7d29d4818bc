"""The Stripe keys dj-stripe keeps in its `APIKey` table.

dj-stripe stores every key it syncs with (the secret itself, in plain text) in `djstripe_apikey`.
The configured key (`STRIPE_SECRET_KEY`) is the only one the application should hold: after a
rotation the old key's row is deleted so a database copy no longer carries it.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from djstripe.models import APIKey


@dataclass(frozen=True)
class KeysPruneReport:
    kept: int
    removed: list[str]  # masked


def _masked(secret: str) -> str:
    return f"{secret[:8]}…{secret[-4:]}" if len(secret) > 12 else "…"


def stripe_api_keys_prune(*, dry_run: bool = False) -> KeysPruneReport:
    """Delete every stored key other than the configured one. Idempotent."""
    with transaction.atomic():
        stale = APIKey.objects.exclude(secret=settings.STRIPE_SECRET_KEY)
        removed = [_masked(secret) for secret in stale.values_list("secret", flat=True)]
        kept = APIKey.objects.filter(secret=settings.STRIPE_SECRET_KEY).count()
        if not dry_run:
            stale.delete()
    return KeysPruneReport(kept=kept, removed=removed)
