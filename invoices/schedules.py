from billing_project.schedules import ScheduleSpec, schedule_register

schedule_register(
    ScheduleSpec(
        name="invoice-delivery-sweeper", func="invoices.tasks.delivery_sweep_task", minutes=1
    )
)
