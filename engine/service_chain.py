"""The application service: the chain's use cases, each a command turned into stored events."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, cast
from uuid import UUID

import msgspec
from eventsourcing.application import Application, Repository
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Tracking, TrackingRecorder, Transcoder

from engine.access import AccessPolicy, Principal, Role
from engine.chart import OrgChart
from engine.clock import Clock, TimeBounds, system_clock
from engine.collector import collector_paused
from engine.commands import Claim, Command, Escalate, Outcome, Rate, RecordProgress, Reply, Report, Resolve
from engine.decided_grievances import DEFAULT_SIZE, DecidedGrievances
from engine.errors import (
    AlreadyReported,
    BrokenHistory,
    ConcurrentWriteConflict,
    GrievanceError,
    GrievanceNotFound,
    InfrastructureError,
    InvalidValue,
    UnknownResident,
)
from engine.grievance import Grievance, digest_of
from engine.levels import REPORTING_LEVELS
from engine.limits import TimeLimits
from engine.personal_data import PersonalData, Sealer
from engine.roster_rules import ClaimantsSource
from engine.transcoder import MsgspecTranscoder, TypedEventMapper

# Events between snapshots: a load replays at most this many after the latest one (100 left a cold command on a
# 5,000-event grievance 3x one on a 10-event grievance, BENCHMARKS.md). A snapshot holds the digests of every command
# id the grievance took (8 bytes each), and costs a transaction of its own; only the last one taken is kept.
SNAPSHOT_INTERVAL = 25

log = logging.getLogger("grievance.snapshots")


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


def replay(grievance: Any, events: Iterable[Any]) -> Any:
    """Fold events into a grievance: the library's project_aggregate minus a runtime-Protocol isinstance
    check per event, which made loading a 50-event grievance three times slower."""
    for domain_event in events:
        grievance = domain_event.mutate(grievance)
    return grievance


def _read(grievance_id: UUID, expected: int, stored: StoredEvent, to_domain_event: Callable[[StoredEvent], Any]) -> Any:
    """The domain event of `stored`, which must be the grievance's event number `expected`."""
    if stored.originator_version != expected:
        raise BrokenHistory(
            grievance_id, expected, f"event {expected} is missing (the next one stored is {stored.originator_version})"
        )
    try:
        return to_domain_event(stored)
    except InfrastructureError:
        raise  # a key that cannot be read (GRIEVANCE_RESIDENT_KEK_FILE missing or wrong) is a setting, not damage
    except Exception as e:  # whatever a damaged row makes the decoder raise, it is a broken link, not a crash
        raise BrokenHistory(grievance_id, expected, f"event {expected} cannot be read ({type(e).__name__})") from e


def _mutated(grievance_id: UUID, domain_event: Any, state: Any) -> Any:
    """`state` with `domain_event` applied; an event that does not fit its grievance is a broken link."""
    try:
        return domain_event.mutate(state)
    except Exception as e:  # an event that no longer fits (a first event lost, say): a broken link, not a crash
        raise BrokenHistory(
            grievance_id, domain_event.originator_version, f"the event does not follow ({type(e).__name__})"
        ) from e


class ReadsManyAggregates(Protocol):
    """A recorder that reads the stored events of many aggregates in one query, ordered by aggregate and version."""

    def select_events_after(self, after: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        """The events of each aggregate in `after` whose versions are greater than the one it names."""
        ...


class ReadsSnapshotsWithEvents(Protocol):
    """A snapshot recorder that reads the latest snapshots of many aggregates with the events stored since them, in one
    query (adapters.storage.snapshots)."""

    def select_latest_with_events(
        self, after: Mapping[UUID, int], latest_of: Collection[UUID]
    ) -> tuple[dict[UUID, StoredEvent], Sequence[StoredEvent]]:
        """The latest snapshot of each aggregate of `latest_of` that has one, and the events of each aggregate in
        `after` above the version it names or, for one with a snapshot, from the snapshot's own version on."""
        ...


class ServiceChain(Application[UUID]):
    """The party-building service chain (党建服务链条): report, claim, escalate, close and rate grievances.

    Every command carries a client command id: a repeat returns the first outcome and stores nothing.
    A batch is decided command by command and stored in one transaction; a command that a rule refuses
    fails alone. A write that loses an optimistic-concurrency race is decided again on fresh state.
    """

    name = "grievances"
    max_attempts = 10
    # Snapshots as the library takes them (its `snapshotting_intervals` also has it build the snapshot store), but
    # taken and read by the batch path here: `_store` and `_load_many`.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Grievance: SNAPSHOT_INTERVAL}

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        chart: OrgChart,
        limits: TimeLimits | None = None,
        clock: Clock | None = None,
        bounds: TimeBounds | None = None,
        decided_cache_size: int = DEFAULT_SIZE,
        snapshot_interval: int | None = None,
    ) -> None:
        self.chart = chart
        self.limits = limits or TimeLimits()
        # The server's clock decides what is overdue; `bounds` how far a command's own time may stray from it.
        self.clock: Clock = clock or system_clock
        self.bounds = bounds or TimeBounds()
        self.policy = AccessPolicy(chart)
        # Who may claim at each unit (the roster book, engine/roster_book.py, sets itself here); None: unchecked.
        self.claimants: ClaimantsSource | None = None
        # Each command type's handler: one call on the aggregate.
        self._handlers: Mapping[type[Command], Callable[[Grievance, Any, datetime | None], None]] = {
            Claim: self._claim,
            RecordProgress: self._record_progress,
            Escalate: self._escalate,
            Resolve: self._resolve,
            Reply: self._reply,
            Rate: self._rate,
        }
        super().__init__(env)
        # A store that reads many grievances in one query (adapters.storage.event_stores) has each batch read at once.
        self._batch_reader: ReadsManyAggregates | None = (
            self.recorder if hasattr(self.recorder, "select_events_after") else None
        )
        # Grievances as last stored, so a command reads only what was stored since: its cost stays flat however
        # long the history. Deciding never needs a resident's name or phone, so grievances are decided, and held,
        # with those fields as stored (sealed): no key is read to decide, and none outlives its resident's erasure.
        self.decided = DecidedGrievances(decided_cache_size)
        self._deciding_mapper = self.sealed_mapper()
        # 0 takes and reads no snapshots (nor does a store whose IS_SNAPSHOTTING_ENABLED is off).
        self.snapshot_interval = SNAPSHOT_INTERVAL if snapshot_interval is None else snapshot_interval
        if self.snapshot_interval < 0:
            raise ValueError("the snapshot interval must be zero (no snapshots) or more")
        snapshot_recorder = self.snapshots.recorder if self.snapshots is not None and self.snapshot_interval else None
        # Grievances whose last load replayed an interval's events or more (no snapshot, or one set aside).
        self._snapshot_wanted: set[UUID] = set()
        self._snapshot_reader: ReadsSnapshotsWithEvents | None = (
            snapshot_recorder if hasattr(snapshot_recorder, "select_latest_with_events") else None
        )

    def protect_personal_data(self, personal_data: PersonalData) -> None:
        """Seal residents' personal fields with `personal_data` before they are stored, and open them when read."""
        cast(TypedEventMapper, self.mapper).personal_data = personal_data

    def forget_resident(self, resident_id: str) -> bool:
        """Erase a resident: their name and phone open as ERASED everywhere from now on, while the events and
        their hashes stay whole. Whether their key was destroyed now (False: erased before, or nothing is sealed
        here); a resident no report ever named is refused, so that a typo is not recorded as an erasure."""
        personal_data: PersonalData | None = cast(TypedEventMapper, self.mapper).personal_data
        if personal_data is None:
            return False
        if not personal_data.knows(resident_id):
            raise UnknownResident("resident_id", f"no report has named resident {resident_id!r}: nothing to erase")
        return personal_data.forget(resident_id)

    def sealed_mapper(self) -> Mapper[UUID]:
        """A mapper that reads events with residents' personal fields as stored, sealed: for readers that must
        not pass them on (the events topic) or never need them (the dashboard views)."""
        mapper = copy.copy(cast(TypedEventMapper, self.mapper))
        mapper.personal_data = None
        return mapper

    def construct_transcoder(self) -> Transcoder:
        return MsgspecTranscoder()

    def construct_repository(self) -> Repository[UUID]:
        # The library's repository would start from a snapshot without checking it against the event it was taken at:
        # it reads events only (loads go through `_load_many`, which checks).
        repository = super().construct_repository()
        repository.snapshot_store = None
        return repository

    def construct_mapper(self) -> Mapper[UUID]:
        transcoder = self.construct_transcoder()
        assert isinstance(transcoder, MsgspecTranscoder)
        return TypedEventMapper(transcoder, compressor=self.factory.compressor(), cipher=self.factory.cipher())

    # ----------------------------------------------------------------------------- entry points

    def apply(self, command: Command, *, principal: Principal) -> Outcome:
        """Apply one command sent by `principal`; a refused command raises its `GrievanceError`."""
        (result,) = self.execute([command], principal=principal)
        if isinstance(result, GrievanceError):
            raise result
        return result

    def execute(
        self,
        commands: Sequence[Command],
        *,
        principal: Principal | Sequence[Principal],
        tracking: Tracking | None = None,
        before_store: Callable[[list[Outcome | GrievanceError]], None] | None = None,
    ) -> list[Outcome | GrievanceError]:
        """Apply a batch sent by `principal` (or by each command's own, in order) in one transaction (group
        commit): one result per command, in order.

        Each command is checked against the access policy (engine.access) on the grievance as it stands. A
        refused command stores nothing and gets its error in its place; the rest are stored together.
        `tracking`, the batch's position in an upstream log (a Kafka partition, say), is recorded in the
        same transaction, even when nothing else is stored. If another writer records a position of the
        same upstream meanwhile, this raises `IntegrityError` and stores nothing: the caller must drop
        what that writer applied before trying again. `before_store` sees the results just before they
        are stored; if it raises, nothing is stored.
        """
        senders = [principal] * len(commands) if isinstance(principal, Principal) else list(principal)
        if len(senders) != len(commands):
            raise ValueError("one principal for the batch, or one for each of its commands")
        # A batch's objects live until it is stored: the collector, paused, goes over them once afterwards
        # rather than again and again meanwhile (engine/collector.py).
        with collector_paused():
            return self._execute(commands, senders, tracking, before_store)

    def _execute(
        self,
        commands: Sequence[Command],
        senders: Sequence[Principal],
        tracking: Tracking | None,
        before_store: Callable[[list[Outcome | GrievanceError]], None] | None,
    ) -> list[Outcome | GrievanceError]:
        for attempt in range(self.max_attempts):
            if attempt:
                # Back off a little, at random, so racing writers stop colliding in lockstep.
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
            upstream_at = self.tracked(tracking.application_name) if tracking else None
            working = self._load_many({c.grievance_id for c in commands if isinstance(c.grievance_id, UUID)}, broken={})
            new_ids = {gid for gid, g in working.items() if g is None}
            results: list[Outcome | GrievanceError] = []
            if self.claimants is not None:
                # The rolls of every unit the batch's claims name, in one read, not one a claim.
                self.claimants.prepare({c.unit_id for c in commands if isinstance(c, Claim)})
            refused_senders = self._refused_senders(senders)
            for i, command in enumerate(commands):
                if (sender_refused := refused_senders.get(senders[i])) is not None:
                    results.append(sender_refused)
                    continue
                try:
                    results.append(self._decide(command, senders[i], working))
                except GrievanceError as refused:
                    results.append(refused)
            changed = [g for g in working.values() if g is not None and g.pending_events]
            if not changed and tracking is None:
                self._hold(working, new_ids)
                return results
            if before_store is not None:
                before_store(results)
            try:
                self._store(changed, tracking, fresh=new_ids)
            except IntegrityError:
                if tracking is not None:
                    now_at = self.tracked(tracking.application_name)
                    if now_at != upstream_at or (now_at is not None and now_at >= tracking.notification_id):
                        raise  # another writer applied (part of) this upstream: deciding again cannot help
                continue  # Another writer stored a version first: decide again on fresh state.
            self._hold(working, new_ids)
            return results
        raise ConcurrentWriteConflict(
            f"gave up after {self.max_attempts} attempts: other writers kept changing the same grievances"
        )

    def tracked(self, upstream: str) -> int | None:
        """The last position of `upstream` recorded with a batch, or None if there is none."""
        return self.recorder.max_tracking_id(upstream) if isinstance(self.recorder, TrackingRecorder) else None

    # ----------------------------------------------------------------------------- queries

    def grievance(self, grievance_id: UUID, *, version: int | None = None) -> Grievance:
        """The grievance now, or as it stood at `version`."""
        if version is None:
            found = self._load_many({self._checked_id(grievance_id)})[grievance_id]
            if not isinstance(found, Grievance):
                raise GrievanceNotFound("grievance_id", f"no grievance {grievance_id}")
            self.decided.put(found)
            return self._opened(found)
        state: Any = None
        for domain_event in self.history(grievance_id):
            if domain_event.originator_version > version:
                break
            state = _mutated(grievance_id, domain_event, state)
        if state is None or state.version != version:
            last = state.version if state is not None else 0
            raise InvalidValue("version", f"the grievance has {last} versions; {version} does not exist")
        return state  # type: ignore[no-any-return]

    def grievance_at(self, grievance_id: UUID, at: datetime, *, clock: str = "recorded") -> Grievance:
        """The grievance as it stood at `at`: by when events were stored (`recorded`) or happened (`occurred`)."""
        if at.tzinfo is None:
            raise InvalidValue("at", "must carry a timezone (a naive time is ambiguous)")
        if clock not in ("recorded", "occurred"):
            raise InvalidValue("clock", "must be 'recorded' or 'occurred'")
        state: Any = None
        for domain_event in self.history(grievance_id):
            when = domain_event.timestamp if clock == "recorded" else domain_event.occurred_at  # type: ignore[attr-defined]
            if when > at:
                break
            state = _mutated(grievance_id, domain_event, state)
        if state is None:
            raise GrievanceNotFound("at", f"grievance {grievance_id} had not been reported by {at.isoformat()}")
        return state  # type: ignore[no-any-return]

    def history(self, grievance_id: UUID) -> Iterator[DomainEventProtocol[UUID]]:
        """Every stored event of one grievance, oldest first; a missing or unreadable one raises `BrokenHistory`
        where it is, so no reader is shown a history with a hole in it as if it were whole."""
        stored = self.recorder.select_events(self._checked_id(grievance_id))
        if not stored:
            raise GrievanceNotFound("grievance_id", f"no grievance {grievance_id}")
        for expected, event in enumerate(stored, start=1):
            yield _read(grievance_id, expected, event, self.mapper.to_domain_event)

    # ----------------------------------------------------------------------------- deciding

    def _refused_senders(self, senders: Sequence[Principal]) -> dict[Principal, GrievanceError]:
        """The senders of a batch whom the policy refuses whatever they send (a grid worker off the roster), asked
        once each per batch."""
        refused: dict[Principal, GrievanceError] = {}
        for sender in set(senders):
            try:
                self.policy.check_sender(sender)
            except GrievanceError as error:
                refused[sender] = error
        return refused

    def _decide(self, command: Command, principal: Principal, working: dict[UUID, Grievance | None]) -> Outcome:
        if command.grievance_id not in working:
            working[command.grievance_id] = self._load(command.grievance_id)
        grievance = working[command.grievance_id]
        if grievance is not None and not isinstance(grievance, Grievance):
            # Another aggregate of the store (a roster entry) under this id: no grievance, and not one to report.
            raise (AlreadyReported if isinstance(command, Report) else GrievanceNotFound)(
                "grievance_id", f"no grievance {command.grievance_id}" if not isinstance(command, Report)
                else f"grievance {command.grievance_id} cannot be reported: choose another id")  # fmt: skip
        at = command.occurred_at
        historic = principal.role is Role.OPERATOR
        received: datetime | None = None
        if isinstance(at, datetime) and at.tzinfo is not None:
            now = self.clock()
            self.bounds.check(at, now, historic=historic)
            # Limits run from when the chain got the command, by the server's clock: a phone's own time, even
            # within the lag, cannot make a grievance arrive overdue. A historic import keeps its own times.
            received = None if historic else now
            if at > now:
                # A phone a little fast is believed, but recorded at the server's time: else its event would stand
                # after every other writer's command on this grievance until its own time came.
                command = msgspec.structs.replace(command, occurred_at=now)
        self.policy.check(principal, command, grievance)
        if (
            grievance is not None
            and isinstance(command, Report)
            and not self.policy.may_read_grievance(principal, grievance)
        ):
            # One answer whatever the command id: which ids exist outside one's jurisdiction is not one's to learn.
            raise AlreadyReported(
                "grievance_id", f"grievance {command.grievance_id} cannot be reported: choose another id"
            )
        if grievance is not None:
            seen = grievance.outcome_of(command.command_id, command.kind)
            if seen is not None:
                version, status, level, unit_id = seen
                return Outcome(grievance.id, command.command_id, command.kind, version, status, level, unit_id, True)
        if isinstance(command, Report):
            if grievance is not None:
                raise AlreadyReported(
                    "grievance_id", f"grievance {command.grievance_id} was reported by another command"
                )
            grievance = working[command.grievance_id] = self._report(command, received)
        elif grievance is None:
            raise GrievanceNotFound("grievance_id", f"no grievance {command.grievance_id}")
        else:
            handler = self._handlers.get(type(command))
            if handler is None:
                raise InvalidValue("kind", f"{command.kind!r} is not a command of the chain")
            handler(grievance, command, received)
        return Outcome(
            grievance.id,
            command.command_id,
            command.kind,
            grievance.version,
            grievance.status,
            grievance.level,
            grievance.unit_id,
        )

    # ----------------------------------------------------------------------------- handlers: one aggregate call each

    def _report(self, c: Report, received: datetime | None) -> Grievance:
        resident = c.resident
        return Grievance.report(
            c.grievance_id,
            unit=self.chart.unit_at(c.unit_id, REPORTING_LEVELS),
            category=c.category,
            channel=c.channel,
            title=c.title,
            description=c.description,
            resident_id=resident.resident_id if resident else None,
            resident_name=resident.name if resident else None,
            resident_phone=resident.phone if resident else None,
            limits=self.limits,
            actor=c.actor,
            at=c.occurred_at,
            command_id=c.command_id,
            received=received,
        )

    def _claim(self, g: Grievance, c: Claim, received: datetime | None) -> None:
        claimants = self.claimants.claimants_at(g.unit_id) if self.claimants is not None else None
        g.claim(unit_id=c.unit_id, mode=c.mode, claimant=c.claimant, limits=self.limits, actor=c.actor,
                at=c.occurred_at, command_id=c.command_id, received=received, claimants=claimants)  # fmt: skip

    def _record_progress(self, g: Grievance, c: RecordProgress, received: datetime | None) -> None:
        g.record_progress(note=c.note, actor=c.actor, at=c.occurred_at, command_id=c.command_id)

    def _escalate(self, g: Grievance, c: Escalate, received: datetime | None) -> None:
        g.escalate(chart=self.chart, limits=self.limits, reason=c.reason, to_unit_id=c.to_unit_id, note=c.note,
                   actor=c.actor, at=c.occurred_at, command_id=c.command_id, now=self.clock(),
                   received=received)  # fmt: skip

    def _resolve(self, g: Grievance, c: Resolve, received: datetime | None) -> None:
        g.resolve(summary=c.summary, actor=c.actor, at=c.occurred_at, command_id=c.command_id)

    def _reply(self, g: Grievance, c: Reply, received: datetime | None) -> None:
        g.reply(reason=c.reason, answer=c.answer, actor=c.actor, at=c.occurred_at, command_id=c.command_id)

    def _rate(self, g: Grievance, c: Rate, received: datetime | None) -> None:
        g.rate(rating=c.rating, comment=c.comment, limits=self.limits, actor=c.actor, at=c.occurred_at,
               command_id=c.command_id, given_by=c.given_by, received=received)  # fmt: skip

    def _store(
        self,
        changed: list[Grievance],
        tracking: Tracking | None = None,
        *,
        fresh: Collection[UUID] = (),
    ) -> None:
        """What `Application.save` does for aggregates known to be Grievances, mapped and recorded as the event store's
        `put` does: without save's two runtime-Protocol isinstance checks per aggregate (a sixth of a batch's time),
        and with the batch's upstream position, which save cannot take; then snapshots, as save takes them. `fresh`
        are the grievances reported in the batch (holding their resident's fields in clear)."""
        events: list[DomainEventProtocol[UUID]] = []
        first_new: dict[UUID, int] = {}
        for grievance in changed:
            pending = grievance.collect_events()
            first_new[grievance.id] = pending[0].originator_version
            events.extend(pending)
        stored, sealer = cast(TypedEventMapper, self.mapper).to_stored_events(events)
        if sealer is None:
            self.recorder.insert_events(stored, tracking=tracking)
        elif getattr(self.recorder, "stores_keys_with_events", False):
            # Keys made for new residents go in the batch's own transaction: one commit, not three a resident.
            self.recorder.insert_events(stored, tracking=tracking, sealed_by=sealer)
        else:
            sealer.store_keys()
            self.recorder.insert_events(stored, tracking=tracking)
        self._snapshot(changed, first_new, stored, sealer, fresh)

    def _snapshot(
        self,
        changed: list[Grievance],
        first_new: Mapping[UUID, int],
        stored: Sequence[StoredEvent],
        sealer: Sealer | None,
        fresh: Collection[UUID],
    ) -> None:
        """Snapshot each grievance of a stored batch whose new events reached a multiple of the interval (the library's
        rule) or whose last load replayed an interval's events or more, as it stands after the batch. In a transaction
        of its own, after the batch's: a snapshot that cannot be stored is reported and costs the batch nothing."""
        interval = self.snapshot_interval
        if not interval or self.snapshots is None:
            return
        wanted = self._snapshot_wanted
        # Only grievances: the roster's aggregates are saved in the same batches, and their histories stay short.
        due = [g for g in changed if isinstance(g, Grievance)
               and (g.version // interval > (first_new[g.id] - 1) // interval or g.id in wanted)]  # fmt: skip
        if not due:
            return
        last_stored = {_uuid(s.originator_id): s for s in stored}  # each grievance's last event, stored last
        snapshots = []
        for grievance in due:
            snapshot = Grievance.Snapshot.of(grievance, follows=digest_of(last_stored[grievance.id].state))
            subject = grievance.resident_id
            if grievance.id in fresh and subject and sealer is not None:
                # Reported in this batch, the grievance holds its resident's fields as given: sealed here as the
                # batch's events were, so that the snapshot, like them, opens as ERASED once the resident is forgotten.
                state = cast(dict[str, Any], snapshot.state)
                for field in Grievance.Reported.personal_fields:
                    if value := state.get(field):
                        state[field] = sealer.seal(subject, field, value)
            snapshots.append(snapshot)
        try:
            self.snapshots.put(snapshots)
            wanted.difference_update(g.id for g in due)
        except Exception as e:  # the batch is stored: a snapshot lost (another process's at the same version) waits
            log.warning("snapshots of %d grievances were not stored (%s); their loads read the events instead",
                        len(snapshots), type(e).__name__)  # fmt: skip

    def _hold(self, working: Mapping[UUID, Grievance | None], new_ids: set[UUID]) -> None:
        """Keep a batch's grievances, all stored now, as the starting point of their next load: but those reported in
        the batch naming a resident, whose name and phone they hold as given, in clear (the store sealed them)."""
        for gid, grievance in working.items():
            if grievance is not None and not (gid in new_ids and grievance.resident_id):
                self.decided.put(grievance)

    def _load_many(
        self,
        grievance_ids: set[UUID],
        *,
        broken: dict[UUID, BrokenHistory] | None = None,
    ) -> dict[UUID, Grievance | None]:
        """The grievances a batch touches (None for ids not reported yet), with personal fields as stored: each from
        its copy held here, or else from its latest snapshot, brought up to date with the events stored since, in
        one query where the store can.

        The query reads the starting point's own last event too: a store that no longer has it (restored from a
        backup, or a server that lost its last commits, with `normal` durability), or a snapshot whose event is not
        the one stored at its version, is behind or beside what the store holds, and the grievance is read whole from
        the events instead. A snapshot is never more than a starting point: the events decide.
        """
        found: dict[UUID, Any] = {gid: self.decided.get(gid) for gid in grievance_ids}
        after = {gid: max(g.version - 1, 0) if g else 0 for gid, g in found.items()}
        snapshots, stored_events = self._stored_since(after, [gid for gid, g in found.items() if g is None])
        follows: dict[UUID, str] = {}  # each snapshot's digest of the event it was taken at
        unusable: set[UUID] = set()
        for gid, stored in snapshots.items():
            restored = self._restored(gid, stored)
            if restored is None:
                unusable.add(gid)
            else:
                found[gid], follows[gid] = restored
        confirmed: set[UUID] = set()
        for e in stored_events:
            held = found[gid := _uuid(e.originator_id)]
            at_start = held is not None and e.originator_version == held.version
            if at_start and (gid not in follows or digest_of(e.state) == follows[gid]):
                confirmed.add(gid)
        for gid in follows.keys() - confirmed:
            log.warning("the snapshot of grievance %s at version %d is not of the event stored there (the store has "
                        "fewer events, or others): its events are read instead", gid, found[gid].version)  # fmt: skip
        behind = {gid for gid, g in found.items() if g is not None and gid not in confirmed} | unusable
        if behind:
            stored_events = [e for e in stored_events if _uuid(e.originator_id) not in behind]
            stored_events += self._events_after(dict.fromkeys(behind, 0))
            found.update(dict.fromkeys(behind))
        to_domain_event = self._deciding_mapper.to_domain_event
        broken_now: dict[UUID, BrokenHistory] = {}
        counts: dict[UUID, int] = dict.fromkeys(found, 0)
        for stored in stored_events:
            held = found[gid := _uuid(stored.originator_id)]
            if gid in broken_now or (held is not None and stored.originator_version <= held.version):
                continue  # the starting point's own last event, read to confirm the store still has it
            expected = held.version + 1 if held is not None else 1
            try:
                found[gid] = _mutated(gid, _read(gid, expected, stored, to_domain_event), held)
                counts[gid] += 1
            except BrokenHistory as at_fault:
                broken_now[gid] = at_fault
        if broken_now and broken is None:
            raise next(iter(broken_now.values()))
        for gid, error in broken_now.items():
            del found[gid]  # not decided on: each of its commands is refused with the error when it is reached
            if broken is not None:
                broken[gid] = error
        if self.snapshot_interval:
            # No snapshot to start from, or none that could be trusted: one is taken at the grievance's next write.
            if len(self._snapshot_wanted) > DEFAULT_SIZE:
                self._snapshot_wanted.clear()  # a process that only reads: what it forgets costs a replay, no more
            self._snapshot_wanted.update(gid for gid, n in counts.items() if n >= self.snapshot_interval)
        return found

    def _stored_since(
        self, after: Mapping[UUID, int], cold: Collection[UUID]
    ) -> tuple[dict[UUID, StoredEvent], Sequence[StoredEvent]]:
        """The latest snapshots of the grievances in `cold` (held nowhere here), and the stored events of each
        grievance after the version `after` gives it, or from its snapshot's on: in one query where the store can."""
        if not cold or not self.snapshot_interval or self.snapshots is None:
            return {}, self._events_after(after)
        if self._snapshot_reader is not None:
            return self._snapshot_reader.select_latest_with_events(after, cold)
        latest = {}
        for gid in cold:
            if found := self.snapshots.recorder.select_events(gid, desc=True, limit=1):
                latest[gid] = found[0]
        since = {gid: s.originator_version - 1 for gid, s in latest.items()}
        return latest, self._events_after({**after, **since})

    def _restored(self, grievance_id: UUID, stored: StoredEvent) -> tuple[Grievance, str] | None:
        """The grievance as a stored snapshot holds it, with the digest of the event it was taken at; None, reported,
        for a snapshot that cannot be read (damaged, or of a shape the grievance no longer has)."""
        try:
            snapshot = self._deciding_mapper.to_domain_event(stored)
            if not isinstance(snapshot, Grievance.Snapshot):
                raise TypeError(f"{stored.topic!r} is not a grievance's snapshot")
            version = snapshot.originator_version
            grievance = snapshot.restore(lambda: self._commands_until(grievance_id, version))
            if not isinstance(grievance, Grievance) or grievance.id != grievance_id:
                raise TypeError("not a snapshot of this grievance")
            return grievance, snapshot.follows
        except InfrastructureError:
            raise  # a setting (a key that cannot be read), not a damaged snapshot
        except Exception as e:  # whatever a damaged row makes the decoder raise: set aside, the events decide
            log.warning("the snapshot of grievance %s at version %d cannot be read (%s): its events are read instead",
                        grievance_id, stored.originator_version, type(e).__name__)  # fmt: skip
            return None

    def snapshot_departures(self, events_of: Mapping[UUID, Sequence[StoredEvent]]) -> dict[UUID, tuple[int, str]]:
        """Where the latest stored snapshot of each of these grievances departs from its events (given here as
        stored, in version order): (the snapshot's version, what differs). A snapshot the engine would start a load
        from must be the grievance its events make; one rewritten and sealed again with a stolen key is not, and
        is named here for auditors (the engine's own checks set aside every other kind of damage)."""
        if not self.snapshot_interval or self.snapshots is None or not events_of:
            return {}
        ids = list(events_of)
        if self._snapshot_reader is not None:
            # After versions past any history: the snapshots alone, with none of the events since.
            latest, _ = self._snapshot_reader.select_latest_with_events(dict.fromkeys(ids, 2**62), ids)
        else:
            latest = {gid: found[0] for gid in ids
                      if (found := self.snapshots.recorder.select_events(gid, desc=True, limit=1))}  # fmt: skip
        departures: dict[UUID, tuple[int, str]] = {}
        for gid, stored in latest.items():
            restored = self._restored(gid, stored)
            if restored is None:
                continue  # unreadable or not sealed by this engine: set aside whenever it is loaded, never used
            from_snapshot, _follows = restored
            version = from_snapshot.version
            state: Any = None
            try:
                for expected, e in enumerate((e for e in events_of[gid] if e.originator_version <= version), 1):
                    state = _mutated(gid, _read(gid, expected, e, self._deciding_mapper.to_domain_event), state)
            except BrokenHistory:
                continue  # the events themselves are broken: the hash chain's check names that
            if state is None or state.version != version:
                continue  # fewer events than the snapshot's version: set aside whenever it is loaded
            theirs = cast(dict[str, Any], Grievance.Snapshot.of(from_snapshot, follows="").state)
            ours = cast(dict[str, Any], Grievance.Snapshot.of(state, follows="").state)
            differing = sorted(k.lstrip("_") for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
            if differing:
                departures[gid] = (version, f"its snapshot at version {version} is not what its events make "
                                            f"(differs in {', '.join(differing)}): rewritten in the store")  # fmt: skip
        return departures

    def _commands_until(self, grievance_id: UUID, version: int) -> dict[str, tuple[str, Any]]:
        """The commands a grievance took up to `version`, read from its events: for a repeat of a command older than the
        snapshot it was restored from, which knows their ids' digests only."""
        state: Any = None
        stored_events = self.recorder.select_events(grievance_id, lte=version)
        for expected, stored in enumerate(stored_events, start=1):
            state = _mutated(grievance_id, _read(grievance_id, expected, stored, self._deciding_mapper.to_domain_event),
                             state)  # fmt: skip
        if state is None or state.version != version:
            raise BrokenHistory(grievance_id, len(stored_events) + 1, "the events before its snapshot are missing")
        return state.commands_taken()  # type: ignore[no-any-return]

    def _events_after(self, after: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        """The stored events of each grievance after the version given for it, in one query where the store can."""
        if self._batch_reader is not None:
            return self._batch_reader.select_events_after(after)
        return [e for gid, v in after.items() for e in self.recorder.select_events(gid, gt=v or None)]

    def _opened(self, grievance: Grievance) -> Grievance:
        """A copy of `grievance` with its resident's sealed fields opened, for a reader (who sees them masked or,
        with a recorded reason, whole): the held copy never carries them in clear."""
        personal_data: PersonalData | None = cast(TypedEventMapper, self.mapper).personal_data
        shown = copy.deepcopy(grievance)
        subject = shown.resident_id
        if personal_data is not None and subject:
            for field in Grievance.Reported.personal_fields:
                if stored := getattr(shown, field):
                    setattr(shown, field, personal_data.open(subject, field, stored))
        return shown

    @staticmethod
    def _checked_id(grievance_id: UUID) -> UUID:
        if not isinstance(grievance_id, UUID):
            raise InvalidValue("grievance_id", f"{grievance_id!r} is not a UUID")
        return grievance_id

    def _load(self, grievance_id: UUID) -> Grievance | None:
        return self._load_many({self._checked_id(grievance_id)})[grievance_id]
