"""The command worker in-process, against a real broker and a SQLite file: what happens to each message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaProducer, TopicPartition

from adapters.composition import build_chain, build_emitter, build_key_book
from adapters.intake import Intake
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import CommandSigner, KeyBook, KeyRole, add_key
from adapters.kafka.topics import ensure_topics
from adapters.kafka.worker import CommandWorker, upstream_name
from adapters.settings import Settings
from adapters.storage.seen_signatures import SeenSignatures
from engine.service_chain import ServiceChain
from tests.conftest import T0
from tests.kafka_tools import produce, read_topic, wait_for
from tests.scenario import HOUSEHOLD


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=f"sqlite:///{tmp_path}/g.db", durability="off"))
    yield app
    app.close()


def report(gid: UUID, command_id: str, **overrides: Any) -> bytes:
    return json.dumps({"kind": "report", "command_id": command_id, "grievance_id": str(gid), "actor": "w-1",
                       "occurred_at": T0.isoformat(), "unit_id": HOUSEHOLD, "category": "parking",
                       "title": "车位紧张", "description": "d", **overrides}).encode()  # fmt: skip


def keys_for(kafka: KafkaSettings, chain: ServiceChain) -> KeyBook:
    return build_key_book(Settings(kafka=kafka), chain.chart)


def run_until(worker: CommandWorker, kafka: KafkaSettings, upstream_count: int, chain: ServiceChain) -> None:
    """Run the worker in a thread until the stored positions cover `upstream_count` messages."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: stored_through(chain, kafka) >= upstream_count, 60, "the worker to store every message")
    finally:
        stop.set()
        thread.join()
        worker.close()


def stored_through(chain: ServiceChain, kafka: KafkaSettings) -> int:
    """How many messages of the command topic the store says it has applied (positions + 1, summed)."""
    positions = [chain.tracked(upstream_name(TopicPartition(kafka.commands_topic, p))) for p in range(kafka.partitions)]
    return sum(p + 1 for p in positions if p is not None)


def test_bad_messages_go_to_the_rejected_topic_with_their_source_and_reason_and_the_worker_goes_on(
    chain: ServiceChain, kafka: KafkaSettings
) -> None:
    gid, other = uuid4(), uuid4()
    messages = [
        (str(gid).encode(), b"{not json"),
        (str(gid).encode(), report(gid, "r1", unit_id="")),
        (str(other).encode(), report(gid, "r2")),  # keyed by another grievance
        (None, report(gid, "r3")),
        (str(gid).encode(), report(gid, "r4")),
        (str(gid).encode(), report(gid, "r4")),  # a phone's retry
        (str(gid).encode(), report(gid, "r5")),  # reported twice under a new command id: a rule refuses it
    ]
    produce(kafka, messages)
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain)), kafka, len(messages), chain)

    assert chain.grievance(gid).version == 1
    copies = read_topic(kafka, kafka.rejected_topic, expected=5)
    assert len(copies) == 5
    found = {}
    for r in copies:
        h = {k: v.decode() for k, v in r.headers}
        assert h["source.topic"] == kafka.commands_topic
        assert h["error.reason"]
        found[r.value] = (h["error.code"], h["error.field"], r.key)
    assert found[b"{not json"][:2] == ("malformed", "$")
    assert found[report(gid, "r1", unit_id="")][:2] == ("malformed", "unit_id")
    assert found[report(gid, "r2")][:3] == ("key_mismatch", "key", str(other).encode())
    assert found[report(gid, "r3")][:3] == ("key_mismatch", "key", None)
    assert found[report(gid, "r5")][0] == "already_reported"


def test_a_second_reading_of_the_topic_applies_nothing_again(chain: ServiceChain, kafka: KafkaSettings) -> None:
    gids = [uuid4() for _ in range(40)]
    messages = [(str(g).encode(), report(g, f"r-{i}")) for i, g in enumerate(gids)]
    messages += [(str(gids[0]).encode(), b"[]")]
    produce(kafka, messages)
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain)), kafka, len(messages), chain)
    stored = chain.recorder.max_notification_id()

    # A new consumer group starts at offset 0: as if Kafka had lost every commit.
    fresh_group = replace(kafka, worker_group=kafka.worker_group + "-again")
    worker = CommandWorker.connect(Intake(chain), fresh_group, keys=keys_for(fresh_group, chain))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: worker.consumer.assignment(), 30, "the new group's assignment")
        wait_for(lambda: all(worker.consumer.position(tp) is not None for tp in worker.consumer.assignment()), 30,
                 "positions")  # fmt: skip
    finally:
        stop.set()
        thread.join()
        worker.close()
    assert chain.recorder.max_notification_id() == stored
    assert len(read_topic(kafka, kafka.rejected_topic, expected=1)) == 1, "the bad message was not copied again"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_commands_compressed_by_another_client_are_applied(
    chain: ServiceChain, kafka: KafkaSettings, codec: str
) -> None:
    """Any client may compress (and so may a topic's own setting): librdkafka's every codec reaches the store."""
    from confluent_kafka import Producer  # an independent client: librdkafka, not kafka-python

    ensure_topics(kafka, kafka.commands_topic, kafka.rejected_topic)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "compression.type": codec, "linger.ms": 20})
    ids = [uuid4() for _ in range(5)]
    for i, gid in enumerate(ids):
        key, value = str(gid).encode(), report(gid, f"{codec}-{i}")
        assert kafka.signing_key is not None
        signature = CommandSigner.from_file(kafka.signing_key).headers(kafka.commands_topic, key, value)
        producer.produce(
            kafka.commands_topic, key=key, value=value, headers=list[tuple[str, str | bytes | None]](signature)
        )
    assert producer.flush(30) == 0
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain)), kafka, len(ids), chain)
    assert all(chain.grievance(gid).version == 1 for gid in ids)
    assert read_topic(kafka, kafka.rejected_topic, expected=0) == []


def test_a_message_the_engine_fails_on_is_rejected_alone_and_the_partition_goes_on(
    chain: ServiceChain, kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid, poison, after = uuid4(), uuid4(), uuid4()
    check = chain.policy.check

    def failing_on_poison(principal: Any, command: Any, grievance: Any) -> None:
        if command.grievance_id == poison:
            raise RecursionError("a bug the message finds")
        check(principal, command, grievance)

    monkeypatch.setattr(chain.policy, "check", failing_on_poison)
    messages = [(str(g).encode(), report(g, f"c-{g}")) for g in (gid, poison, after)]
    produce(kafka, messages, partition=0)
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain)), kafka, len(messages), chain)
    assert chain.grievance(gid).version == 1
    assert chain.grievance(after).version == 1
    (copy,) = read_topic(kafka, kafka.rejected_topic, expected=1)
    headers = {k: v.decode() for k, v in copy.headers}
    assert (headers["error.code"], headers["source.offset"]) == ("unapplicable", "1")
    assert copy.value == messages[1][1]


def test_the_worker_applies_each_command_as_whoever_signed_it_and_refuses_the_unproved(
    chain: ServiceChain, kafka: KafkaSettings, tmp_path: Path
) -> None:
    """A grid worker's key is their identity on Kafka as their token is over HTTP: the same roles and
    jurisdiction, whatever actor the body names. Unsigned messages never reach the engine."""
    keys = tmp_path / "keys.json"
    add_key(keys, tmp_path / "li.pem", name="worker-li", role=KeyRole.GRID_WORKER, unit_id="gr-chengxi-03-2",
            chart=chain.chart)  # fmt: skip
    signed = replace(kafka, keys_file=keys, signing_key=tmp_path / "li.pem")
    now = datetime.now(UTC).isoformat()
    mine, forged, elsewhere, unsigned = uuid4(), uuid4(), uuid4(), uuid4()
    messages = [
        (str(mine).encode(), report(mine, "mine", actor="worker-li", occurred_at=now)),
        (str(forged).encode(), report(forged, "forged", actor="sup-cx", occurred_at=now)),
        (
            str(elsewhere).encode(),
            report(elsewhere, "far", actor="worker-li", occurred_at=now, unit_id="mh-chengdong-01-1-1-1"),
        ),
    ]
    produce(signed, messages)
    produce(replace(kafka, signing_key=None), [(str(unsigned).encode(), report(unsigned, "plain", occurred_at=now))])
    run_until(CommandWorker.connect(Intake(chain), signed, keys=keys_for(signed, chain)), signed, 4, chain)

    assert chain.grievance(mine).reported_by == "worker-li"
    copies = [{k: v.decode() for k, v in r.headers} for r in read_topic(kafka, kafka.rejected_topic, expected=3)]
    codes = sorted((h["error.code"], h["error.field"]) for h in copies)
    assert codes == [("forbidden", "actor"), ("forbidden", "unit_id"), ("unsigned", "signature")]


def test_residents_data_never_crosses_kafka_readable(chain: ServiceChain, kafka: KafkaSettings) -> None:
    """Sealed by the producer to the engine's intake key, opened by the worker and sealed again under the
    resident's own key; a producer that sends it in clear is refused, and the copy withholds it."""
    sealed_gid, plain_gid = uuid4(), uuid4()
    resident = {"resident_id": "res-7", "name": "王芳", "phone": "139 0000 1234"}
    emitter = build_emitter(Settings(kafka=kafka))
    try:
        emitter.emit([json.loads(report(sealed_gid, "sealed", resident=resident))])
    finally:
        emitter.close()
    produce(kafka, [(str(plain_gid).encode(), report(plain_gid, "plain", resident=resident))])
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain)), kafka, 2, chain)

    stored = chain.grievance(sealed_gid)
    assert (stored.resident_name, stored.resident_phone) == ("王芳", "139 0000 1234")
    (copy,) = read_topic(kafka, kafka.rejected_topic, expected=1)
    assert dict(copy.headers)["error.code"] == b"unsealed_personal_data"
    assert "王芳".encode() not in copy.value
    assert b"0000 1234" not in copy.value
    sealed_message = next(r for r in read_topic(kafka, kafka.commands_topic, expected=2) if b"sealed" in r.value)
    assert "王芳".encode() not in sealed_message.value
    assert b"hpke:v1:" in sealed_message.value


def test_a_signed_message_produced_again_is_rejected_as_a_replay(chain: ServiceChain, kafka: KafkaSettings) -> None:
    """A resolve sent before its claim is refused; someone who copies it from the topic and produces it again
    later, when it would apply, finds it rejected as a replay. Delivered again at its own place, it is not."""
    gid = uuid4()
    refused_first = (str(gid).encode(), json.dumps({"kind": "resolve", "command_id": "early", "grievance_id": str(gid),
                     "actor": "m", "occurred_at": T0.isoformat(), "summary": "done"}).encode())  # fmt: skip
    produce(kafka, [refused_first], partition=0)
    seen = SeenSignatures(chain.recorder.datastore)  # type: ignore[attr-defined]
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain), seen=seen), kafka, 1, chain)
    (original,) = read_topic(kafka, kafka.commands_topic, expected=1)
    copier = KafkaProducer(bootstrap_servers=kafka.servers)
    copier.send(kafka.commands_topic, key=original.key, value=original.value, headers=original.headers, partition=0)
    copier.flush()
    copier.close()
    run_until(CommandWorker.connect(Intake(chain), kafka, keys=keys_for(kafka, chain), seen=seen), kafka, 2, chain)
    codes = [dict(r.headers)["error.code"] for r in read_topic(kafka, kafka.rejected_topic, expected=2)]
    assert codes[1] == b"replayed"
    assert codes[0] != b"replayed", "the first one was refused by a rule, not as a replay"
