"""Export runs: one running run per kind, heartbeats, files recorded, a final status."""

import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing_project.errors import ConflictError

from .models import ExportFile, ExportRun

STALE_AFTER = timedelta(minutes=10)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(run: ExportRun, *, host: str) -> bool:
    """A run whose process is gone (same host) or that has not reported for a while."""
    last = run.heartbeat_at or run.started_at
    if timezone.now() - last > STALE_AFTER:
        return True
    return run.host == host and run.pid is not None and not _process_alive(run.pid)


def export_run_start(
    *, kind: str, range_from: str = "", range_to: str = "", options: dict | None = None
) -> ExportRun:
    """Claim the single running slot for `kind`; a run left by a dead process is closed first.

    Raises ConflictError while another live run of the same kind is in progress.
    """
    host = socket.gethostname()
    try:
        with transaction.atomic():
            for previous in ExportRun.objects.select_for_update().filter(
                kind=kind, status=ExportRun.Status.RUNNING
            ):
                if not _is_stale(previous, host=host):
                    raise ConflictError(
                        f"export run {previous.pk} ({previous.get_kind_display()}) is still "
                        f"running on {previous.host} (pid {previous.pid})",
                        field="kind",
                    )
                previous.status = ExportRun.Status.INTERRUPTED
                previous.finished_at = timezone.now()
                previous.summary = "interrupted: its process stopped before finishing"
                previous.save(update_fields=["status", "finished_at", "summary"])
            return ExportRun.objects.create(
                kind=kind,
                range_from=range_from,
                range_to=range_to,
                options=options or {},
                host=host,
                pid=os.getpid(),
                heartbeat_at=timezone.now(),
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"another {kind} export run started at the same moment", field="kind"
        ) from exc


def export_run_file(
    *, run: ExportRun, key: str, period: str, written: bool, rows: int, size: int, sha256: str
) -> None:
    """Record one file of the run and bump the run's counters (idempotent per key)."""
    action = ExportFile.Action.WRITTEN if written else ExportFile.Action.UNCHANGED
    _, created = ExportFile.objects.update_or_create(
        run=run,
        key=key,
        defaults={
            "period": period,
            "action": action,
            "rows": rows,
            "bytes": size,
            "sha256": sha256,
        },
    )
    if created:
        if written:
            run.files_written += 1
            run.bytes_written += size
        else:
            run.files_unchanged += 1
        run.rows += rows
    run.heartbeat_at = timezone.now()
    run.save(
        update_fields=["files_written", "files_unchanged", "rows", "bytes_written", "heartbeat_at"]
    )


def export_run_finish(
    *, run: ExportRun, problems: list[str] | None = None, summary: str = "", error: str = ""
) -> ExportRun:
    run.problems = problems or []
    if error:
        run.status = ExportRun.Status.FAILED
    elif run.problems:
        run.status = ExportRun.Status.PROBLEMS
    else:
        run.status = ExportRun.Status.SUCCEEDED
    run.summary = error or summary
    run.finished_at = timezone.now()
    run.save(update_fields=["problems", "status", "summary", "finished_at"])
    return run
