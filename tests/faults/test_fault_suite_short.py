"""The fault suite's short variant, run as a user runs it: its own private PostgreSQL cluster,
SeaweedFS, the stand-in servers, gunicorn and a qcluster worker, each scenario breaking one of
them in the middle of a burst. Every scenario must end with nothing lost and nothing sent twice.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.faults.__main__ import RESULT_PREFIX
from bench.faults.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600


def test_every_scenario_loses_nothing_and_duplicates_nothing():
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--short"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert lines, f"no result line (exit {done.returncode}):\n{done.stderr[-4000:]}"
    results = json.loads(lines[-1][len(RESULT_PREFIX) :])
    table = done.stdout.split(RESULT_PREFIX)[0]

    assert len(results) == len(SCENARIOS), table + done.stderr[-4000:]
    for result in results:
        assert result["events"] > 0, table
        assert result["lost"] == 0, table
        assert result["duplicated"] == 0, table
        assert result["recovered_s"] is not None, table
        assert result["errors"] == [], table
    assert done.returncode == 0, table + done.stderr[-4000:]
