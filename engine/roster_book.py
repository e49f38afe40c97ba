"""The roster's application service: roster commands decided on their entries and stored, with the rolls of the
units they touch, in the chain's own event store (so in its hash chains and its Merkle log); the roster's questions;
and, for the chain, who may claim at each unit (engine.roster_rules)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from engine.access import Principal, Role
from engine.errors import (
    BrokenHistory,
    ConcurrentWriteConflict,
    GrievanceError,
    InfrastructureError,
    InvalidValue,
    NotOnRoster,
    RosterEntryNotFound,
    RosterIdTaken,
)
from engine.personal_data import PersonalData
from engine.roster import SUBJECT_SCOPE, Kind, RosterEntry, UnitRoll, entry_uuid, roll_uuid
from engine.roster_commands import Join, Move, Represent, RosterCommand, RosterOutcome
from engine.roster_rules import Claimants, ClaimRules, NoRoster, RollClaimants
from engine.service_chain import ServiceChain
from engine.transcoder import TypedEventMapper

A = TypeVar("A", bound=Aggregate)
Working = dict[UUID, Any]


class RosterBook:
    """The roster (花名册) of the chain's people and bodies: joined, moved and left by command, read by entry or by
    unit, now or as it stood at a past time. Built on a ServiceChain, whose store, chart, clock, time bounds and
    access policy it shares; it tells the chain to check every claim against the roster (`claimants_at`)."""

    max_attempts = 10

    def __init__(self, chain: ServiceChain, *, rules: ClaimRules = ClaimRules.KEPT) -> None:
        self.chain = chain
        self.rules = rules
        # Deciding never needs a person's name: entries are decided with it as stored (sealed).
        self._deciding: Mapper[UUID] = chain.sealed_mapper()
        # Each unit's roll as last read, brought up to date with what was stored since at each read: a claim reads
        # only a roll's new events. Bounded by the chart's units.
        self._rolls: dict[str, UnitRoll] = {}
        self._lock = threading.Lock()
        # The rolls one batch's claims read (`prepare`), per thread: a batch is decided in the thread that sends it.
        self._prepared = threading.local()
        chain.claimants = self
        chain.policy.people = self

    # ----------------------------------------------------------------------------- commands

    def apply(self, command: RosterCommand, *, principal: Principal) -> RosterOutcome:
        """Apply one roster command sent by `principal`; a refused one raises its `GrievanceError`."""
        (result,) = self.execute([command], principal=principal)
        if isinstance(result, GrievanceError):
            raise result
        return result

    def execute(
        self, commands: Sequence[RosterCommand], *, principal: Principal
    ) -> list[RosterOutcome | GrievanceError]:
        """Apply a batch in one transaction: one result per command, in order; a refused command stores nothing and
        gets its error in its place. A later command sees what the earlier ones did (an import's members, then the
        organisations they act for)."""
        for _ in range(self.max_attempts):
            working: Working = {}
            results: list[RosterOutcome | GrievanceError] = []
            for command in commands:
                try:
                    results.append(self._decide(command, principal, working))
                except GrievanceError as refused:
                    results.append(refused)
            changed = [a for a in working.values() if a is not None and a.pending_events]
            if not changed:
                return results
            try:
                # The chain's own store path: people's keys are made and stored in the batch's own transaction.
                self.chain._store(cast(Any, changed))
            except IntegrityError:
                continue  # another writer changed one of these entries or rolls first: decide again on fresh state
            with self._lock:
                for roll in changed:
                    if isinstance(roll, UnitRoll):
                        self._rolls[roll.unit_id] = roll
            return results
        raise ConcurrentWriteConflict(f"gave up after {self.max_attempts} attempts: other writers kept changing the "
                                      "same roster entries")  # fmt: skip

    def _decide(self, command: RosterCommand, principal: Principal, working: Working) -> RosterOutcome:
        now = self.chain.clock()
        self.chain.bounds.check(command.occurred_at, now, historic=principal.role is Role.OPERATOR)
        if command.occurred_at > now:
            command = msgspec.structs.replace(command, occurred_at=now)
        held = self._entry(working, command.entry_id)
        policy, chart, c = self.chain.policy, self.chain.chart, command
        if not isinstance(c, Join) and held is None:
            raise RosterEntryNotFound("entry_id", f"nobody and nothing is on the roster as {c.entry_id!r}")
        if isinstance(c, Join):
            policy.check_roster(principal, c.actor, [c.unit_id])
        elif isinstance(c, Move):
            policy.check_roster(principal, c.actor, [held.unit_id, c.to_unit_id])  # type: ignore[union-attr]
        else:
            policy.check_roster(principal, c.actor, [held.unit_id])  # type: ignore[union-attr]
        if held is not None and (seen := held.outcome_of(c.command_id, c.verb)) is not None:
            return RosterOutcome(c.entry_id, c.command_id, c.verb, seen, held.active, held.unit_id, duplicate=True)
        common: dict[str, Any] = {"actor": c.actor, "at": c.occurred_at, "command_id": c.command_id}
        touched: list[Any] = []
        if isinstance(c, Join):
            unit = chart.unit(c.unit_id)
            if held is not None and held.active:
                raise RosterIdTaken("entry_id", f"{c.entry_id!r} is on the roster already, at {held.unit_id!r} (ids "
                                    "are never reused: move them, or choose another id)")  # fmt: skip
            if held is None:
                entry = RosterEntry.join(entry_id=c.entry_id, kind=c.kind, unit=unit, name=c.name,
                                         workplace_id=c.workplace_id, households=c.households,
                                         representatives=c.representatives, **common)  # fmt: skip
                # The entry's own rules first, then what it names elsewhere on the roster.
                self._check_references(c, working)
            else:
                entry = copy.deepcopy(held)
                entry.rejoin(kind=c.kind, unit=unit, households=c.households, **common)
            roll = self._roll_to_change(working, unit.id, common)
            roll.enrol(c.entry_id, entry.kind, actor=c.actor, at=c.occurred_at, command_id=c.command_id)
            touched = [entry, roll]
        elif isinstance(c, Move):
            assert held is not None
            unit = chart.unit(c.to_unit_id, field="to_unit_id")
            entry = copy.deepcopy(held)
            entry.move(unit=unit, households=c.households, **common)
            was = self._roll_to_change(working, held.unit_id, common)
            was.unenrol(c.entry_id, to_unit=unit.id, actor=c.actor, at=c.occurred_at, command_id=c.command_id)
            now_at = self._roll_to_change(working, unit.id, common)
            now_at.enrol(c.entry_id, entry.kind, actor=c.actor, at=c.occurred_at, command_id=c.command_id)
            touched = [entry, was, now_at]
        elif isinstance(c, Represent):
            assert held is not None
            entry = copy.deepcopy(held)
            entry.name_representatives(representatives=c.representatives, **common)
            self._check_representatives(c.representatives, working)
            touched = [entry]
        else:
            assert held is not None
            entry = copy.deepcopy(held)
            entry.leave(reason=c.reason, **common)
            was = self._roll_to_change(working, held.unit_id, common)
            was.unenrol(c.entry_id, to_unit=None, actor=c.actor, at=c.occurred_at, command_id=c.command_id)
            touched = [entry, was]
        # Only a command decided whole changes the batch's working copies.
        for aggregate in touched:
            working[aggregate.id] = aggregate
        return RosterOutcome(c.entry_id, c.command_id, c.verb, entry.version, entry.active, entry.unit_id)

    def _check_references(self, c: Join, working: Working) -> None:
        """A member's workplace must be an organisation on the roster, and a body's representatives people on it."""
        if c.workplace_id is not None:
            workplace = self._entry(working, c.workplace_id)
            if workplace is None or not workplace.active:
                raise InvalidValue("workplace_id", f"{c.workplace_id!r} is not on the roster: a workplace joins it "
                                   "first (list it before its members in an import)")  # fmt: skip
            if not workplace.kind.is_organisation:
                raise InvalidValue("workplace_id", f"{c.workplace_id!r} is a {workplace.kind.value}, not an "
                                   "organisation")  # fmt: skip
        self._check_representatives(c.representatives, working)

    def _check_representatives(self, representatives: Sequence[str], working: Working) -> None:
        """Who acts for a body are people on the roster."""
        for person_id in representatives:
            person = self._entry(working, person_id)
            if person is None or not person.active:
                raise InvalidValue("representatives", f"{person_id!r} is not on the roster: who acts for a body "
                                   "joins it first")  # fmt: skip
            if not person.kind.is_person:
                raise InvalidValue("representatives", f"{person_id!r} is a {person.kind.value}; people act for "
                                   "bodies")  # fmt: skip

    def _entry(self, working: Working, entry_id: str) -> RosterEntry | None:
        """The entry as this batch has it (read from the store the first time)."""
        uid = entry_uuid(entry_id)
        if uid not in working:
            working[uid] = self._read(uid, RosterEntry, self._deciding, field="entry_id")
        found: RosterEntry | None = working[uid]
        return found

    def _roll_to_change(self, working: Working, unit_id: str, common: Mapping[str, Any]) -> UnitRoll:
        """A copy of the unit's roll to change in this batch (opened, if the unit has none yet)."""
        uid = roll_uuid(unit_id)
        if uid not in working:
            working[uid] = self.roll(unit_id)
        held: UnitRoll | None = working[uid]
        return copy.deepcopy(held) if held is not None else UnitRoll.open(unit_id, **common)

    # ----------------------------------------------------------------------------- questions

    def entry(self, entry_id: str) -> RosterEntry:
        """The entry now, a person's name opened (masked by whoever shows it to someone not entitled to it)."""
        found = self._read(entry_uuid(entry_id), RosterEntry, self.chain.mapper, field="entry_id")
        if found is None:
            raise RosterEntryNotFound("entry_id", f"nobody and nothing is on the roster as {entry_id!r}")
        return found

    def entries(self, entry_ids: Iterable[str]) -> list[RosterEntry]:
        """The entries named, names opened, in the order given (those not on the roster left out)."""
        wanted = list(dict.fromkeys(entry_ids))
        uids = {entry_uuid(e): e for e in wanted}
        found = self._read_many(set(uids), RosterEntry, self.chain.mapper)
        return [entry for e in wanted if (entry := found.get(entry_uuid(e))) is not None]

    def roll(self, unit_id: str) -> UnitRoll | None:
        """The unit's roll now (None if the unit keeps no roster), read on from the copy last read."""
        with self._lock:
            held = self._rolls.get(unit_id)
        fresh = self._read(roll_uuid(unit_id), UnitRoll, self._deciding, field="unit_id", after=held)
        if fresh is not None and fresh is not held:
            with self._lock:
                if unit_id not in self._rolls or self._rolls[unit_id].version < fresh.version:
                    self._rolls[unit_id] = fresh
        return fresh

    def rolls(self, unit_ids: Iterable[str]) -> dict[str, UnitRoll]:
        """The rolls of those of the units that keep one, read in one query where the store can."""
        wanted = {roll_uuid(u): u for u in unit_ids}
        return {roll.unit_id: roll for roll in self._read_many(set(wanted), UnitRoll, self._deciding).values()}

    def as_it_stood(self, entry_id: str, at: datetime) -> RosterEntry | None:
        """The entry as it stood at `at` (its registration, name and standing then), names opened; None if it had
        not joined by then or is not on the roster at all."""
        uid, state = entry_uuid(entry_id), None
        for stored in self.chain.recorder.select_events(uid):
            event = _decoded(uid, stored, self.chain.mapper)
            if event.occurred_at > at:
                break
            state = event.mutate(state)
        return state if isinstance(state, RosterEntry) else None

    def ever_on(self, unit_ids: Iterable[str]) -> list[RosterEntry]:
        """Every entry that stands or ever stood on the rolls of these units, in id order, names opened."""
        ids = {entry_id for roll in self.rolls(unit_ids).values() for entry_id in roll.standings}
        return self.entries(sorted(ids))

    def on_roll(self, unit_id: str, at: datetime | None = None) -> dict[str, Kind]:
        """Who stands on the unit's roster now, or stood on it at `at` (those who could claim there then, in the
        mode their kind claims in), and what each is."""
        self.chain.chart.unit(unit_id)
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise InvalidValue("at", "must carry a timezone (a naive time is ambiguous)")
        roll = self.roll(unit_id)
        return roll.on_roll(at) if roll is not None else {}

    def forget(self, entry_id: str) -> bool:
        """Erase a person's name: their key is destroyed, so it opens as ERASED everywhere from now on, while the
        events and their hashes stay whole. Whether a key was destroyed now (False: erased before)."""
        entry = self._read(entry_uuid(entry_id), RosterEntry, self._deciding, field="entry_id")
        if entry is None:
            raise RosterEntryNotFound("entry_id", f"nobody is on the roster as {entry_id!r}: nothing to erase")
        if not entry.kind.is_person:
            raise InvalidValue("entry_id", f"{entry_id!r} is a {entry.kind.value}, whose name is not personal data")
        personal_data: PersonalData | None = cast(TypedEventMapper, self.chain.mapper).personal_data
        if personal_data is None:
            return False
        return personal_data.forget(SUBJECT_SCOPE + entry_id)

    def left_roster(self, name: str) -> datetime | None:
        """When the entry `name` left the roster, if it is off it now; None if on it, or never on it."""
        try:
            held = self._read(entry_uuid(name), RosterEntry, self._deciding, field="actor")
        except RosterIdTaken:
            return None  # a grievance someone reported under the id: no roster entry, so nobody who left it
        return held.left_at if held is not None and not held.active else None

    def keeps_roster(self) -> bool:
        """Whether the store keeps a roster at all: some unit's roster has been opened (it stays open)."""
        topic = get_topic(UnitRoll.Opened)
        return bool(self.chain.recorder.select_notifications(start=None, limit=1, topics=[topic]))

    def check_holder(self, name: str, role: Role, unit_id: str | None) -> None:
        """Refuse (`NotOnRoster`, field `name`) a grid worker's token or signing key for someone who is not one of
        the chain's people on the roster, registered at or below the unit it covers, where the store keeps a
        roster. Other roles are the office's staff, not the chain's people: they are not on the roster."""
        if role is not Role.GRID_WORKER:
            return
        held = self._read(entry_uuid(name), RosterEntry, self._deciding, field="name")
        if held is None:
            if self.keeps_roster():
                raise NotOnRoster("name", f"{name!r} is not on the roster: a grid worker's token or key is issued "
                                  "to a grid worker, chief or member on it")  # fmt: skip
            return
        if not held.kind.is_person:
            raise NotOnRoster("name", f"{name!r} is a {held.kind.value} on the roster; a token or key is issued to "
                              "a person (a grid worker, chief or member), who acts for it")  # fmt: skip
        if not held.active:
            left = f" on {held.left_at:%Y-%m-%d}" if held.left_at else ""
            raise NotOnRoster("name", f"{name!r} left the roster{left}: a token or key is issued to one on it")
        chart = self.chain.chart
        if unit_id in chart and (held.unit_id not in chart or unit_id not in chart.lineage(held.unit_id)):
            raise NotOnRoster("name", f"{name!r} is registered at {held.unit_id!r}, not at or below {unit_id!r}, "
                              "the unit the token or key covers")  # fmt: skip

    def prepare(self, unit_ids: Collection[str]) -> None:
        """Bring the rolls of these units up to date in one query (only their events since the copies held), for
        one batch's claims: a claim at a unit with no roster otherwise cost a query of its own."""
        reader = self.chain.recorder
        if not unit_ids or not hasattr(reader, "select_events_after"):
            self._prepared.rolls = {}
            return
        with self._lock:
            held = {u: self._rolls.get(u) for u in unit_ids}
        stored = reader.select_events_after({roll_uuid(u): h.version if h else 0 for u, h in held.items()})
        by_roll: dict[UUID, list[StoredEvent]] = {}
        for event in stored:
            by_roll.setdefault(cast(UUID, event.originator_id), []).append(event)
        fresh: dict[str, UnitRoll | None] = {}
        for unit_id, roll in held.items():
            uid = roll_uuid(unit_id)
            fresh[unit_id] = self._replayed(uid, UnitRoll, self._deciding, by_roll.get(uid, []), field="unit_id",
                                            after=roll)  # fmt: skip
        with self._lock:
            for unit_id, roll in fresh.items():
                if roll is not None and (unit_id not in self._rolls or self._rolls[unit_id].version < roll.version):
                    self._rolls[unit_id] = roll
        self._prepared.rolls = fresh

    def claimants_at(self, unit_id: str) -> Claimants | None:
        """Who may claim at `unit_id`: those on its roll; nobody, where a roster is required and the unit keeps
        none; None (unchecked) where the unit keeps none and none is required."""
        prepared: dict[str, UnitRoll | None] = getattr(self._prepared, "rolls", {})
        roll = prepared[unit_id] if unit_id in prepared else self.roll(unit_id)
        if roll is not None:
            return RollClaimants(roll, self._acting_entry)
        return NoRoster(unit_id) if self.rules is ClaimRules.REQUIRED else None

    def _acting_entry(self, entry_id: str) -> RosterEntry | None:
        """An entry as stored (its name sealed), read for who acts for a body when it claims, and whether they are
        on the roster still."""
        try:
            return self._read(entry_uuid(entry_id), RosterEntry, self._deciding, field="claimant")
        except RosterIdTaken:
            return None  # a grievance someone reported under the id: nobody on the roster

    # ----------------------------------------------------------------------------- reading

    def _read(self, uid: UUID, kind: type[A], mapper: Mapper[UUID], *, field: str, after: A | None = None) -> A | None:
        """The aggregate stored under `uid` (None if none), read on from `after` when given; another kind of
        aggregate under the id (a grievance someone reported under it) is refused as the id being taken."""
        stored = self.chain.recorder.select_events(uid, gt=after.version if after is not None else None)
        return self._replayed(uid, kind, mapper, stored, field=field, after=after)

    def _replayed(self, uid: UUID, kind: type[A], mapper: Mapper[UUID], stored: Sequence[StoredEvent], *, field: str,
                  after: A | None) -> A | None:  # fmt: skip
        """`after` (or nothing) brought on by `stored`, the events stored under `uid` since it."""
        if not stored:
            return after
        state: Any = copy.deepcopy(after) if after is not None else None
        for event in stored:
            state = _decoded(uid, event, mapper).mutate(state)
        if not isinstance(state, kind):
            raise RosterIdTaken(field, f"the store holds something other than a roster record under {uid}")
        return state

    def _read_many(self, uids: set[UUID], kind: type[A], mapper: Mapper[UUID]) -> dict[UUID, A]:
        """The aggregates stored under `uids`, in one query where the store can."""
        reader = getattr(self.chain.recorder, "select_events_after", None)
        if reader is None:
            return {uid: found for uid in uids if (found := self._read(uid, kind, mapper, field="entry_id"))}
        states: dict[UUID, Any] = {}
        for event in reader(dict.fromkeys(uids, 0)):
            uid = event.originator_id if isinstance(event.originator_id, UUID) else UUID(str(event.originator_id))
            try:
                states[uid] = cast(Any, mapper.to_domain_event(event)).mutate(states.get(uid))
            except InfrastructureError:
                raise
            except Exception as e:
                raise BrokenHistory(
                    uid, event.originator_version, f"the event cannot be read ({type(e).__name__})"
                ) from e
        return {uid: state for uid, state in states.items() if isinstance(state, kind)}


def _decoded(uid: UUID, stored: StoredEvent, mapper: Mapper[UUID]) -> Any:
    """The domain event of a roster record's stored event; a damaged row is a broken link, not a crash."""
    try:
        return mapper.to_domain_event(stored)
    except InfrastructureError:
        raise  # a key that cannot be read is a setting, not damage
    except Exception as e:
        raise BrokenHistory(uid, stored.originator_version, f"the event cannot be read ({type(e).__name__})") from e
