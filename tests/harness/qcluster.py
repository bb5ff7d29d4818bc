"""A real django-q2 worker (`manage.py qcluster`) against the test database, for end-to-end tests.

Stopped by signalling the main process only: SIGTERM to the whole process group can hang the
cluster (django-q2 #346).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connections

from tests.clock import clock_env

ROOT = Path(__file__).resolve().parents[2]


def database_url(alias: str = "default") -> str:
    """A URL for the database this test process is connected to (the test database)."""
    s = connections[alias].settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class QCluster:
    def __init__(self, *, extra_env: dict[str, str] | None = None, log_path: Path) -> None:
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url("default"),
            "LEGACY_DATABASE_URL": database_url("legacy"),
            "Q_SYNC": "false",
            "Q_WORKERS": "1",
            **clock_env(),
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "QCluster":
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.clocked", "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing can outlive stop()
        )
        return self

    def stop(self, timeout: float = 30) -> int:
        """Signal the main process only; then make sure no process of the cluster remains."""
        if self.process is None:
            return 0
        group = self.process.pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._group_alive(group):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        return self.process.returncode

    @staticmethod
    def _group_alive(group: int) -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, condition, *, timeout: float = 60, interval: float = 0.5, what: str = ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"qcluster exited early ({what}):\n{self.log()[-3000:]}")
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-3000:]}")
