"""Demo data: the three migration cohorts, cohort 1 under parallel run for the current month."""

import calendar
from datetime import date

from billing_project.demo import DemoContext, demo_step

from .models import Cohort

DEMO_COHORTS = (
    (1, "Flat-only", Cohort.PricingModel.FLAT_ONLY, Cohort.Status.PARALLEL_RUN),
    (2, "Flat + tiered impressions", Cohort.PricingModel.FLAT_TIERED, Cohort.Status.READY),
    (3, "Custom / managed services", Cohort.PricingModel.CUSTOM, Cohort.Status.PLANNED),
)


def _month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


@demo_step(10, "cohorts")
def cohorts_demo(ctx: DemoContext) -> str:
    """Create or reset cohorts 1-3 (idempotent); only the parallel-run cohort has a cycle."""
    cycle_start, cycle_end = _month_bounds(ctx.today)
    for number, name, pricing_model, status in DEMO_COHORTS:
        in_cycle = status == Cohort.Status.PARALLEL_RUN
        Cohort.objects.update_or_create(
            number=number,
            defaults={
                "name": name,
                "pricing_model": pricing_model,
                "status": status,
                "cycle_start": cycle_start if in_cycle else None,
                "cycle_end": cycle_end if in_cycle else None,
            },
        )
    return (
        f"{len(DEMO_COHORTS)} cohorts; cohort 1 in parallel run "
        f"{cycle_start:%Y-%m-%d}..{cycle_end:%Y-%m-%d}, 2 ready, 3 planned"
    )
