"""Task results: every success is kept (no per-task pruning) until the daily prune."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Failure, Success, Task

from billing_project.tasks import task_results_prune_task

pytestmark = pytest.mark.django_db


def _task(name: str, *, days_ago: int, success: bool) -> Task:
    stopped = timezone.now() - timedelta(days=days_ago)
    return Task.objects.create(
        id=name.ljust(32, "0"),
        name=name,
        func="billing_project.tasks.worker_heartbeat_task",
        started=stopped,
        stopped=stopped,
        success=success,
    )


def test_prune_deletes_old_successes_and_keeps_recent_ones_and_every_failure(settings):
    settings.TASK_RESULTS_KEEP_DAYS = 14
    _task("old-success", days_ago=15, success=True)
    _task("recent-success", days_ago=13, success=True)
    _task("old-failure", days_ago=40, success=False)
    assert task_results_prune_task() == 1
    assert list(Success.objects.values_list("name", flat=True)) == ["recent-success"]
    assert list(Failure.objects.values_list("name", flat=True)) == ["old-failure"]
