"""What the Kafka tests do to a broker and to `grievance` processes: produce, start, wait, read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import CommandSigner
from adapters.kafka.topics import ensure_topics
from engine.service_chain import ServiceChain


def produce(kafka: KafkaSettings, messages: Iterable[tuple[bytes | None, bytes]], partition: int | None = None) -> int:
    """Send (key, value) messages to the command topic with a plain kafka-python producer, as an app's gateway
    would: signed with the settings' key (to one `partition` if given, else as their keys choose)."""
    ensure_topics(kafka, kafka.commands_topic, kafka.rejected_topic)
    producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=5)
    signer = CommandSigner.from_file(kafka.signing_key) if kafka.signing_key else None
    count = 0
    for key, value in messages:
        headers = signer.headers(kafka.commands_topic, key, value) if signer else None
        producer.send(kafka.commands_topic, key=key, value=value, partition=partition, headers=headers)
        count += 1
    producer.flush()
    producer.close()
    return count


def start(command: str, database_url: str, kafka: KafkaSettings, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`grievance COMMAND` in its own process, configured by the environment as in production."""
    env = {**os.environ, **kafka.as_env(), "GRIEVANCE_DATABASE_URL": database_url, "GRIEVANCE_LOG_FORMAT": "json"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "adapters.cli", command, *extra], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def committed(kafka: KafkaSettings) -> int:
    """How many command messages the workers' group has committed, summed over partitions."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.servers)
    try:
        offsets = admin.list_group_offsets({kafka.worker_group: None}).get(kafka.worker_group, {})
    finally:
        admin.close()
    return sum(max(0, o.offset) for tp, o in offsets.items() if tp.topic == kafka.commands_topic)


def assigned(log: Path) -> list[int]:
    """The partitions a worker last said it was assigned, from its JSON log."""
    partitions: list[int] = []
    for line in log.read_bytes().splitlines():
        if b'"partitions assigned"' in line:
            partitions = json.loads(line)["partitions"]
    return partitions


def wait_for(condition: Any, timeout: float, what: str, processes: Iterable[subprocess.Popen[bytes]] = ()) -> None:
    """Poll `condition` until true; fail naming `what`, or a process that died on the way."""
    deadline = time.monotonic() + timeout
    while not condition():
        for p in processes:
            if p.poll() is not None:
                raise AssertionError(f"{p.args!r} exited with {p.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def read_topic(kafka: KafkaSettings, topic: str, expected: int = 0, timeout: float = 60) -> list[Any]:
    """Every record of a topic, in (partition, offset) order: read until at least `expected` have come and
    then nothing more for a second. (Tansu's ListOffsets answers are not end offsets, so they are not used.)"""
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            polled = [r for batch in consumer.poll(timeout_ms=100).values() for r in batch]
            if polled:
                records.extend(polled)
                quiet_since = time.monotonic()
            elif len(records) >= expected and time.monotonic() - quiet_since > 1.0:
                break
        assert len(records) >= expected, f"read {len(records)} records of {topic}, expected at least {expected}"
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def stored_events(chain: ServiceChain) -> set[tuple[UUID, int, str, str]]:
    """(grievance, version, event type, command id) of every stored event."""
    events: set[tuple[UUID, int, str, str]] = set()
    start_at = 1
    while notifications := chain.recorder.select_notifications(start=start_at, limit=5000):
        for n in notifications:
            e: Any = chain.mapper.to_domain_event(n)
            events.add((e.originator_id, e.originator_version, type(e).__name__, e.command_id))
        start_at = notifications[-1].id + 1
    return events
