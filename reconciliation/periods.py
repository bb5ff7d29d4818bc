"""Which service month a run compares, when a missing side stops being pending, and which
Stripe invoices can carry that month's lines.

A run for day D compares the service month before D's month: the legacy system bills a month
in the first days of the next, and Stripe's cycle invoice at the month end carries the
month's usage (in arrears) while the flat fee was billed at its start (in advance).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from django.conf import settings

# Days after the service month's last day during which a side that is not there yet is
# pending (the legacy run is operator-triggered); from the deadline on it is drift.
DEFAULT_LEGACY_DEADLINE_DAYS = 10
# Invoices carrying a month's lines are created from its first day (flat fees in advance) to
# its end (usage in arrears, invoice items). The window stops 27 days after the month so it
# never reaches the next cycle's invoice, whatever the month's length.
WINDOW_BEFORE = timedelta(days=1)
WINDOW_AFTER = timedelta(days=27)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


@lru_cache(maxsize=4096)  # billing periods start on a few instants: anchors repeat
def month_of_timestamp(timestamp: int) -> date:
    """The UTC calendar month (first day) a Unix timestamp falls in."""
    return month_start(datetime.fromtimestamp(timestamp, tz=UTC).date())


def legacy_deadline_days() -> int:
    return int(getattr(settings, "RECONCILE_LEGACY_DEADLINE_DAYS", DEFAULT_LEGACY_DEADLINE_DAYS))


@dataclass(frozen=True)
class RunPeriod:
    run_date: date
    service_month: date
    deadline: date
    window_start: int
    window_end: int

    @property
    def past_deadline(self) -> bool:
        return self.run_date >= self.deadline


def run_period(run_date: date, *, deadline_days: int | None = None) -> RunPeriod:
    """The service month a run for `run_date` compares, its deadline and the Stripe window."""
    month = previous_month(month_start(run_date))
    end = next_month(month)
    days = legacy_deadline_days() if deadline_days is None else deadline_days
    start_at = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_at = datetime(end.year, end.month, 1, tzinfo=UTC)
    return RunPeriod(
        run_date=run_date,
        service_month=month,
        deadline=end + timedelta(days=days),
        window_start=int((start_at - WINDOW_BEFORE).timestamp()),
        window_end=int((end_at + WINDOW_AFTER).timestamp()),
    )
