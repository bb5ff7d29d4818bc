from billing_project.schedules import ScheduleSpec, schedule_register

schedule_register(
    ScheduleSpec(name="usage-outbox", func="metering.tasks.usage_outbox_send_task", minutes=1)
)
