"""Grid workers' commands through a real broker into PostgreSQL: `grievance worker` as production runs it.

Each test sends the same kind of stream (lifecycles interleaved, repeats, malformed messages, rule
breakers) with a plain kafka-python producer and compares the store, the projections and the rejected
topic with a direct run of the same stream through the intake.
"""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.composition import build_chain, build_projection
from adapters.kafka.settings import KafkaSettings
from adapters.settings import Settings
from engine.chart import OrgChart
from tests.brute_force import assert_same, stored
from tests.command_stream import Stream, apply_directly, command_stream
from tests.kafka_tools import assigned, committed, produce, read_topic, start, stored_events, wait_for

pytestmark = pytest.mark.postgres


def expected_run(stream: Stream, tmp_path: Path) -> tuple[Any, Any, list[tuple[bytes, str]]]:
    """The events, views and rejections of a direct run on a SQLite file."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/direct.db", durability="off")
    chain = build_chain(settings)
    try:
        rejected = apply_directly(stream, chain)
        projection = build_projection(settings, chain)
        projection.catch_up()
        return stored_events(chain), stored(projection.views), rejected
    finally:
        chain.close()


def assert_same_outcome(stream: Stream, pg_url: str, kafka: KafkaSettings, tmp_path: Path) -> None:
    """The Kafka run's store, views and rejected topic equal a direct run's; rejections deduped by source."""
    events, views, rejected = expected_run(stream, tmp_path)
    settings = Settings(database_url=pg_url)
    chain = build_chain(settings)
    try:
        assert stored_events(chain) == events, "a command was lost or applied twice"
        projection = build_projection(settings, chain)
        projection.catch_up()
        assert_same(views, stored(projection.views))
    finally:
        chain.close()
    copies = read_topic(kafka, kafka.rejected_topic, expected=len(rejected))
    by_source = {}
    for r in copies:
        headers = dict(r.headers)
        by_source[(headers["source.partition"], headers["source.offset"])] = (r.value, headers["error.code"].decode())
        assert headers["error.reason"], "a rejected copy must say why"
    assert collections.Counter(by_source.values()) == collections.Counter(rejected)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as compose stops a service: the worker finishes its batch and exits 0."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    assert code == 0, f"the worker exited with {code}"


def test_ten_thousand_commands_are_applied_exactly_once_and_every_bad_one_is_rejected_with_its_reason(
    yongji: OrgChart, pg_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    stream = command_stream(yongji, 10_000)
    sent = produce(kafka, stream.messages)
    assert sent >= 10_000
    worker = start("worker", pg_url, kafka, tmp_path / "worker.log")
    try:
        wait_for(lambda: committed(kafka) == sent, 180, "the worker to commit every message", [worker])
    finally:
        stop(worker)
    assert_same_outcome(stream, pg_url, kafka, tmp_path)


def test_a_worker_killed_mid_batch_and_started_again_loses_nothing_and_doubles_nothing(
    yongji: OrgChart, pg_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    stream = command_stream(yongji, 6_000, seed=5)
    sent = produce(kafka, stream.messages)
    log = tmp_path / "worker.log"
    kills = 0
    while kills < 3 and committed(kafka) < sent:
        worker = start("worker", pg_url, kafka, log)
        before = committed(kafka)
        # Kill it just after a commit: its next batch is then being applied or stored.
        wait_for(lambda b=before: committed(kafka) in (sent,) or committed(kafka) > b, 60, "a commit", [worker])
        kill(worker)
        kills += 1
    worker = start("worker", pg_url, kafka, log)
    try:
        wait_for(lambda: committed(kafka) == sent, 180, "every message committed after the kills", [worker])
    finally:
        stop(worker)
    assert kills >= 2, "the stream was applied before the worker could be killed twice; send more"
    assert_same_outcome(stream, pg_url, kafka, tmp_path)


def test_two_workers_share_the_partitions_and_one_killed_mid_stream_loses_nothing(
    yongji: OrgChart, pg_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    stream = command_stream(yongji, 8_000, seed=6)
    first_part, rest = stream.messages[:800], stream.messages[800:]
    produce(kafka, first_part)
    logs = tmp_path / "first.log", tmp_path / "second.log"
    first = start("worker", pg_url, kafka, logs[0])
    second = start("worker", pg_url, kafka, logs[1])
    try:
        wait_for(lambda: assigned(logs[0]) and assigned(logs[1]), 60, "both workers in the group", [first, second])
        produce(kafka, rest[:3000])
        wait_for(lambda: b'"event": "batch"' in logs[1].read_bytes(), 60, "the second worker to apply a batch",
                 [first, second])  # fmt: skip
        kill(second)
        produce(kafka, rest[3000:])
        sent = len(stream.messages)
        wait_for(lambda: committed(kafka) == sent, 180, "the survivor to take over and finish", [first])
    finally:
        if second.poll() is None:
            kill(second)
        stop(first)
    assert b'"event": "batch"' in logs[0].read_bytes(), "the first worker never applied a batch"
    assert_same_outcome(stream, pg_url, kafka, tmp_path)


def terminate_backends(pg_url: str) -> int:
    """Drop every other connection to the test database, as a PostgreSQL restart or failover would."""
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ).fetchall()
    return len(rows)


def test_a_worker_whose_database_connections_drop_mid_batch_recovers_and_loses_nothing(
    yongji: OrgChart, pg_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    stream = command_stream(yongji, 6_000, seed=11)
    sent = produce(kafka, stream.messages)
    log = tmp_path / "worker.log"
    worker = start("worker", pg_url, kafka, log)
    rng = random.Random(5)
    drops = 0
    try:
        wait_for(lambda: committed(kafka) > 0, 60, "the first commit", [worker])
        while committed(kafka) < sent and drops < 8:
            time.sleep(rng.uniform(0.05, 0.4))
            drops += terminate_backends(pg_url) > 0
        wait_for(lambda: committed(kafka) == sent, 180, "every message committed after the drops", [worker])
    finally:
        stop(worker)
    assert drops >= 2, "the stream ended before the connections could be dropped twice"
    assert b"batch failed; retrying it" in log.read_bytes(), "no drop landed inside a batch"
    assert_same_outcome(stream, pg_url, kafka, tmp_path)
