"""The test clock: date-sensitive tests run at the instant they are given, not only "today".

A test that reads today's date (usage periods, the too-late rule, reconciliation periods and
deadlines, cohort cycles, exports by month, the month-end report, due dates) is marked
`calendar`. With `--as-of INSTANT` each such test starts with the clock set to that instant
(time-machine, ticking from there), in this process and in the worker processes the tests
start (`clock_env()` hands the instant on). Without it they run at the real current time.

`scripts/test --boundaries` re-runs the `calendar` tests at each instant of `BOUNDARIES`:
billing is all month ends, and a suite that passes only on the 18th proves nothing on the 1st.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine

# The instants the boundary runs use (UTC). Named so a failure says which one it was.
BOUNDARIES = {
    "first-of-month-0030": "2027-03-01T00:30:00+00:00",  # the month after a 28-day February
    "last-of-month-2350": "2027-01-31T23:50:00+00:00",
    "leap-day": "2028-02-29T12:00:00+00:00",
    "new-years-eve-2350": "2026-12-31T23:50:00+00:00",
    "new-year-0030": "2027-01-01T00:30:00+00:00",
    "thirty-day-month": "2027-04-30T12:00:00+00:00",
}
ENV = "TEST_CLOCK_AS_OF"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant (a bare date means 12:00 UTC); naive times are UTC."""
    text = BOUNDARIES.get(text, text).strip()
    if len(text) == 10:
        text += "T12:00:00"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--as-of",
        default=os.environ.get(ENV) or None,
        metavar="INSTANT",
        help=(
            "Run the `calendar` tests as if it were INSTANT (ISO 8601 UTC, e.g. "
            "2027-01-01T00:30:00Z, a date, or a name from tests/clock.py BOUNDARIES)."
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "calendar: reads today's date; also runs at each boundary instant (--as-of)",
    )
    as_of = config.getoption("--as-of")
    config.clock_as_of = parse_instant(as_of) if as_of else None  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    as_of = config.clock_as_of  # type: ignore[attr-defined]
    if as_of is None:
        return "clock: calendar tests run at the real time (set one with --as-of)"
    return f"clock: calendar tests run as of {as_of.isoformat()}"


def as_of(config: pytest.Config) -> datetime | None:
    return config.clock_as_of  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _calendar_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    instant = as_of(request.config)
    if instant is None or request.node.get_closest_marker("calendar") is None:
        yield
        return
    with time_machine.travel(instant, tick=True):
        yield


def clock_env() -> dict[str, str]:
    """Environment for a process a test starts (through `tests.harness.clocked`), so it runs on
    the test's clock: the travelled instant now, or nothing when the test runs at real time."""
    if not time_machine.escape_hatch.is_travelling():
        return {}
    return {ENV: datetime.now(UTC).isoformat()}
