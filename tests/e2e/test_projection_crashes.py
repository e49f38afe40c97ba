"""Exactly once across crashes: the runner is SIGKILLed at random moments, between and inside pages."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

from adapters.composition import build_chain, build_projection
from adapters.settings import Settings
from tests.brute_force import assert_same, recompute, stored
from tests.conftest import T0
from tests.integration.test_dashboard_projection import OPS, play


def test_a_runner_killed_again_and_again_ends_where_a_clean_rebuild_does(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    chain = build_chain(settings, clock=lambda: T0 + timedelta(days=400))
    try:
        ids = play(chain, [(OPS[i % len(OPS)], i % 97, i % 4, 1 + i % 40) for i in range(3000)], 300)
        projection = build_projection(settings, chain, page_size=10)
        env = {**os.environ, "GRIEVANCE_DATABASE_URL": database_url}
        rng = random.Random(7)
        kills = 0
        positions = []
        while projection.views.position() < (chain.recorder.max_notification_id() or 0) and kills < 40:
            runner = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "projections", "run", "--page-size", "10"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # Wait until this runner has committed a page, then kill it a moment later: between pages
            # or in the middle of one, wherever that moment falls.
            before = projection.views.position()
            deadline = time.monotonic() + 30
            while projection.views.position() == before and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            runner.send_signal(signal.SIGKILL)
            runner.wait()
            kills += 1
            positions.append(projection.views.position())
        assert kills >= 2, "the runner finished before it could be killed twice; give it more events"
        assert positions[0] > 0, "the killed runners never got to write a page"
        projection.catch_up()
        after_crashes = stored(projection.views)
        assert_same(recompute(chain, ids), after_crashes)
        projection.rebuild()
        assert_same(after_crashes, stored(projection.views))
    finally:
        chain.close()
