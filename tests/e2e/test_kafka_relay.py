"""`grievance relay` against a real broker: killed and restarted, every stored event still reaches the
events topic at least once, and each grievance's events arrive in order."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.composition import build_chain, build_tracking
from adapters.kafka.settings import KafkaSettings
from adapters.settings import Settings
from engine.chart import OrgChart
from schemas.events import envelope_decoder
from tests.command_stream import apply_directly, command_stream
from tests.kafka_tools import read_topic, start, stored_events, wait_for

pytestmark = pytest.mark.postgres


def test_a_relay_killed_again_and_again_sends_every_event_in_per_grievance_order(
    yongji: OrgChart, pg_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    settings = Settings(database_url=pg_url)
    chain = build_chain(settings)
    tracking = build_tracking(settings)
    name = f"relay:{kafka.events_topic}<-grievances"
    log = tmp_path / "relay.log"
    try:
        stream = command_stream(yongji, 4000, seed=8)
        apply_directly(stream, chain)
        rng = random.Random(3)
        for _ in range(4):
            relay = start("relay", pg_url, kafka, log, "--page-size", "50")
            before = tracking.max_tracking_id(name) or 0
            wait_for(lambda b=before: (tracking.max_tracking_id(name) or 0) > b, 60, "a page sent", [relay])
            time.sleep(rng.uniform(0, 0.05))
            relay.send_signal(signal.SIGKILL)
            relay.wait()
        killed_at = tracking.max_tracking_id(name) or 0
        assert killed_at < (chain.recorder.max_notification_id() or 0), "the relays finished before the last kill"
        # Events stored while a relay runs reach the topic too (woken by PostgreSQL's NOTIFY).
        relay = start("relay", pg_url, kafka, log)
        more = command_stream(yongji, 500, seed=9, first=100_000)
        apply_directly(more, chain)
        last = chain.recorder.max_notification_id()
        wait_for(lambda: tracking.max_tracking_id(name) == last, 60, "the relay to catch up", [relay])
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=30) == 0
        expected = stored_events(chain)
    finally:
        chain.close()

    records = read_topic(kafka, kafka.events_topic, expected=len(expected))
    seen: dict[UUID, list[int]] = defaultdict(list)
    sent: set[tuple[UUID, int, str, str]] = set()
    for r in records:
        envelope = envelope_decoder.decode(r.value)
        headers: dict[str, Any] = {k: v.decode() for k, v in r.headers}
        assert r.key == str(envelope.grievance_id).encode()
        assert (headers["type"], int(headers["version"])) == (envelope.type, envelope.version)
        assert envelope.hash is not None
        assert len(envelope.hash) == 64
        seen[envelope.grievance_id].append(envelope.version)
        sent.add((envelope.grievance_id, envelope.version, envelope.type, envelope.command_id))
    assert sent == expected, "an event was skipped (or one was invented)"
    for versions in seen.values():
        first_seen = list(dict.fromkeys(versions))
        assert first_seen == list(range(1, len(first_seen) + 1)), "a grievance's events arrived out of order"
    assert len(records) >= len(expected)


def test_emit_validates_commands_and_the_worker_applies_them(pg_url: str, kafka: KafkaSettings, tmp_path: Path) -> None:
    gid = UUID(int=77)
    common = f'"grievance_id": "{gid}", "actor": "grid-worker-3", "occurred_at": "2026-03-02T09:00:00+08:00"'
    good = tmp_path / "commands.jsonl"
    good.write_text(
        f'{{"kind": "report", "command_id": "e1", {common}, "unit_id": "mh-chengxi-03-2-1-1", '
        f'"category": "utilities", "title": "冬季供暖不热", "description": "三楼暖气不热"}}\n'
        f'{{"kind": "claim", "command_id": "e2", {common}, "unit_id": "mh-chengxi-03-2-1-1", '
        f'"mode": "member", "claimant": "member-9"}}\n'
    )
    bad = tmp_path / "bad.json"
    bad.write_text(f'[{{"kind": "rate", "command_id": "e3", {common}, "rating": "great"}}]')
    env_run = _cli(pg_url, kafka)

    refused = env_run("emit", str(bad))
    assert refused.returncode == 1
    assert "command 0: rating" in refused.stderr

    sent = env_run("emit", str(good))
    assert sent.returncode == 0, sent.stderr
    assert "2 commands sent" in sent.stdout

    worker = start("worker", pg_url, kafka, tmp_path / "worker.log")
    try:
        wait_for(lambda: "claimed" in env_run("show", str(gid)).stdout, 60, "the claim to be applied", [worker])
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert len(read_topic(kafka, kafka.commands_topic, expected=2)) == 2, "the malformed file sent nothing"


def _cli(pg_url: str, kafka: KafkaSettings) -> Any:
    env = {**os.environ, **kafka.as_env(), "GRIEVANCE_DATABASE_URL": pg_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    return run
