"""Calendar arithmetic for billing periods, as Stripe does it: monthly periods keep the anchor's
day of month, clamped to the month's last day (an anchor on the 31st bills on Feb 28/29)."""

import calendar
from datetime import UTC, datetime

INTERVAL_MONTHS = {"month": 1, "year": 12}


def add_interval(
    timestamp: int, *, anchor: int, interval: str, count: int = 1, steps: int = 1
) -> int:
    """`timestamp` moved forward by `steps` intervals, on the anchor's day/time of month."""
    if interval in ("day", "week"):
        return timestamp + steps * count * (86_400 if interval == "day" else 7 * 86_400)
    months = INTERVAL_MONTHS[interval] * count * steps
    start = datetime.fromtimestamp(timestamp, tz=UTC)
    anchor_at = datetime.fromtimestamp(anchor, tz=UTC)
    month_index = start.year * 12 + start.month - 1 + months
    year, month = divmod(month_index, 12)
    day = min(anchor_at.day, calendar.monthrange(year, month + 1)[1])
    moved = datetime(
        year, month + 1, day, anchor_at.hour, anchor_at.minute, anchor_at.second, tzinfo=UTC
    )
    return int(moved.timestamp())


def period_containing(now: int, *, anchor: int, interval: str, count: int = 1) -> tuple[int, int]:
    """The billing period [start, end) around `now` for a subscription anchored at `anchor`."""
    if now >= anchor:
        start = anchor
        while True:
            end = add_interval(start, anchor=anchor, interval=interval, count=count)
            if end > now:
                return start, end
            start = end
    end = anchor
    while True:
        start = add_interval(end, anchor=anchor, interval=interval, count=count, steps=-1)
        if start <= now:
            return start, end
        end = start
