from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from billing_project.schedules import ScheduleSpec, schedule_specs

pytestmark = pytest.mark.django_db


def test_setup_schedules_installs_every_declared_schedule():
    call_command("setup_schedules", stdout=StringIO())
    stored = {s.name: s for s in Schedule.objects.all()}
    declared = {spec.name for spec in schedule_specs()}
    assert "worker-heartbeat" in declared
    assert set(stored) == declared
    heartbeat = stored["worker-heartbeat"]
    assert heartbeat.func == "billing_project.tasks.worker_heartbeat_task"
    assert heartbeat.schedule_type == Schedule.MINUTES
    assert heartbeat.minutes == 1
    assert heartbeat.repeats == -1


def test_setup_schedules_twice_changes_nothing_the_second_time():
    call_command("setup_schedules", stdout=StringIO())
    first = {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()}
    out = StringIO()
    call_command("setup_schedules", stdout=out)
    assert {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()} == first
    assert "0 created, 0 updated" in out.getvalue()


def test_setup_schedules_removes_undeclared_and_repairs_edited_ones():
    call_command("setup_schedules", stdout=StringIO())
    Schedule.objects.create(name="stale-job", func="os.getcwd", schedule_type=Schedule.HOURLY)
    Schedule.objects.filter(name="worker-heartbeat").update(minutes=30)
    out = StringIO()
    call_command("setup_schedules", stdout=out)
    assert not Schedule.objects.filter(name="stale-job").exists()
    assert Schedule.objects.get(name="worker-heartbeat").minutes == 1
    assert "remove: stale-job" in out.getvalue()
    assert "update: worker-heartbeat" in out.getvalue()


def test_setup_schedules_dry_run_writes_nothing():
    out = StringIO()
    call_command("setup_schedules", dry_run=True, stdout=out)
    assert not Schedule.objects.exists()
    assert "Would create: worker-heartbeat" in out.getvalue()


def test_schedule_spec_needs_exactly_one_timing():
    with pytest.raises(ValueError, match="exactly one"):
        ScheduleSpec(name="x", func="os.getcwd")
    with pytest.raises(ValueError, match="exactly one"):
        ScheduleSpec(name="x", func="os.getcwd", cron="0 6 * * *", minutes=5)
    spec = ScheduleSpec(name="daily", func="os.getcwd", cron="0 6 * * *")
    assert spec.fields()["schedule_type"] == Schedule.CRON
