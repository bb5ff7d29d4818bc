"""One run at a time for operator commands that create Stripe objects (catalog import,
provisioning): a PostgreSQL session advisory lock, held while the run calls Stripe. It guards
no row, so no request waits on it; a second run is refused at once, not queued."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


class RunInProgress(Exception):
    """Another run holds the lock."""


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive_run(name: str) -> Iterator[None]:
    """Hold the advisory lock `name` for the block, or raise RunInProgress (PostgreSQL only;
    other databases run unguarded, being single-user development setups)."""
    if connection.vendor != "postgresql":
        yield
        return
    lock_id = _lock_id(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
        if not cursor.fetchone()[0]:
            raise RunInProgress(f"another {name} is running; try again when it has finished")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
