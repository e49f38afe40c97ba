"""The roster: the people and bodies on the chain, each a `RosterEntry` (who they are, where they are registered,
since when), and each unit's `UnitRoll` (who stood on its roster, and when), which claims are checked against.

A member (党员) registers at a household, building, grid or community, and names their workplace organisation if
it is on the roster too (双报到); grid workers and the three chiefs (片长/楼长/邻长) serve at a unit and chiefs cover
households; party groups, party organisations and the units stationed in a community (驻区单位: property firms,
police stations, schools, employers) are bodies, with the people who act for them. Joining, moving and leaving are
events; an entry's id never changes and is never given to anyone else. People's names are personal data, sealed
under a key of their own (engine.personal_data) and erased by forgetting it; a body's name is public.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from engine.chart import Unit
from engine.errors import CommandIdReused, InvalidTransition, InvalidValue, WrongLevel
from engine.grievance import MAX_NAME, ClaimMode, _check_common, _choice, _identifier, one_line_text
from engine.levels import Level

ROSTER_NAMESPACE = UUID("3b7e2f0c-5a14-4c9d-8e61-0f2d7a9b4c18")
# People's keys sit in the resident-keys table under this prefix: a resident's id cannot hold '/', so a member and
# a resident never share a key, nor does forgetting one erase the other.
SUBJECT_SCOPE = "roster/"
MAX_HOUSEHOLDS = 200
# Zhuzhou's neighbour chiefs (邻长) each link 5-15 households (seed 002); more is a building chief's span.
MAX_NEIGHBOUR_HOUSEHOLDS = 15
MAX_REPRESENTATIVES = 20
MAX_REASON = 500

_PERSON_LEVELS = frozenset({Level.MEMBER_HOUSEHOLD, Level.BUILDING_GROUP, Level.GRID_BRANCH, Level.COMMUNITY})
_ORGANISATION_LEVELS = frozenset(
    {Level.GRID_BRANCH, Level.COMMUNITY, Level.JOINT_COMMITTEE, Level.STREET_COMMITTEE, Level.LEADING_GROUP}
)
_STATIONED_LEVELS = frozenset({Level.COMMUNITY, Level.JOINT_COMMITTEE, Level.STREET_COMMITTEE})


class Kind(StrEnum):
    """What a roster entry is: one of the people on the chain, or one of its bodies."""

    MEMBER = "member"
    GRID_WORKER = "grid_worker"
    AREA_CHIEF = "area_chief"
    BUILDING_CHIEF = "building_chief"
    NEIGHBOUR_CHIEF = "neighbour_chief"
    PARTY_GROUP = "party_group"
    PARTY_ORGANISATION = "party_organisation"
    PROPERTY_FIRM = "property_firm"
    POLICE_STATION = "police_station"
    SCHOOL = "school"
    EMPLOYER = "employer"

    @property
    def is_person(self) -> bool:
        """Whether this is a person (whose name is personal data) rather than a body."""
        return self in _PEOPLE

    @property
    def is_chief(self) -> bool:
        """Whether this is one of the chiefs, who cover households."""
        return self in (Kind.AREA_CHIEF, Kind.BUILDING_CHIEF, Kind.NEIGHBOUR_CHIEF)

    @property
    def is_organisation(self) -> bool:
        """Whether this claims in organisation mode (a party organisation or a stationed unit)."""
        return self.claim_mode is ClaimMode.ORGANISATION

    @property
    def claim_mode(self) -> ClaimMode | None:
        """The one way this kind claims (三种方式); None for grid workers and chiefs, who do not claim."""
        return _CLAIM_MODES.get(self)

    @property
    def levels(self) -> frozenset[Level]:
        """The levels of the chart this kind registers at."""
        return _LEVELS[self]

    @property
    def label(self) -> str:
        """Chinese and English, as the roster's listings show it."""
        return _LABELS[self]


_PEOPLE = frozenset({Kind.MEMBER, Kind.GRID_WORKER, Kind.AREA_CHIEF, Kind.BUILDING_CHIEF, Kind.NEIGHBOUR_CHIEF})
_CLAIM_MODES = {
    Kind.MEMBER: ClaimMode.MEMBER,
    Kind.PARTY_GROUP: ClaimMode.GROUP,
    **dict.fromkeys((Kind.PARTY_ORGANISATION, Kind.PROPERTY_FIRM, Kind.POLICE_STATION, Kind.SCHOOL, Kind.EMPLOYER),
                    ClaimMode.ORGANISATION),
}  # fmt: skip
_LEVELS: dict[Kind, frozenset[Level]] = {
    Kind.MEMBER: _PERSON_LEVELS,
    Kind.GRID_WORKER: frozenset({Level.GRID_BRANCH, Level.COMMUNITY}),
    Kind.AREA_CHIEF: frozenset({Level.GRID_BRANCH, Level.COMMUNITY}),
    Kind.BUILDING_CHIEF: frozenset({Level.BUILDING_GROUP}),
    Kind.NEIGHBOUR_CHIEF: frozenset({Level.BUILDING_GROUP, Level.GRID_BRANCH}),
    Kind.PARTY_GROUP: frozenset({Level.BUILDING_GROUP}),
    Kind.PARTY_ORGANISATION: _ORGANISATION_LEVELS,
    Kind.PROPERTY_FIRM: _STATIONED_LEVELS,
    Kind.POLICE_STATION: _STATIONED_LEVELS,
    Kind.SCHOOL: _STATIONED_LEVELS,
    Kind.EMPLOYER: _STATIONED_LEVELS,
}
_LABELS = {
    Kind.MEMBER: "党员 member",
    Kind.GRID_WORKER: "网格员 grid worker",
    Kind.AREA_CHIEF: "片长 area chief",
    Kind.BUILDING_CHIEF: "楼长 building chief",
    Kind.NEIGHBOUR_CHIEF: "邻长 neighbour chief",
    Kind.PARTY_GROUP: "党小组 party group",
    Kind.PARTY_ORGANISATION: "党组织 party organisation",
    Kind.PROPERTY_FIRM: "物业企业 property firm",
    Kind.POLICE_STATION: "派出所 police station",
    Kind.SCHOOL: "学校 school",
    Kind.EMPLOYER: "驻区单位 employer",
}


def entry_uuid(entry_id: str) -> UUID:
    """The stored aggregate id of the roster entry `entry_id`."""
    return uuid5(ROSTER_NAMESPACE, f"entry/{entry_id}")


@lru_cache(maxsize=65_536)
def roll_uuid(unit_id: str) -> UUID:
    """The stored aggregate id of the roll of unit `unit_id` (remembered: a batch asks it for each claim's unit,
    and a chart's units are few)."""
    return uuid5(ROSTER_NAMESPACE, f"unit/{unit_id}")


def _level_of(kind: Kind, unit: Unit, field: str) -> Level:
    if unit.level not in kind.levels:
        where = ", ".join(level.value for level in Level if level in kind.levels)
        raise WrongLevel(field, f"a {kind.value} registers at a {where}; {unit.id!r} is a {unit.level.value}")
    return unit.level


def _ids(field: str, values: Iterable[str], limit: int) -> tuple[str, ...]:
    found = tuple(values)
    if len(found) > limit:
        raise InvalidValue(field, f"names {len(found)}; at most {limit} are allowed")
    for value in found:
        _identifier(field, value)
    if len(set(found)) != len(found):
        twice = sorted({v for v in found if found.count(v) > 1})
        raise InvalidValue(field, f"names {', '.join(twice)} more than once")
    return found


def _households(kind: Kind, households: Sequence[str]) -> tuple[str, ...]:
    covered = _ids("households", households, MAX_HOUSEHOLDS)
    if not kind.is_chief:
        if covered:
            raise InvalidValue("households", f"only chiefs cover households; a {kind.value} covers none")
        return covered
    if not covered:
        raise InvalidValue("households", f"a {kind.value} covers at least one household")
    if kind is Kind.NEIGHBOUR_CHIEF and len(covered) > MAX_NEIGHBOUR_HOUSEHOLDS:
        raise InvalidValue("households", f"a neighbour chief links at most {MAX_NEIGHBOUR_HOUSEHOLDS} households; "
                           f"{len(covered)} is a building or area chief's span")  # fmt: skip
    return covered


class RosterEntry(Aggregate):
    """One person or body on the roster: where they are registered now, and whether they are still on it."""

    class Event(Aggregate.Event):
        """Every roster event says who recorded it, when it happened, and by which command."""

        label: ClassVar[str] = ""
        actor: str
        occurred_at: datetime
        command_id: str

    class Joined(Event, Aggregate.Created):
        """A person or body joined the roster at a unit; a person's name is sealed under their own key."""

        label = "加入 joined"
        class_version = 1
        # Only a person's name is personal data: a body's `person_id` is None, and its name is stored as it is.
        personal_subject = "person_id"
        personal_scope = SUBJECT_SCOPE
        personal_fields = ("name",)

        entry_id: str
        person_id: str | None
        kind: Kind
        unit_id: str
        level: Level
        name: str
        workplace_id: str | None
        households: tuple[str, ...]
        representatives: tuple[str, ...]

    class Moved(Event):
        """The entry's registration moved from one unit to another (a chief's households may change with it)."""

        label = "转移 moved"
        class_version = 1

        from_unit: str
        to_unit: str
        to_level: Level
        households: tuple[str, ...]

        def apply(self, entry: RosterEntry) -> None:
            entry.unit_id, entry.level, entry.households = self.to_unit, self.to_level, self.households
            entry._remember(self.command_id, "move", self.occurred_at)

    class Left(Event):
        """The entry left the roster; its id stays theirs."""

        label = "退出 left"
        class_version = 1

        from_unit: str
        reason: str

        def apply(self, entry: RosterEntry) -> None:
            entry.active = False
            entry.left_at = self.occurred_at
            entry._remember(self.command_id, "leave", self.occurred_at)

    class Rejoined(Event):
        """An entry that had left joined the roster again, under the same id."""

        label = "重新加入 rejoined"
        class_version = 1

        unit_id: str
        level: Level
        households: tuple[str, ...]

        def apply(self, entry: RosterEntry) -> None:
            entry.active, entry.left_at = True, None
            entry.unit_id, entry.level, entry.households = self.unit_id, self.level, self.households
            entry._remember(self.command_id, "join", self.occurred_at)

    class RepresentativesNamed(Event):
        """Who acts for a body changed: from this time on, these people act for it (and only these)."""

        label = "代表变更 representatives named"
        class_version = 1

        representatives: tuple[str, ...]

        def apply(self, entry: RosterEntry) -> None:
            entry.representatives = self.representatives
            entry.acting.append((self.occurred_at, self.representatives))
            entry._remember(self.command_id, "represent", self.occurred_at)

    @event(Joined)
    def __init__(
        self,
        *,
        entry_id: str,
        person_id: str | None,
        kind: Kind,
        unit_id: str,
        level: Level,
        name: str,
        workplace_id: str | None,
        households: tuple[str, ...],
        representatives: tuple[str, ...],
        actor: str,
        occurred_at: datetime,
        command_id: str,
    ) -> None:
        self.entry_id = entry_id
        self.kind = kind
        self.unit_id = unit_id
        self.level = level
        self.name = name
        self.workplace_id = workplace_id
        self.households = households
        self.representatives = representatives
        # Who acted for the body from when: a claim is checked against those acting at its own time.
        self.acting: list[tuple[datetime, tuple[str, ...]]] = [(occurred_at, representatives)]
        self.active = True
        self.joined_at = occurred_at
        self.left_at: datetime | None = None
        self.last_occurred_at = occurred_at
        self._commands: dict[str, tuple[str, int]] = {}
        self._remember(command_id, "join", occurred_at, version=1)

    @classmethod
    def join(
        cls,
        *,
        entry_id: str,
        kind: Kind | str,
        unit: Unit,
        name: str,
        workplace_id: str | None,
        households: Sequence[str],
        representatives: Sequence[str],
        actor: str,
        at: datetime,
        command_id: str,
    ) -> RosterEntry:
        """Put a person or body on the roster at `unit`; the caller has checked that the workplace and the
        representatives named are on the roster."""
        _check_common(actor, at, command_id)
        _identifier("entry_id", entry_id)
        what = _choice(Kind, "kind", kind)
        level = _level_of(what, unit, "unit_id")
        name = one_line_text("name", name, MAX_NAME)
        if workplace_id is not None:
            if what is not Kind.MEMBER:
                raise InvalidValue("workplace_id", f"only a member names a workplace; a {what.value} names none")
            if _identifier("workplace_id", workplace_id) == entry_id:
                raise InvalidValue("workplace_id", "a member is not their own workplace")
        acting = _ids("representatives", representatives, MAX_REPRESENTATIVES)
        if acting and what.is_person:
            raise InvalidValue("representatives", f"people act for bodies; a {what.value} has no representatives")
        if entry_id in acting:
            raise InvalidValue("representatives", "a body does not act for itself")
        return cls._create(
            cls.Joined,
            id=entry_uuid(entry_id),
            entry_id=entry_id,
            person_id=entry_id if what.is_person else None,
            kind=what,
            unit_id=unit.id,
            level=level,
            name=name,
            workplace_id=workplace_id,
            households=_households(what, households),
            representatives=acting,
            actor=actor,
            occurred_at=at,
            command_id=command_id,
        )

    def move(self, *, unit: Unit, households: Sequence[str] | None, actor: str, at: datetime, command_id: str) -> None:
        """Move the registration to `unit`; a chief's households stay as they were unless new ones are given."""
        self._check_common(actor, at, command_id)
        self._check_on_roster("moved")
        if unit.id == self.unit_id:
            raise InvalidValue("to_unit_id", f"{self.entry_id!r} is registered at {unit.id!r} already")
        level = _level_of(self.kind, unit, "to_unit_id")
        covered = self.households if households is None else _households(self.kind, households)
        self.trigger_event(self.Moved, from_unit=self.unit_id, to_unit=unit.id, to_level=level, households=covered,
                           actor=actor, occurred_at=at, command_id=command_id)  # fmt: skip

    def leave(self, *, reason: str, actor: str, at: datetime, command_id: str) -> None:
        """Take the entry off the roster; `reason` may be empty."""
        self._check_common(actor, at, command_id)
        self._check_on_roster("taken off the roster")
        why = one_line_text("reason", reason, MAX_REASON) if reason.strip() else ""
        self.trigger_event(self.Left, from_unit=self.unit_id, reason=why, actor=actor, occurred_at=at,
                           command_id=command_id)  # fmt: skip

    def rejoin(
        self, *, kind: Kind | str, unit: Unit, households: Sequence[str], actor: str, at: datetime, command_id: str
    ) -> None:
        """Put an entry that left back on the roster, as what it was before."""
        self._check_common(actor, at, command_id)
        what = _choice(Kind, "kind", kind)
        if self.active:
            raise InvalidTransition("entry_id", f"{self.entry_id!r} is on the roster already, at {self.unit_id!r}; "
                                    "move them instead")  # fmt: skip
        if what is not self.kind:
            raise InvalidValue("kind", f"{self.entry_id!r} was a {self.kind.value}; an id is never given to a "
                               f"{what.value}")  # fmt: skip
        level = _level_of(what, unit, "unit_id")
        self.trigger_event(self.Rejoined, unit_id=unit.id, level=level, households=_households(what, households),
                           actor=actor, occurred_at=at, command_id=command_id)  # fmt: skip

    def representatives_at(self, at: datetime) -> tuple[str, ...]:
        """Who acted for the body at `at` (none before it joined, and none for a person)."""
        named: tuple[str, ...] = ()
        for since, representatives in self.acting:
            if since > at:
                break
            named = representatives
        return named

    def name_representatives(
        self, *, representatives: Sequence[str], actor: str, at: datetime, command_id: str
    ) -> None:
        """Name who acts for the body from `at` on (none: nobody, until some are named); the caller has checked
        that they are people on the roster."""
        self._check_common(actor, at, command_id)
        self._check_on_roster("given representatives")
        if self.kind.is_person:
            raise InvalidValue("representatives", f"people act for bodies; a {self.kind.value} has no "
                               "representatives")  # fmt: skip
        acting = _ids("representatives", representatives, MAX_REPRESENTATIVES)
        if self.entry_id in acting:
            raise InvalidValue("representatives", "a body does not act for itself")
        if set(acting) == set(self.representatives):
            named = ", ".join(acting) if acting else "nobody"
            raise InvalidValue("representatives", f"{self.entry_id!r} is acted for by {named} already")
        self.trigger_event(self.RepresentativesNamed, representatives=acting, actor=actor, occurred_at=at,
                           command_id=command_id)  # fmt: skip

    def outcome_of(self, command_id: str, kind: str) -> int | None:
        """The version an earlier command with this id left, or None if it is new to this entry."""
        seen = self._commands.get(command_id)
        if seen is None:
            return None
        if seen[0] != kind:
            raise CommandIdReused("command_id", f"{command_id!r} was already used to {seen[0]} this roster entry")
        return seen[1]

    def __deepcopy__(self, memo: dict[int, object]) -> RosterEntry:
        """A copy that changes apart from this one: only the commands seen and pending events change in place."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._commands = dict(self._commands)
        twin.acting = list(self.acting)
        twin._pending_events = list(self._pending_events)
        memo[id(self)] = twin
        return twin

    def _remember(self, command_id: str, kind: str, occurred_at: datetime, version: int | None = None) -> None:
        # Runs inside the event's apply, before the library bumps the version: hence + 1.
        self._commands[command_id] = (kind, version or self.version + 1)
        self.last_occurred_at = occurred_at

    def _check_common(self, actor: str, at: datetime, command_id: str) -> None:
        _check_common(actor, at, command_id)
        if at < self.last_occurred_at:
            raise InvalidValue("occurred_at", f"{at.isoformat()} is before the roster entry's latest event "
                               f"({self.last_occurred_at.isoformat()})")  # fmt: skip

    def _check_on_roster(self, doing: str) -> None:
        if not self.active:
            left = f" on {self.left_at:%Y-%m-%d}" if self.left_at else ""
            raise InvalidTransition("entry_id", f"{self.entry_id!r} left the roster{left}; only an entry on it can be "
                                    f"{doing}")  # fmt: skip


@dataclass
class Standing:
    """One entry's time on a unit's roll: what it is, and the periods it stood there (until None: still there)."""

    kind: Kind
    periods: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def on_at(self, at: datetime) -> bool:
        """Whether the entry stood on the roll at `at`."""
        return any(start <= at and (until is None or at < until) for start, until in self.periods)

    @property
    def on_now(self) -> bool:
        """Whether the entry stands on the roll now."""
        return bool(self.periods) and self.periods[-1][1] is None


class UnitRoll(Aggregate):
    """Who stands on one unit's roster, and who stood on it when: kept beside the entries' own events, in the same
    transaction, so that a claim is checked by reading one unit's roll. A unit has a roll from its first entry on."""

    class Event(Aggregate.Event):
        """Every roll event says who recorded it, when it happened, and by which command."""

        actor: str
        occurred_at: datetime
        command_id: str

    class Opened(Event, Aggregate.Created):
        """The unit's roster was opened: from now on, claims at the unit are checked against it."""

        class_version = 1
        unit_id: str

    class Enrolled(Event):
        """An entry joined the unit's roster (joining the roster there, or moving there)."""

        class_version = 1
        entry_id: str
        kind: Kind

        def apply(self, roll: UnitRoll) -> None:
            standing = roll.standings.setdefault(self.entry_id, Standing(self.kind))
            standing.kind = self.kind
            standing.periods.append((self.occurred_at, None))

    class Unenrolled(Event):
        """An entry left the unit's roster: moved to `to_unit`, or off the roster (None)."""

        class_version = 1
        entry_id: str
        to_unit: str | None

        def apply(self, roll: UnitRoll) -> None:
            standing = roll.standings[self.entry_id]
            start, _ = standing.periods[-1]
            standing.periods[-1] = (start, self.occurred_at)

    @event(Opened)
    def __init__(self, *, unit_id: str, actor: str, occurred_at: datetime, command_id: str) -> None:
        self.unit_id = unit_id
        self.standings: dict[str, Standing] = {}

    @classmethod
    def open(cls, unit_id: str, *, actor: str, at: datetime, command_id: str) -> UnitRoll:
        """The roll of `unit_id`, opened by its first entry's command."""
        return cls._create(cls.Opened, id=roll_uuid(unit_id), unit_id=unit_id, actor=actor, occurred_at=at,
                           command_id=command_id)  # fmt: skip

    def enrol(self, entry_id: str, kind: Kind, *, actor: str, at: datetime, command_id: str) -> None:
        """Record that `entry_id` stands on this unit's roster from `at`."""
        standing = self.standings.get(entry_id)
        if standing is not None and standing.on_now:
            raise InvalidTransition("entry_id", f"{entry_id!r} is on the roster of {self.unit_id!r} already")
        self.trigger_event(self.Enrolled, entry_id=entry_id, kind=kind, actor=actor, occurred_at=at,
                           command_id=command_id)  # fmt: skip

    def unenrol(self, entry_id: str, *, to_unit: str | None, actor: str, at: datetime, command_id: str) -> None:
        """Record that `entry_id` stands on this unit's roster no more from `at`."""
        standing = self.standings.get(entry_id)
        if standing is None or not standing.on_now:
            raise InvalidTransition("entry_id", f"{entry_id!r} is not on the roster of {self.unit_id!r}")
        self.trigger_event(self.Unenrolled, entry_id=entry_id, to_unit=to_unit, actor=actor, occurred_at=at,
                           command_id=command_id)  # fmt: skip

    def on_roll(self, at: datetime | None = None) -> dict[str, Kind]:
        """The entries on the roll now, or as it stood at `at`, and what each is."""
        return {entry_id: s.kind for entry_id, s in self.standings.items() if (s.on_now if at is None else s.on_at(at))}

    def __deepcopy__(self, memo: dict[int, object]) -> UnitRoll:
        """A copy that changes apart from this one: the standings (and their periods) and pending events."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.standings = {k: Standing(s.kind, list(s.periods)) for k, s in self.standings.items()}
        twin._pending_events = list(self._pending_events)
        memo[id(self)] = twin
        return twin
