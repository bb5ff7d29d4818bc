from billing_project.schedules import ScheduleSpec, schedule_register

schedule_register(
    ScheduleSpec(
        name="invoice-delivery-sweeper", func="invoices.tasks.delivery_sweep_task", minutes=1
    )
)
schedule_register(
    ScheduleSpec(
        name="invoice-delivery-outcomes",
        func="invoices.tasks.delivery_outcomes_lookup_task",
        minutes=10,
    )
)
