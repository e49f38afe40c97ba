"""The command worker: grid workers' commands from Kafka, applied in batches, exactly once.

Each partition's position lives in the event store, recorded in the same transaction as the events
its batch produced (the library's tracking record). A worker that is given a partition starts after
that position, and skips anything at or before it, so a batch delivered again after a crash or a
rebalance is never applied twice; Kafka's committed offsets only follow, for lag monitoring.

A message that does not decode, or that a rule refuses, is copied to the rejected topic, with its
source and its error in headers, before its batch is stored: nothing is dropped silently, and a crash
can copy a message twice (readers dedupe on source topic, partition and offset). The worker carries on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from adapters import wire
from adapters.backoff import wait_after
from adapters.intake import Intake
from adapters.kafka.intake_sealing import IntakeOpener, Unopened, withheld
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import SIGNATURE_HEADER, KeyBook, Unverified
from adapters.storage.seen_signatures import SeenSignatures
from engine.access import Principal
from engine.commands import Command, CommandBase, command_decoder
from engine.errors import InfrastructureError
from schemas.results import Accepted, Rejected, Result

log = structlog.get_logger("grievance.worker")
# What a batch's failure is retried for, whole: the store or the broker failing for a while, another worker's
# position. Anything else is the engine failing on one of the batch's messages.
RETRIED_FAILURES = (PersistenceError, KafkaError, InfrastructureError, OSError)
# The most of a message's value a rejected copy carries, so that a copy (with its headers) always fits within the
# broker's limit that its original just fitted: else the copy fails, and with it the batch, for ever.
MAX_COPY = 512 * 1024
_EMPTY = Rejected(command_id=None, grievance_id=None, code="malformed", field="$", reason="the message has no value")


@dataclass
class BatchTally:
    """What became of one batch of messages."""

    messages: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    # Delivered again, but at or before the partition's stored position: already applied.
    skipped: int = 0


def key_mismatch(key: bytes | None, command: CommandBase) -> Rejected | None:
    """A message must be keyed by its grievance id: the key picks the partition, and only one partition
    per grievance keeps that grievance's commands in order."""
    reason = None
    if key is None:
        reason = "the message has no key; key it by the command's grievance_id"
    else:
        try:
            if UUID(key.decode()) != command.grievance_id:
                reason = f"the key {key.decode()!r} is not the command's grievance_id {command.grievance_id}"
        except (UnicodeDecodeError, ValueError):
            reason = f"the key {key!r} is not a grievance id"
    if reason is None:
        return None
    return Rejected(
        command_id=command.command_id,
        grievance_id=command.grievance_id,
        code="key_mismatch",
        field="key",
        reason=reason,
    )


def rejection_headers(record: Any, result: Rejected) -> list[tuple[str, bytes]]:
    """Headers of a rejected copy: the error, and where the original came from, so that a reader can dedupe
    on (source topic, partition, offset) when a crash makes the worker reject a message twice."""
    headers = [
        ("error.code", result.code.encode()),
        ("error.field", result.field.encode()),
        ("error.reason", result.reason.encode()),
        ("source.topic", str(record.topic).encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
    ]
    if result.command_id:
        headers.append(("command_id", result.command_id.encode()))
    return headers


class CommandWorker:
    """Consumes the command topic in one consumer group; see the module's docstring for its guarantees."""

    def __init__(
        self,
        intake: Intake,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        settings: KafkaSettings,
        *,
        keys: KeyBook,
        opener: IntakeOpener | None = None,
        seen: SeenSignatures | None = None,
    ) -> None:
        self.intake = intake
        # Who sent each message is proved by its signature, checked against these keys.
        self.keys = keys
        # Residents' personal data comes sealed to the engine's intake key; this opens it.
        self.opener = opener or IntakeOpener(None)
        # Signatures seen, and where: the same one elsewhere in the log is a replay.
        self.seen = seen
        self.consumer = consumer
        self.producer = producer
        self.settings = settings
        self._stored_positions: dict[TopicPartition, OffsetAndMetadata] = {}

    @classmethod
    def connect(
        cls,
        intake: Intake,
        settings: KafkaSettings,
        *,
        keys: KeyBook,
        seen: SeenSignatures | None = None,
        client_id: str = "grievance-worker",
    ) -> CommandWorker:  # residents' data is opened with the settings' intake private key; fmt: skip
        """A worker with its own consumer (in the workers' group) and producer (for rejected copies), applying
        commands as whoever signed each (`keys`)."""
        consumer = KafkaConsumer(
            bootstrap_servers=settings.servers,
            client_id=client_id,
            group_id=settings.worker_group,
            enable_auto_commit=False,
            # A new group starts at the beginning: commands sent before the first worker started count too.
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_size,
            fetch_max_wait_ms=settings.batch_wait_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
        )
        producer = KafkaProducer(bootstrap_servers=settings.servers, client_id=client_id, acks="all", linger_ms=5)
        opener = IntakeOpener.from_file(settings.intake_private_key)
        worker = cls(intake, consumer, producer, settings, keys=keys, opener=opener, seen=seen)
        consumer.subscribe([settings.commands_topic], listener=_Rebalance(lambda: worker))
        return worker

    def close(self) -> None:
        """Leave the group at once (so its partitions move without waiting for the session to time out)."""
        self.consumer.close(autocommit=False)
        self.producer.close()

    def run(self, stop: threading.Event) -> None:
        """Apply batches until `stop` is set; a failing store or broker is retried with backoff, never skipped."""
        failures = 0
        while not stop.is_set():
            polled = self.consumer.poll(timeout_ms=200, max_records=self.settings.batch_size)
            if self._stored_positions:
                positions, self._stored_positions = self._stored_positions, {}
                with contextlib.suppress(CommitFailedError):
                    self.consumer.commit(positions)
            if not polled:
                continue
            try:
                self.handle(polled)
                failures = 0
            except Exception as error:
                failures += 1
                wait = wait_after(failures)
                log.error("batch failed; retrying it", error=repr(error), retry_in_s=wait)
                self._rewind(polled)
                stop.wait(wait)

    def handle(self, polled: Mapping[TopicPartition, Sequence[Any]]) -> BatchTally:
        """Apply one poll's records, a transaction per partition, then commit the offsets to Kafka."""
        started = time.perf_counter()
        tally = BatchTally()
        for tp, records in polled.items():
            self._apply_partition(tp, records, tally)
        try:
            self.consumer.commit(_next_offsets(polled))
        except CommitFailedError:
            # The group moved a partition while we worked; its new owner starts after the stored position.
            log.warning("offsets not committed after a rebalance; the store's positions stand")
        log.info(
            "batch",
            messages=tally.messages,
            applied=tally.applied,
            duplicates=tally.duplicates,
            rejected=tally.rejected,
            skipped=tally.skipped,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return tally

    def _apply_partition(self, tp: TopicPartition, records: Sequence[Any], tally: BatchTally) -> None:
        upstream = upstream_name(tp)
        tally.messages += len(records)
        while True:
            position = self.intake.chain.tracked(upstream)
            fresh = [r for r in records if position is None or r.offset > position]
            try:
                if fresh:
                    self._apply(upstream, fresh, tally)
            except IntegrityError:
                # Another worker stored a batch of this partition while we worked on ours (a rebalance
                # caught it mid-batch): start again after the position it reached.
                log.warning("partition advanced by another worker", partition=tp.partition)
                continue
            tally.skipped += len(records) - len(fresh)
            return

    def _apply(self, upstream: str, records: Sequence[Any], tally: BatchTally) -> None:
        try:
            results = self._apply_together(upstream, records)
        except Exception as error:
            if isinstance(error, RETRIED_FAILURES):
                raise
            # Not the store or the broker: one of these messages makes the engine fail. Apply them one at a
            # time, so that it alone goes to the rejected topic and the partition goes on.
            log.error("a message of the batch makes the engine fail; applying them one by one", error=repr(error))
            results = [self._apply_alone(upstream, record) for record in records]
        for result in results:
            if isinstance(result, Accepted):
                tally.duplicates += result.duplicate
                tally.applied += not result.duplicate
            elif isinstance(result, Rejected):
                tally.rejected += 1

    def _apply_alone(self, upstream: str, record: Any) -> Result:
        """One message in a transaction of its own: applied, or rejected with the reason the engine failed."""
        try:
            return self._apply_together(upstream, [record])[0]
        except Exception as error:
            if isinstance(error, RETRIED_FAILURES):
                raise
            refused = Rejected(command_id=None, grievance_id=None, code="unapplicable", field="$",
                               reason=f"the engine failed on this message ({type(error).__name__})")  # fmt: skip
            log.error("message rejected: the engine fails on it", partition=record.partition, offset=record.offset,
                      error=repr(error))  # fmt: skip
            self._copy_rejected([record], [refused])
            self.intake.submit([], principal=[], tracking=Tracking(upstream, record.offset))
            return refused

    def _apply_together(self, upstream: str, records: Sequence[Any]) -> list[Result]:
        """Records of one partition in one transaction, with the partition's position after the last; each one's
        result, rejected copies written before the transaction."""
        decoded: list[Result | None] = []
        commands: list[Command] = []
        senders: list[Principal] = []
        now = self.intake.chain.clock()
        proved: list[Principal | Unverified | None] = []
        for record in records:
            if record.value is None:
                proved.append(None)
                continue
            try:
                proved.append(self.keys.verify(record.topic, record.key, record.value, record.headers, now))
            except Unverified as unproved:
                proved.append(unproved)
        # Only proved messages' signatures count as seen: a forged message cannot make a true one a "replay".
        replayed = self._replays([r for r, p in zip(records, proved, strict=True) if isinstance(p, Principal)], now)
        for record, sender in zip(records, proved, strict=True):
            if record.value is None or sender is None:
                decoded.append(_EMPTY)
                continue
            if isinstance(sender, Unverified):
                decoded.append(Rejected(command_id=None, grievance_id=None, code=sender.code, field="signature",
                                        reason=sender.reason))  # fmt: skip
                continue
            if _place(record) in replayed:
                decoded.append(Rejected(command_id=None, grievance_id=None, code="replayed", field="signature",
                                        reason="this signed message was produced before, elsewhere in the log"),
                               )  # fmt: skip
                continue
            try:
                command: Command = command_decoder.decode(record.value)
            except wire.UNDECODABLE as e:
                decoded.append(wire.malformed(e))
                continue
            refusal = key_mismatch(record.key, command)
            if refusal is None:
                try:
                    command = self.opener.opened(command)
                except Unopened as unopened:
                    refusal = Rejected(command_id=command.command_id, grievance_id=command.grievance_id,
                                       code=unopened.code, field="resident", reason=unopened.reason)  # fmt: skip
            decoded.append(refusal)
            if refusal is None:
                commands.append(command)
                senders.append(sender)

        def merged(applied: list[Result]) -> list[Result]:
            rest = iter(applied)
            return [r if r is not None else next(rest) for r in decoded]

        return merged(
            self.intake.submit(
                commands,
                principal=senders,
                tracking=Tracking(upstream, records[-1].offset),
                before_store=lambda applied: self._copy_rejected(records, merged(applied)),
            )
        )

    def _replays(self, records: Sequence[Any], now: datetime) -> set[str]:
        """The places of records whose signature was seen at another place of the log before."""
        if self.seen is None:
            return set()
        signed = [(dict(r.headers or []).get(SIGNATURE_HEADER), _place(r)) for r in records]
        return self.seen.replays([(s, p) for s, p in signed if s], now)

    def _copy_rejected(self, records: Sequence[Any], results: Sequence[Result]) -> None:
        """Copy each rejected record to the rejected topic, with its error and source, and wait for the broker."""
        sent = [
            self.producer.send(
                # A copy never carries a resident's personal data readable, though it may have come so.
                self.settings.rejected_topic, key=record.key,
                value=None if record.value is None else withheld(record.value)[:MAX_COPY],
                headers=[*rejection_headers(record, result),
                         *([("value.truncated", str(len(record.value)).encode())]
                           if record.value is not None and len(record.value) > MAX_COPY else [])],
            )
            for record, result in zip(records, results, strict=True)
            if isinstance(result, Rejected)
        ]  # fmt: skip
        for record, result in zip(records, results, strict=True):
            if isinstance(result, Rejected) and result.field in ("$", "key", "signature", "resident"):
                # Rule refusals are logged by the intake, with their grievance and command ids.
                log.warning("message rejected", code=result.code, field=result.field, reason=result.reason,
                            partition=record.partition, offset=record.offset)  # fmt: skip
        if sent:
            self.producer.flush()
            for future in sent:
                future.get(timeout=0)  # raises the broker's error if a copy was not written

    def on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Start each partition just after the position stored with its last batch, whatever Kafka committed;
        the stored position is committed to Kafka too at the next poll, so that its lag reads true."""
        for tp in assigned:
            position = self.intake.chain.tracked(upstream_name(tp))
            if position is not None:
                self.consumer.seek(tp, position + 1)
                self._stored_positions[tp] = OffsetAndMetadata(position + 1, "", -1)
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))

    def _rewind(self, polled: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Seek each partition of a failed poll back to its first record, to be polled (and filtered) again."""
        for tp, records in polled.items():
            # A partition no longer ours after a rebalance: its new owner starts from the stored position.
            with contextlib.suppress(KafkaError, AssertionError, ValueError):
                self.consumer.seek(tp, min(r.offset for r in records))


def upstream_name(tp: TopicPartition) -> str:
    """The name a partition's position is stored under, beside the events."""
    return f"kafka:{tp.topic}[{tp.partition}]"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Positions each partition the worker gains from the store; nothing to flush for those it loses, as
    every batch is stored before the next poll."""

    def __init__(self, worker: Callable[[], CommandWorker]) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker().on_assigned(assigned)


def _next_offsets(polled: Mapping[TopicPartition, Sequence[Any]]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {tp: OffsetAndMetadata(max(r.offset for r in records) + 1, "", -1) for tp, records in polled.items()}


def _place(record: Any) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
