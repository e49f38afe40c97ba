"""The chart changes while a runner follows the log: the runner started along the old chart stops with one
line, and the views are the new chart's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adapters.settings import SHIPPED_CHART
from tests.scenario import BUILDING


def test_a_runner_along_the_old_chart_stops_with_one_line_once_a_new_chart_is_in_use(
    database_url: str, tmp_path: Path
) -> None:
    units = json.loads(SHIPPED_CHART.read_text())["units"]
    grown = tmp_path / "grown.json"
    grown.write_text(json.dumps({"units": [*units, {"id": "mh-new-1", "name": "新户", "level": "member_household",
                                                    "parent": BUILDING}]}))  # fmt: skip
    old_env = {**os.environ, "GRIEVANCE_DATABASE_URL": database_url, "GRIEVANCE_ACTOR": "worker-li"}
    new_env = {**old_env, "GRIEVANCE_CHART": str(grown)}

    def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip

    assert cli(old_env, "tour").returncode == 0
    runner = subprocess.Popen([sys.executable, "-m", "adapters.cli", "projections", "run", "--idle-wait", "0.05"],
                              env=old_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().startswith("Following the event log")
        status = cli(new_env, "projections", "status")  # opening the views records the grown chart
        assert status.returncode == 0, status.stderr
        reported = cli(new_env, "report", "--unit", "mh-new-1", "--category", "parking", "--title", "t",
                       "--description", "d")  # fmt: skip
        assert reported.returncode == 0, reported.stderr
        assert runner.wait(timeout=60) == 3
        assert runner.stderr is not None
        last = runner.stderr.read().strip().splitlines()[-1]  # after the log's lines, if any
        assert last.startswith("error: the views are now totalled along another chart"), last
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    done = cli(new_env, "dashboard", "--unit", BUILDING, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["headline"]["waiting"] >= 1, "the new household's grievance counts at its building"
