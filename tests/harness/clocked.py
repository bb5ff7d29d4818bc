"""Run a Python script on the test's clock: `python -m tests.harness.clocked manage.py qcluster`.

When `TEST_CLOCK_AS_OF` is set (see `tests.clock.clock_env`) the process starts at that
instant and its clock ticks from there; forked workers inherit it. Otherwise the script runs
unchanged at the real time.
"""

import os
import runpy
import sys

import time_machine


def main() -> None:
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    as_of = os.environ.get("TEST_CLOCK_AS_OF")
    if not as_of:
        runpy.run_path(script, run_name="__main__")
        return
    with time_machine.travel(as_of, tick=True):
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
