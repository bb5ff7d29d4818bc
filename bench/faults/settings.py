"""The app's settings as they are, with what the fault suite changes on its own processes.

- `FAULTS_SYNCDB=1` (only for the suite's one set-up command): every app's tables are created
  from the models (`migrate --run-syncdb`, as pytest-django's `--nomigrations` does) instead of
  replaying several hundred migrations, which takes minutes on a loaded machine.
- `FAULTS_TIME_SCALE=<n>` (the `--short` variant): the task queue's re-delivery of a task whose
  worker died (`retry`) and the delivery retry waits are divided by n. The suite's worker
  launcher (`bench/faults/worker.py`) scales the module-level recovery timers the same way.
"""

import os

from billing_project.settings import *  # noqa: F403
from billing_project.settings import BILLING_DELIVERY_BACKOFF_SECONDS, Q_CLUSTER


class _NoMigrations(dict):
    def __contains__(self, label: object) -> bool:
        return True

    def __getitem__(self, label: str) -> None:
        return None


if os.environ.get("FAULTS_SYNCDB") == "1":
    MIGRATION_MODULES = _NoMigrations()

TIME_SCALE = float(os.environ.get("FAULTS_TIME_SCALE") or 1)
if TIME_SCALE != 1:
    Q_CLUSTER = {**Q_CLUSTER, "retry": max(2, int(Q_CLUSTER["retry"] / TIME_SCALE))}
    BILLING_DELIVERY_BACKOFF_SECONDS = [
        max(1, int(seconds / TIME_SCALE)) for seconds in BILLING_DELIVERY_BACKOFF_SECONDS
    ]
