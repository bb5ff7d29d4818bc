"""Processes of the delivery benchmark: PostgreSQL databases, the web and worker processes, and
CPU accounting from /proc (no psutil in the project's environment)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-Atq"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def gunicorn_command(
    port: int,
    *,
    workers: int,
    threads: int,
    keep_alive: bool = True,
    timeout: int | None = 60,
    config: Path | None = None,
) -> list[str]:
    """The app under gunicorn (gthread) on a loopback port, as every benchmark runs it."""
    import sys

    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "billing_project.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
    ]
    if keep_alive:
        command += ["--keep-alive", "5"]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    # Its default control-socket path is per user, shared with other gunicorns.
    command.append("--no-control-socket")
    if config is not None:
        command += ["--config", str(config)]
    return command


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------------------------


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        [*PG, "-d", database, "-c", sql], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{done.stderr.strip()}")
    return done.stdout.strip()


def database_exists(name: str) -> bool:
    query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608 (our own names)
    return psql(query) == "1"


def database_drop(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_create(name: str, template: str | None = None) -> None:
    database_drop(name)
    psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def database_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


# --- CPU accounting -----------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int | str, *, with_reaped_children: bool = True) -> float:
    """utime + stime (+ cutime + cstime: children that exited and were waited for)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, …)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and everything below it, including descendants that already exited
    (their time is in their parent's cutime/cstime once reaped)."""
    return sum(process_cpu_seconds(p) for p in [pid, *descendants(pid)])


def _comm(pid: int | str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process on the machine (all databases: the server is shared).
    Backends that exited are in the postmaster's cutime/cstime."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _comm(entry) == "postgres":
            fields = _stat_fields(entry)
            if fields is not None and _comm(fields[1]) != "postgres":
                total += tree_cpu_seconds(int(entry))
    return total


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent not idle (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- Services -----------------------------------------------------------------------------------


@dataclass
class Service:
    """A process of the app (web or worker) with its log; stopped by signalling its main pid."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid) if self.process is not None else 0.0

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> list[int]:
        """SIGTERM to the main process only (a group-wide signal can hang the task cluster);
        returns the pids of its descendants that were still alive afterwards and were killed."""
        if self.process is None:
            return []
        below = descendants(self.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        stray = []
        deadline = time.monotonic() + 10
        for pid in below:
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _running(pid):
                stray.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return stray


def _running(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def wait_http(host: str, port: int, path: str, *, timeout: float, service: Service) -> int:
    """Wait until the server answers `path` (any status); returns the status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited during start-up:\n{service.log_tail()}")
        connection = http.client.HTTPConnection(host, port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise RuntimeError(f"{service.name} did not answer on port {port}:\n{service.log_tail()}")
