from billing_project.schedules import ScheduleSpec, schedule_register

# The deployment's reconciliation Cron Trigger: daily at 06:00 UTC. django-q2 does not catch
# up missed runs; `manage.py reconcile --date` backfills a missed day.
schedule_register(
    ScheduleSpec(
        name="reconciliation-daily",
        func="reconciliation.tasks.reconcile_daily_task",
        cron="0 6 * * *",
    )
)
