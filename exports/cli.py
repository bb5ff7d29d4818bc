"""Argument parsing shared by the export commands: months, days and account selections."""

import re
from datetime import date

from django.core.management.base import CommandError

from .selectors import cohort_acct_ids

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# Billing history starts long after 2000; a year outside this is a typing mistake.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _year_problem(year: int) -> bool:
    return not FIRST_YEAR <= year <= LAST_YEAR


def parse_month(text: str | None, *, option: str) -> date | None:
    """`YYYY-MM` as the first day of that month; CommandError naming the option otherwise."""
    if text is None:
        return None
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise CommandError(f"{option}: expected a month as YYYY-MM, got {text!r}")
    if _year_problem(int(match[1])):
        raise CommandError(f"{option}: the year must be {FIRST_YEAR}–{LAST_YEAR}, got {text!r}")
    return date(int(match[1]), int(match[2]), 1)


def parse_day(text: str | None, *, option: str) -> date | None:
    if text is None:
        return None
    match = _DAY.match(text.strip())
    try:
        if not match or _year_problem(int(match[1])):
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise CommandError(
            f"{option}: expected a day as YYYY-MM-DD in {FIRST_YEAR}–{LAST_YEAR}, got {text!r}"
        ) from None


def check_range(first: date | None, last: date | None, *, options: str) -> None:
    if first and last and first > last:
        raise CommandError(f"{options}: the start {first} is after the end {last}")


def selected_acct_ids(
    accounts: list[int] | None, cohort: int | None
) -> tuple[list[int] | None, str]:
    """The accounts chosen with --account/--cohort and a folder label for them (or None, "")."""
    if accounts and cohort is not None:
        raise CommandError("--account and --cohort: give one or the other, not both")
    if cohort is not None:
        acct_ids = cohort_acct_ids(cohort)
        if not acct_ids:
            raise CommandError(f"--cohort: cohort {cohort} has no accounts")
        return acct_ids, f"cohort-{cohort}"
    if accounts:
        if any(acct_id <= 0 for acct_id in accounts):
            raise CommandError("--account: account ids are positive integers")
        acct_ids = sorted(set(accounts))
        return acct_ids, "accounts-" + "-".join(str(a) for a in acct_ids[:5]) + (
            f"-and-{len(acct_ids) - 5}-more" if len(acct_ids) > 5 else ""
        )
    return None, ""
