from billing_project.schedules import ScheduleSpec, schedule_register

# Daily, after the UTC day has closed and before the reconciliation run at 06:00.
schedule_register(
    ScheduleSpec(
        name="stripe-events-archive",
        func="exports.tasks.stripe_events_export_task",
        cron="30 5 * * *",
    )
)
