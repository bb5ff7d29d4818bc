"""The schedule registry: each app declares its django-q2 schedules in its own `schedules.py`.

`setup_schedules` installs exactly the declared set: creates or updates each by name and
removes any schedule that is no longer declared. Cron expressions are UTC.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django_q.models import Schedule


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    cron: str | None = None
    minutes: int | None = None
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.minutes is None):
            raise ValueError(f"schedule {self.name!r}: give exactly one of cron or minutes")

    def fields(self) -> dict:
        if self.cron is not None:
            kind = {"schedule_type": Schedule.CRON, "cron": self.cron, "minutes": None}
        else:
            kind = {"schedule_type": Schedule.MINUTES, "minutes": self.minutes, "cron": None}
        return {"func": self.func, "kwargs": repr(self.kwargs) if self.kwargs else "", **kind}


_REGISTRY: dict[str, ScheduleSpec] = {}


def schedule_register(spec: ScheduleSpec) -> ScheduleSpec:
    """Declare a schedule (called at import time from an app's `schedules.py`)."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"schedule {spec.name!r} is declared twice with different settings")
    _REGISTRY[spec.name] = spec
    return spec


def schedule_specs() -> list[ScheduleSpec]:
    autodiscover_modules("schedules")
    return sorted(_REGISTRY.values(), key=lambda spec: spec.name)


@dataclass
class InstallReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def schedules_install(*, dry_run: bool = False, now: datetime | None = None) -> InstallReport:
    """Make the stored schedules equal the declared ones. Idempotent; nothing runs twice."""
    report = InstallReport()
    specs = {spec.name: spec for spec in schedule_specs()}
    with transaction.atomic():
        stored = {s.name: s for s in Schedule.objects.select_for_update()}
        for name, spec in specs.items():
            wanted = spec.fields()
            current = stored.get(name)
            if current is None:
                report.created.append(name)
                if not dry_run:
                    Schedule.objects.create(
                        name=name, repeats=-1, next_run=now or timezone.now(), **wanted
                    )
            elif any(getattr(current, key) != value for key, value in wanted.items()):
                report.updated.append(name)
                if not dry_run:
                    for key, value in wanted.items():
                        setattr(current, key, value)
                    current.repeats = -1
                    current.save()
            else:
                report.unchanged.append(name)
        for name in sorted(set(stored) - set(specs)):
            report.removed.append(name)
            if not dry_run:
                stored[name].delete()
    return report


schedule_register(
    ScheduleSpec(
        name="worker-heartbeat", func="billing_project.tasks.worker_heartbeat_task", minutes=1
    )
)

schedule_register(
    ScheduleSpec(
        name="stripe-webhook-resume",
        func="billing_project.tasks.webhook_triggers_resume_task",
        minutes=1,
    )
)

schedule_register(
    ScheduleSpec(
        name="task-results-prune",
        func="billing_project.tasks.task_results_prune_task",
        cron="30 3 * * *",
    )
)

schedule_register(
    ScheduleSpec(
        name="monitor-stripe-webhook-endpoint",
        func="billing_project.tasks.monitor_check_task",
        cron="15 6 * * *",
        kwargs={"name": "stripe_webhook_endpoint"},
    )
)

schedule_register(
    ScheduleSpec(
        name="monitor-task-error-rate",
        func="billing_project.tasks.monitor_check_task",
        minutes=15,
        kwargs={"name": "task_error_rate"},
    )
)

schedule_register(
    ScheduleSpec(
        name="retention-prune", func="billing_project.tasks.retention_prune_task", cron="45 3 * * *"
    )
)
