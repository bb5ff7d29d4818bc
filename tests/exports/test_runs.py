import threading

import pytest
from django.db import connections

from billing_project.errors import ConflictError
from exports.models import ExportRun
from exports.runs import export_run_start


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_the_same_kind_started_at_once_one_is_refused():
    barrier = threading.Barrier(2)
    started, refused = [], []

    def start() -> None:
        try:
            barrier.wait()
            started.append(export_run_start(kind=ExportRun.Kind.HISTORY).pk)
        except ConflictError as exc:
            refused.append(exc.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(started) == 1 and len(refused) == 1
    assert ExportRun.objects.filter(status=ExportRun.Status.RUNNING).count() == 1
    assert export_run_start(kind=ExportRun.Kind.EVENTS).kind == "events"  # other kinds run


@pytest.mark.django_db
def test_a_run_left_by_a_dead_process_is_closed_as_interrupted():
    dead = ExportRun.objects.create(
        kind=ExportRun.Kind.PDFS, host=__import__("socket").gethostname(), pid=2**22 + 12345
    )

    fresh = export_run_start(kind=ExportRun.Kind.PDFS)

    dead.refresh_from_db()
    assert dead.status == ExportRun.Status.INTERRUPTED and fresh.status == "running"
