from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.template import Context, Template

from billing_project.time_display import day_range_text, day_text, moment_text, period_text


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2026, 12, 1), utc(2027, 1, 1), "1–31 Dec 2026"),
        (utc(2028, 2, 1), utc(2028, 3, 1), "1–29 Feb 2028"),
        (utc(2027, 2, 1), utc(2027, 3, 1), "1–28 Feb 2027"),
        (utc(2027, 4, 1), utc(2027, 5, 1), "1–30 Apr 2027"),
        (utc(2026, 11, 15), utc(2026, 12, 15), "15 Nov – 14 Dec 2026"),
        (utc(2026, 12, 16), utc(2027, 1, 16), "16 Dec 2026 – 15 Jan 2027"),
        (utc(2026, 12, 4), utc(2026, 12, 5), "4 Dec 2026"),
    ],
    ids=["december", "leap-february", "february", "april", "across-months", "new-year", "one-day"],
)
def test_a_half_open_period_is_shown_as_the_days_it_covers(start, end, expected):
    assert period_text(start, end) == expected


def test_an_end_that_is_not_midnight_shows_its_own_day():
    assert period_text(utc(2026, 12, 1), utc(2026, 12, 31, 18, 30)) == "1–31 Dec 2026"
    assert period_text(utc(2026, 12, 1), utc(2027, 1, 1, 0, 0, 1)) == "1 Dec 2026 – 1 Jan 2027"


def test_a_period_is_read_in_utc_whatever_zone_the_instants_carry():
    new_york = timezone(timedelta(hours=-5))
    start = datetime(2026, 11, 30, 19, 0, tzinfo=new_york)  # 2026-12-01T00:00Z
    end = datetime(2026, 12, 31, 19, 0, tzinfo=new_york)  # 2027-01-01T00:00Z
    assert period_text(start, end) == "1–31 Dec 2026"


def test_a_period_without_an_end_is_its_first_day_and_without_a_start_is_empty():
    assert period_text(utc(2026, 12, 4), None) == "4 Dec 2026"
    assert period_text(None, None) == ""


def test_an_empty_period_shows_its_start_day():
    assert period_text(utc(2026, 12, 4), utc(2026, 12, 4)) == "4 Dec 2026"


def test_a_bare_date_is_a_half_open_bound_at_midnight_utc():
    assert period_text(date(2026, 12, 1), date(2027, 1, 1)) == "1–31 Dec 2026"


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        period_text(datetime(2026, 12, 1), utc(2027, 1, 1))
    with pytest.raises(ValueError, match="no time zone"):
        moment_text(datetime(2026, 12, 4, 18, 5))


def test_inclusive_day_ranges_and_single_days():
    assert day_range_text(date(2026, 12, 1), date(2026, 12, 31)) == "1–31 Dec 2026"
    assert day_range_text(date(2026, 12, 4), date(2026, 12, 4)) == "4 Dec 2026"
    assert day_text(date(2026, 5, 9)) == "9 May 2026"


def test_an_instant_is_written_in_utc_and_says_so():
    plus_two = timezone(timedelta(hours=2))
    assert moment_text(datetime(2026, 12, 4, 20, 5, 9, tzinfo=plus_two)) == "2026-12-04 18:05 UTC"
    assert moment_text(utc(2026, 12, 4, 18, 5, 9), seconds=True) == "2026-12-04 18:05:09 UTC"


def test_template_filters_write_instants_in_utc_and_inclusive_cycles():
    rendered = Template(
        "{% load time_display %}{{ at|moment }}|{{ at|moment:True }}|{{ first|days:last }}"
        "|{{ missing|moment }}"
    ).render(
        Context(
            {
                "at": utc(2026, 12, 4, 18, 5, 9),
                "first": date(2026, 12, 1),
                "last": date(2026, 12, 31),
                "missing": None,
            }
        )
    )
    assert rendered == "2026-12-04 18:05 UTC|2026-12-04 18:05:09 UTC|1–31 Dec 2026|"
