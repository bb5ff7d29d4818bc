"""How days, periods and instants are written for people: the PDF, the emails and the admin.

Every time we show is UTC (`TIME_ZONE = "UTC"`) and says so. Stripe's service periods are
half-open instants, [start, end): December is 2026-12-01T00:00Z to 2027-01-01T00:00Z, which a
person reads as "1–31 Dec 2026", never "1 Dec – 1 Jan". Month names are spelled out here, not
taken from the process locale, so a rendered PDF's bytes do not depend on the machine.
"""

from datetime import UTC, date, datetime, time, timedelta

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EN_DASH = "\u2013"


def day_text(value: date) -> str:
    """A calendar day: "4 Dec 2026"."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def day_range_text(first: date, last: date) -> str:
    """Two calendar days, both included, each part written once when shared.

    "1–31 Dec 2026", "15 Nov – 14 Dec 2026", "16 Dec 2026 – 15 Jan 2027"; one day: "4 Dec 2026".
    """
    if last <= first:
        return day_text(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}{EN_DASH}{last.day} {MONTHS[last.month - 1]} {last.year}"
    if first.year == last.year:
        return f"{first.day} {MONTHS[first.month - 1]} {EN_DASH} {day_text(last)}"
    return f"{day_text(first)} {EN_DASH} {day_text(last)}"


def period_text(start: datetime | date | None, end: datetime | date | None) -> str:
    """A half-open period [start, end) as the days a person reads, in UTC.

    An end at exactly midnight UTC is the start of the day after the period, so the last day
    shown is the day before it: [1 Dec 00:00Z, 1 Jan 00:00Z) -> "1–31 Dec 2026". Any other end
    falls inside its day, which is shown. A bare date is that day's midnight UTC, as a
    half-open bound. No start -> ""; no end -> the start day.
    """
    if start is None:
        return ""
    first = _utc(start).date()
    if end is None:
        return day_text(first)
    end = _utc(end)
    last = end.date() - timedelta(days=1) if end.time() == time(0) else end.date()
    return day_range_text(first, last)


def moment_text(value: datetime, *, seconds: bool = False) -> str:
    """An instant in UTC, saying so: "2026-12-04 18:05 UTC" (sortable by eye down a column)."""
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone; instants shown to people must be aware")
    return value.astimezone(UTC)
