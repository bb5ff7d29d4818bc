"""Work interrupted by a database restart goes on as soon as the database answers again.

A PostgreSQL restart cuts every open connection: the step that was running fails with an
`OperationalError` (or `InterfaceError`), and so does anything the worker tries to write about
the failure. Left to the task queue, such a task is re-delivered only after django-q2's
`retry` (minutes), and a lease it held runs out only after its own time. `when_database_answers`
instead reconnects and runs the same idempotent call again, for a bounded time, so work resumes
within seconds of the database's return.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger("billing.db")

T = TypeVar("T")
DATABASE_ERRORS = (OperationalError, InterfaceError)
WAIT_SECONDS = 45.0
PAUSE_SECONDS = 1.0


def when_database_answers(call: Callable[[], T], *, what: str, within: float = WAIT_SECONDS) -> T:
    """`call()`; after a lost connection, reconnect and call again until it succeeds.

    Only for idempotent calls outside any transaction. Gives up (re-raising the last error)
    after `within` seconds, leaving the work to the usual sweepers.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except DATABASE_ERRORS as exc:
            opened = connections.all(initialized_only=True)
            if time.monotonic() >= deadline or any(c.in_atomic_block for c in opened):
                raise
            logger.warning("database unavailable, %s again when it answers: %s", what, exc)
            for connection in opened:
                connection.close()
            time.sleep(PAUSE_SECONDS)
