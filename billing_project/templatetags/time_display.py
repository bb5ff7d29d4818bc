"""Template filters for the days, periods and instants people read; the wording is in
billing_project.time_display."""

from datetime import date, datetime

from django import template

from billing_project.time_display import day_range_text, day_text, moment_text, period_text

register = template.Library()


@register.filter
def day(value: date | None) -> str:
    """`{{ document.due_on|day }}`: "1 Dec 2026"."""
    return "" if value is None else day_text(value)


@register.filter
def period(start: datetime | None, end: datetime | None) -> str:
    """`{{ line.period_start|period:line.period_end }}`: [start, end) as "1–31 Dec 2026"."""
    return period_text(start, end)


@register.filter
def days(first: date | None, last: date | None) -> str:
    """`{{ cohort.cycle_start|days:cohort.cycle_end }}`: two included days, "1–31 Dec 2026"."""
    if first is None:
        return ""
    return day_text(first) if last is None else day_range_text(first, last)


@register.filter
def moment(value: datetime | None, seconds: bool = False) -> str:
    """`{{ note.at|moment }}`: "2026-12-04 18:05 UTC"; `|moment:True` adds the seconds."""
    return "" if value is None else moment_text(value, seconds=bool(seconds))
