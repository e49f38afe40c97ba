"""The Grievance aggregate: one resident's problem on its way up the chain and back to the resident."""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import re
import sys
import unicodedata
from array import array
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar, cast
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as LibrarySnapshot
from eventsourcing.utils import get_topic

from engine.chart import OrgChart, Unit
from engine.errors import (
    CommandIdReused,
    EscalationRefused,
    InvalidTransition,
    InvalidValue,
    NotClaimant,
    OwnWork,
)
from engine.levels import Level
from engine.limits import TimeLimits

if TYPE_CHECKING:
    from engine.roster_rules import Claimants

MAX_TITLE = 200
MAX_TEXT = 4000
MAX_ID = 100
MAX_NAME = 100
PHONE = re.compile(r"^\+?[0-9][0-9 -]{2,19}$")
# Ids (actors, claimants, command ids, residents) in a safe alphabet: no spaces, controls or look-alikes.
ID_ALPHABET = "A-Z, a-z, 0-9 and . _ : @ + -"
ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{{0,{MAX_ID - 1}}}$")
# Explicit embeddings, overrides and isolates: the bidirectional controls that reorder what follows them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Control characters (Unicode's Cc, but tab and line feed) and the bidirectional controls.
CONTROL_OR_BIDI = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A character that shows: not white space, not a format character (zero-width spaces and joiners, marks).
LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")
VISIBLE = re.compile("[^\\s\u00ad\u061c\u180e\u200b-\u200f\u2060-\u2064\u206a-\u206f\ufeff]")
# A report whose client chose no grievance id gets one derived from its command id (Grievance.create_id).
REPORT_ID_NAMESPACE = UUID("0d3f6c2a-8e41-4b7a-b1c9-6f2e5a7d9c30")


class Status(StrEnum):
    """Where a grievance stands: waiting to be claimed, claimed, or closed one of two ways."""

    WAITING = "waiting"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    REPLIED = "replied"

    @property
    def is_open(self) -> bool:
        """Still owed an answer: waiting or claimed."""
        return self in (Status.WAITING, Status.CLAIMED)

    @classmethod
    def open_ones(cls) -> tuple[Status, ...]:
        """The statuses of grievances still owed an answer."""
        return tuple(s for s in cls if s.is_open)

    @classmethod
    def closed_ones(cls) -> tuple[Status, ...]:
        """The statuses of grievances answered: resolved or replied."""
        return tuple(s for s in cls if not s.is_open)


class ClaimMode(StrEnum):
    """The three ways (三种方式) a problem is claimed: by an organisation, a group or a member."""

    ORGANISATION = "organisation"
    GROUP = "group"
    MEMBER = "member"


class Category(StrEnum):
    """What the problem is about, for routing and for the dashboards."""

    ENVIRONMENT = "environment"
    PROPERTY = "property"
    INFRASTRUCTURE = "infrastructure"
    UTILITIES = "utilities"
    SAFETY = "safety"
    ELDERLY_CARE = "elderly_care"
    EMPLOYMENT = "employment"
    NEIGHBOURS = "neighbours"
    PARKING = "parking"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Chinese and English, as the dashboards and Open311's service list show it."""
        return _CATEGORY_LABELS[self]


class Channel(StrEnum):
    """How the problem reached the chain (002: WeChat groups; 001: the one-stop counter)."""

    GRID_VISIT = "grid_visit"
    WECHAT_GROUP = "wechat_group"
    HOTLINE = "hotline"
    WALK_IN = "walk_in"
    APP = "app"


class EscalationReason(StrEnum):
    """Why a grievance moved up: its claimant asked, or supervision (督办) found it overdue."""

    REQUESTED = "requested"
    OVERDUE = "overdue"


class Rating(StrEnum):
    """The resident's verdict on a resolution or reply; dissatisfied reopens it."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


class RatingSource(StrEnum):
    """How a rating was given: by the resident with their receipt, on the office's callback (回访) by the caller
    the event's actor names, or typed in before ratings said how (counted as neither the resident's own)."""

    RESIDENT = "resident"
    CALLBACK = "callback"
    RECORDED = "recorded"


_CATEGORY_LABELS = {
    Category.ENVIRONMENT: "环境卫生 Environment",
    Category.PROPERTY: "物业服务 Property management",
    Category.INFRASTRUCTURE: "基础设施 Infrastructure",
    Category.UTILITIES: "水电气暖 Utilities",
    Category.SAFETY: "安全隐患 Safety",
    Category.ELDERLY_CARE: "养老服务 Elderly care",
    Category.EMPLOYMENT: "就业帮扶 Employment",
    Category.NEIGHBOURS: "邻里纠纷 Neighbours",
    Category.PARKING: "停车管理 Parking",
    Category.OTHER: "其他 Other",
}

# What a command left behind: version, status, level and unit, for answering its repeats.
Trace = tuple[int, Status, Level, str]


class CommandsSeen:
    """The commands a grievance took, by command id, with the kind and the trace each left, to answer repeats.

    A snapshot keeps only a digest of each id (8 bytes, not the hundred of an entry), so that a grievance of 5,000
    commands loads without them: those taken before the snapshot it was restored from are read from its events
    (`Earlier`) the first time one of their digests is asked about, a repeat of an old command being rare. A digest
    that matches by chance costs that read, never a wrong answer. Copies share what was read.
    """

    __slots__ = ("_earlier", "_taken")

    def __init__(self, earlier: Earlier | None = None) -> None:
        self._earlier = earlier
        self._taken: dict[str, tuple[str, Trace]] = {}

    def get(self, command_id: str) -> tuple[str, Trace] | None:
        """The kind and trace of the command with this id, or None if the grievance never took it."""
        found = self._taken.get(command_id)
        if found is None and self._earlier is not None and self._earlier.may_hold(command_id):
            found = self._earlier.read().get(command_id)
        return found

    def __setitem__(self, command_id: str, seen: tuple[str, Trace]) -> None:
        self._taken[command_id] = seen

    def copy(self) -> CommandsSeen:
        """A copy that takes commands apart from this one."""
        twin = CommandsSeen(self._earlier)
        twin._taken = dict(self._taken)
        return twin

    def digests(self) -> bytes:
        """The digests of every id seen, for a snapshot: sorted 64-bit integers, little-endian."""
        found = set(self._earlier.digests) if self._earlier is not None else set()
        found.update(map(_digest, self._taken))
        return _as_bytes(sorted(found))

    def read_earlier_with(self, read: Callable[[], dict[str, tuple[str, Trace]]]) -> None:
        """Say how the commands before the snapshot are read (from the store's events): the service's to say."""
        if self._earlier is not None:
            self._earlier.reader = read

    def whole(self) -> dict[str, tuple[str, Trace]]:
        """Every command seen, by id (reading those before the snapshot, if need be)."""
        return {**(self._earlier.read() if self._earlier is not None else {}), **self._taken}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CommandsSeen) and self.whole() == other.whole()

    __hash__ = None  # type: ignore[assignment]


class Earlier:
    """The commands a grievance took before its snapshot: their ids' digests, and how to read them whole."""

    __slots__ = ("_read", "digests", "reader")

    def __init__(self, digests: bytes) -> None:
        self.digests = array("Q")
        self.digests.frombytes(digests)
        if sys.byteorder == "big":
            self.digests.byteswap()
        self.reader: Callable[[], dict[str, tuple[str, Trace]]] | None = None
        self._read: dict[str, tuple[str, Trace]] | None = None

    def may_hold(self, command_id: str) -> bool:
        digest = _digest(command_id)
        i = bisect.bisect_left(self.digests, digest)
        return i < len(self.digests) and self.digests[i] == digest

    def read(self) -> dict[str, tuple[str, Trace]]:
        if self._read is None:
            if self.reader is None:
                raise RuntimeError("the commands before the snapshot cannot be read: no reader was given")
            self._read = self.reader()
        return self._read


def _digest(command_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(command_id.encode(), digest_size=8).digest(), "little")


def _as_bytes(digests: list[int]) -> bytes:
    packed = array("Q", digests)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


# A grievance's attributes as a snapshot holds them, typed, so that a snapshot decodes in one pass as an event does
# (engine/transcoder.py). A grievance that gains an attribute must gain it here: a snapshot without it no longer
# decodes, is set aside and the events are read instead (engine/service_chain.py), until the next one is taken.
class GrievanceState(TypedDict):
    """A grievance's attributes, as a snapshot holds them."""

    _created_on: datetime
    _modified_on: datetime
    unit_id: str
    resident_id: str | None
    resident_name: str | None
    resident_phone: str | None
    level: Level
    category: Category
    channel: Channel
    title: str
    description: str
    reported_at: datetime
    reported_by: str
    reported_unit: str
    status: Status
    claim_due: datetime | None
    finish_due: datetime | None
    claim_mode: ClaimMode | None
    claimant: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    closing_text: str | None
    rating: Rating | None
    rating_given_by: RatingSource | None
    hands: dict[str, str]
    path: list[str]
    progress_notes: int
    reopen_count: int
    last_occurred_at: datetime
    _commands: bytes  # CommandsSeen.digests(): the ids' digests only


def digest_of(stored_state: bytes) -> str:
    """What a snapshot names the event it was taken at by: a digest of that event's state as stored."""
    return hashlib.sha256(stored_state).hexdigest()


class Grievance(Aggregate):
    """A resident's problem: reported at a unit, claimed, escalated one step at a time, closed, rated."""

    class Event(Aggregate.Event):
        """Every grievance event says who did it, when it happened in the field, and which command; `label`
        names it in Chinese and English for histories and reports."""

        label: ClassVar[str] = ""
        actor: str
        occurred_at: datetime
        command_id: str

    class Reported(Event, Aggregate.Created):
        """A problem was reported at a unit and now waits there to be claimed by `claim_due`; the resident
        who raised it, if named, is `resident_id`, whose name and phone are personal data."""

        label = "上报 reported"

        # v2 added `channel`; problems reported before it came through grid workers' visits.
        # v3 added the resident; problems reported before it named none.
        class_version = 3
        personal_subject = "resident_id"
        personal_fields = ("resident_name", "resident_phone")

        unit_id: str
        level: Level
        category: Category
        channel: Channel
        title: str
        description: str
        claim_due: datetime
        resident_id: str | None
        resident_name: str | None
        resident_phone: str | None

        def mutate(self, _: Any) -> Any:
            """The grievance this event begins: built here rather than through the library's generic creation, which
            matches the event's attributes to `__init__`'s parameters by signature, for every report (a quarter of
            deciding one)."""
            grievance = object.__new__(Grievance)
            grievance.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            self.apply(grievance)
            return grievance

        def apply(self, grievance: Grievance) -> None:
            grievance.unit_id = self.unit_id
            grievance.resident_id = self.resident_id
            grievance.resident_name = self.resident_name
            grievance.resident_phone = self.resident_phone
            grievance.level = self.level
            grievance.category = self.category
            grievance.channel = self.channel
            grievance.title = self.title
            grievance.description = self.description
            grievance.reported_at = self.occurred_at
            grievance.reported_by = self.actor
            grievance.reported_unit = self.unit_id
            grievance.status = Status.WAITING
            grievance.claim_due = self.claim_due
            grievance.finish_due = None
            grievance.claim_mode = None
            grievance.claimant = None
            grievance.claimed_by = None
            grievance.claimed_at = None
            grievance.closed_at = None
            grievance.closed_by = None
            grievance.closing_text = None
            grievance.rating = None
            grievance.rating_given_by = None
            grievance.hands = {self.actor: "reported"}
            grievance.path = [self.unit_id]
            grievance.progress_notes = 0
            grievance.reopen_count = 0
            grievance.last_occurred_at = self.occurred_at
            grievance._commands = CommandsSeen()
            grievance._remember(self.command_id, "report", self.occurred_at, version=1)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["channel"] = Channel.GRID_VISIT.value

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state.update(resident_id=None, resident_name=None, resident_phone=None)

    class Claimed(Event):
        """Someone at the unit took the problem on, and must settle it by `finish_due`."""

        label = "认领 claimed"

        unit_id: str
        mode: ClaimMode
        claimant: str
        finish_due: datetime

        def apply(self, grievance: Grievance) -> None:
            grievance.status = Status.CLAIMED
            grievance.claim_mode = self.mode
            grievance.claimant = self.claimant
            grievance.claimed_by = self.actor
            grievance.claimed_at = self.occurred_at
            grievance.finish_due = self.finish_due
            grievance._handled(self.claimant, "claimed")
            grievance._handled(self.actor, "claimed")
            grievance._remember(self.command_id, "claim", self.occurred_at)

    class ProgressRecorded(Event):
        """The claimant noted what has been done so far."""

        label = "进展 progress"

        note: str

        def apply(self, grievance: Grievance) -> None:
            grievance.progress_notes += 1
            grievance._handled(self.actor, "worked on")
            grievance._remember(self.command_id, "record_progress", self.occurred_at)

    class Escalated(Event):
        """The problem moved exactly one step up and waits at `to_unit` to be claimed by `claim_due`."""

        label = "上移 escalated"

        from_unit: str
        to_unit: str
        to_level: Level
        reason: EscalationReason
        note: str
        claim_due: datetime

        def apply(self, grievance: Grievance) -> None:
            grievance._arrive(self.to_unit, self.to_level, self.claim_due)
            grievance.path.append(self.to_unit)
            if self.reason == EscalationReason.REQUESTED:
                grievance._handled(self.actor, "worked on")
            grievance._remember(self.command_id, "escalate", self.occurred_at)

    class Resolved(Event):
        """The problem was solved; `summary` says what was done."""

        label = "解决 resolved"

        summary: str

        def apply(self, grievance: Grievance) -> None:
            grievance._close(Status.RESOLVED, self.summary, self.actor, self.occurred_at)
            grievance._handled(self.actor, "worked on")
            grievance._remember(self.command_id, "resolve", self.occurred_at)

    class Replied(Event):
        """The problem cannot be solved here; `reason` says why and `answer` what the resident was told."""

        label = "答复 replied"

        reason: str
        answer: str

        def apply(self, grievance: Grievance) -> None:
            grievance._close(Status.REPLIED, self.answer, self.actor, self.occurred_at)
            grievance._handled(self.actor, "worked on")
            grievance._remember(self.command_id, "reply", self.occurred_at)

    class Rated(Event):
        """The resident rated the resolution or reply: themselves (`given_by` resident), or on the office's
        callback, by the caller the actor names."""

        label = "评价 rated"

        # v2 added `given_by`; ratings before it were typed in by whoever sent them, and said nothing of how.
        class_version = 2

        rating: Rating
        comment: str
        given_by: RatingSource

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["given_by"] = RatingSource.RECORDED.value

        def apply(self, grievance: Grievance) -> None:
            grievance.rating = self.rating
            grievance.rating_given_by = self.given_by
            grievance._remember(self.command_id, "rate", self.occurred_at)

    class Reopened(Event):
        """A dissatisfied rating sent the problem back to wait at the unit that closed it."""

        label = "重新办理 reopened"

        unit_id: str
        level: Level
        claim_due: datetime

        def apply(self, grievance: Grievance) -> None:
            grievance._arrive(self.unit_id, self.level, self.claim_due)
            grievance.reopen_count += 1
            grievance._remember(self.command_id, "rate", self.occurred_at)

    @dataclasses.dataclass(frozen=True)  # as the library's metaclass makes it; said here for the type checker
    class Snapshot(LibrarySnapshot):
        """The grievance as it stood at `originator_version`, to start a load from instead of its first event.

        Not an event: in no hash chain and no log, and never shown as history. It is trusted only as far as the store
        still holds the event it was taken at, whose stored state `follows` digests; a resident's name and phone
        are in it as their events store them, sealed."""

        # Typed, for the decoder (engine/transcoder.py); to the library it is the dict of the aggregate's attributes.
        state: GrievanceState  # type: ignore[assignment]
        follows: str = ""  # a snapshot taken by the library's `take` names no event: it is never confirmed

        @classmethod
        def of(cls, grievance: Grievance, follows: str) -> Grievance.Snapshot:
            """A snapshot of `grievance`, no events waiting, taken at the stored event whose digest is `follows`."""
            taken = cls.take(grievance)
            state = cast(dict[str, Any], taken.state)
            state["_commands"] = grievance._commands.digests()
            return dataclasses.replace(taken, follows=follows)

        def mutate(self, _: None) -> Grievance:
            """The grievance as it stood; the commands it took before are known by their digests only (`restore`)."""
            grievance = cast(Grievance, super().mutate(None))
            grievance._commands = CommandsSeen(Earlier(cast(bytes, grievance.__dict__["_commands"])))
            return grievance

        def restore(self, read_earlier: Callable[[], dict[str, tuple[str, Trace]]]) -> Grievance:
            """The grievance as it stood, which reads the commands it took before the snapshot with `read_earlier`
            (from its events) once one of their ids is asked about."""
            grievance = self.mutate(None)
            grievance._commands.read_earlier_with(read_earlier)
            return grievance

    # ----------------------------------------------------------------------------- creation

    # What a grievance holds, set by its events' `apply`.
    unit_id: str
    resident_id: str | None
    resident_name: str | None
    resident_phone: str | None
    level: Level
    category: Category
    channel: Channel
    title: str
    description: str
    reported_at: datetime
    reported_by: str
    reported_unit: str
    status: Status
    claim_due: datetime | None
    finish_due: datetime | None
    claim_mode: ClaimMode | None
    claimant: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    closing_text: str | None
    rating: Rating | None
    rating_given_by: RatingSource | None
    # Who reported, claimed or worked on it, and what they did first: they may not rate their own work. A
    # mapping replaced whole, never changed in place, so copies of the grievance may share it.
    hands: Mapping[str, str]
    path: list[str]
    progress_notes: int
    reopen_count: int
    last_occurred_at: datetime
    _commands: CommandsSeen

    @classmethod
    def label_of(cls, event_type: str) -> str:
        """The label of the event class named `event_type` (as an envelope names it), or the name itself."""
        found = getattr(cls, event_type, None)
        return found.label if isinstance(found, type) and issubclass(found, Grievance.Event) else event_type

    @staticmethod
    def create_id(command_id: str) -> UUID:
        """The id a report gets when its client chose none: derived from the command id, so a retried report
        finds the same grievance."""
        return uuid5(REPORT_ID_NAMESPACE, command_id)

    @classmethod
    def report(
        cls,
        grievance_id: UUID,
        *,
        unit: Unit,
        category: Category | str,
        channel: Channel | str,
        title: str,
        description: str,
        limits: TimeLimits,
        actor: str,
        at: datetime,
        command_id: str,
        resident_id: str | None = None,
        resident_name: str | None = None,
        resident_phone: str | None = None,
        received: datetime | None = None,
    ) -> Grievance:
        """Record a new problem at `unit`; the caller has checked the unit may take reports. Its limit runs from
        `received`, when the chain got it by the server's clock (default: `at`, for a historic import)."""
        _check_common(actor, at, command_id)
        if (resident_name or resident_phone) and not resident_id:
            raise InvalidValue("resident.resident_id", "a resident's name or phone needs the resident's id")
        if resident_id:
            _identifier("resident.resident_id", resident_id)
        if resident_name:
            resident_name = _text("resident.name", resident_name, MAX_NAME)
        if resident_phone and not PHONE.match(resident_phone):
            raise InvalidValue("resident.phone", "must be digits, spaces or dashes, 3-20 long, with an optional +")
        # The id is the one the client chose, so a retried report lands on the same grievance.
        # The fields are the event class's own, made a dataclass by the library's metaclass, which mypy cannot see.
        reported = cls.Reported(  # type: ignore[call-arg]
            originator_id=grievance_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=cls.Reported.create_timestamp(),
            originator_topic=_TOPIC,
            unit_id=unit.id,
            level=unit.level,
            category=_choice(Category, "category", category),
            channel=_choice(Channel, "channel", channel),
            title=_text("title", title, MAX_TITLE),
            description=_text("description", description, MAX_TEXT),
            claim_due=(received or at) + limits[unit.level].claim,
            resident_id=resident_id or None,
            resident_name=resident_name or None,
            resident_phone=resident_phone or None,
            actor=actor,
            occurred_at=at,
            command_id=command_id,
        )
        grievance = cast(Grievance, reported.mutate(None))
        grievance._pending_events.append(reported)
        return grievance

    # ----------------------------------------------------------------------------- commands

    def claim(
        self,
        *,
        unit_id: str,
        mode: ClaimMode | str,
        claimant: str,
        limits: TimeLimits,
        actor: str,
        at: datetime,
        command_id: str,
        received: datetime | None = None,
        claimants: Claimants | None = None,
    ) -> None:
        """Take on a waiting problem at the unit where it waits; the limit to settle runs from `received`. The
        claimant must be one of `claimants` there (the unit's roster, engine.roster_rules), when it is given, and the
        actor the claimant themselves or one who acts for it."""
        self._check_common(actor, at, command_id)
        claim_mode = _choice(ClaimMode, "mode", mode)
        claimant = _identifier("claimant", claimant)
        if self.status is not Status.WAITING:
            raise InvalidTransition("status", f"the grievance is {self.status}; only a waiting one can be claimed")
        if unit_id != self.unit_id:
            raise InvalidValue("unit_id", f"the grievance waits at {self.unit_id!r}, not {unit_id!r}")
        if claimants is not None:
            claimants.check(claimant, claim_mode, at, actor=actor)
        self.trigger_event(
            self.Claimed,
            unit_id=unit_id,
            mode=claim_mode,
            claimant=claimant,
            finish_due=(received or at) + limits[self.level].finish,
            actor=actor,
            occurred_at=at,
            command_id=command_id,
        )

    def record_progress(self, *, note: str, actor: str, at: datetime, command_id: str) -> None:
        """Note what the claimant has done so far."""
        self._check_common(actor, at, command_id)
        note = _text("note", note, MAX_TEXT)
        self._check_claimant(actor, "record progress on")
        self.trigger_event(self.ProgressRecorded, note=note, actor=actor, occurred_at=at, command_id=command_id)

    def escalate(
        self,
        *,
        chart: OrgChart,
        limits: TimeLimits,
        reason: EscalationReason | str,
        to_unit_id: str | None,
        note: str,
        actor: str,
        at: datetime,
        command_id: str,
        now: datetime,
        received: datetime | None = None,
    ) -> None:
        """Move the problem exactly one step up: on the claimant's request, or because it is overdue by `now`,
        the server's clock (never the sender's)."""
        self._check_common(actor, at, command_id)
        why = _choice(EscalationReason, "reason", reason)
        note = _text("note", note, MAX_TEXT, allow_empty=True)
        if not self.status.is_open:
            raise InvalidTransition("status", f"the grievance is {self.status}; only an open one can be escalated")
        parent = chart.parent_of(self.unit_id)
        if parent is None:
            raise EscalationRefused("to_unit_id", "the grievance waits at the leading group; nothing escalates past it")
        if to_unit_id is not None and to_unit_id != parent.id:
            target = chart.unit(to_unit_id, field="to_unit_id")
            if target.level.rank <= self.level.rank:
                problem = f"is a {target.level}, not above {self.level}; nothing moves down or sideways"
            elif target.level.rank > self.level.rank + 1:
                problem = f"is a {target.level}; escalating there would skip a step"
            else:
                problem = f"is not the parent of {self.unit_id!r}"
            raise EscalationRefused("to_unit_id", f"{to_unit_id!r} {problem} (the next step is {parent.id!r})")
        if why is EscalationReason.REQUESTED:
            self._check_claimant(actor, "escalate")
        elif not self.is_overdue(now):
            raise EscalationRefused("reason", f"the grievance is not overdue until {self.due_at():%Y-%m-%d %H:%M %Z}")
        self.trigger_event(
            self.Escalated,
            from_unit=self.unit_id,
            to_unit=parent.id,
            to_level=parent.level,
            reason=why,
            note=note,
            claim_due=(received or at) + limits[parent.level].claim,
            actor=actor,
            occurred_at=at,
            command_id=command_id,
        )

    def resolve(self, *, summary: str, actor: str, at: datetime, command_id: str) -> None:
        """Close the problem as solved, saying what was done."""
        self._check_common(actor, at, command_id)
        summary = _text("summary", summary, MAX_TEXT)
        self._check_claimant(actor, "resolve")
        self.trigger_event(self.Resolved, summary=summary, actor=actor, occurred_at=at, command_id=command_id)

    def reply(self, *, reason: str, answer: str, actor: str, at: datetime, command_id: str) -> None:
        """Close the problem unsolved, with why and what the resident was told (及时答复)."""
        self._check_common(actor, at, command_id)
        reason = _text("reason", reason, MAX_TEXT)
        answer = _text("answer", answer, MAX_TEXT)
        self._check_claimant(actor, "reply to")
        self.trigger_event(
            self.Replied, reason=reason, answer=answer, actor=actor, occurred_at=at, command_id=command_id
        )

    def rate(
        self,
        *,
        rating: Rating | str,
        comment: str,
        limits: TimeLimits,
        actor: str,
        at: datetime,
        command_id: str,
        given_by: RatingSource | str = RatingSource.CALLBACK,
        received: datetime | None = None,
    ) -> None:
        """Record the resident's rating, given by themselves or on a callback by the caller `actor` names, who must
        not have reported, claimed or worked on the grievance; 'dissatisfied' reopens it where it was closed."""
        self._check_common(actor, at, command_id)
        verdict = _choice(Rating, "rating", rating)
        source = _choice(RatingSource, "given_by", given_by)
        comment = _text("comment", comment, MAX_TEXT, allow_empty=True)
        if source is RatingSource.RECORDED:
            raise InvalidValue("given_by", "a rating is given by the resident or on a callback (回访); "
                                           "'recorded' only reads ratings stored before they said how")  # fmt: skip
        if self.status.is_open:
            raise InvalidTransition(
                "status", f"the grievance is {self.status}; only a resolved or replied one can be rated"
            )
        if self.rating is not None:
            raise InvalidTransition("rating", f"this closure was already rated {self.rating}")
        if source is RatingSource.CALLBACK and (did := self.hands.get(actor)):
            raise OwnWork("actor", f"{actor!r} {did} this grievance and may not rate their own work: the rating "
                                   "comes from the resident, or from someone else's callback (回访)")  # fmt: skip
        self.trigger_event(
            self.Rated,
            rating=verdict,
            comment=comment,
            given_by=source,
            actor=actor,
            occurred_at=at,
            command_id=command_id,
        )
        if verdict is Rating.DISSATISFIED:
            self.trigger_event(
                self.Reopened,
                unit_id=self.unit_id,
                level=self.level,
                claim_due=(received or at) + limits[self.level].claim,
                actor=actor,
                occurred_at=at,
                command_id=command_id,
            )

    def __deepcopy__(self, memo: dict[int, Any]) -> Grievance:
        """A copy that changes apart from this one: what is changed in place (the path, the commands seen, the
        events waiting to be stored) is copied; every value in them and every other attribute never changes in
        place, so is shared. Copying a grievance of 5,000 events this way is a copy of one dict, not a walk."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.path = list(self.path)
        twin._commands = self._commands.copy()
        twin._pending_events = list(self._pending_events)
        memo[id(self)] = twin
        return twin

    # ----------------------------------------------------------------------------- queries

    def due_at(self) -> datetime | None:
        """When the current stage's limit runs out: claim by, or settle by; None once closed."""
        if self.status is Status.WAITING:
            return self.claim_due
        if self.status is Status.CLAIMED:
            return self.finish_due
        return None

    def is_overdue(self, now: datetime) -> bool:
        """Whether an open grievance has passed its current limit at `now`."""
        due = self.due_at()
        return due is not None and now > due

    def commands_taken(self) -> dict[str, tuple[str, Trace]]:
        """Every command the grievance took, by id: its kind and the trace it left."""
        return self._commands.whole()

    def outcome_of(self, command_id: str, kind: str) -> Trace | None:
        """(version, status, level, unit) an earlier command with this id left, or None if it is new here."""
        seen = self._commands.get(command_id)
        if seen is None:
            return None
        seen_kind, trace = seen
        if seen_kind != kind:
            raise CommandIdReused(
                "command_id", f"{command_id!r} was already used for a {seen_kind} command on this grievance"
            )
        return trace

    # ----------------------------------------------------------------------------- helpers

    def _arrive(self, unit_id: str, level: Level, claim_due: datetime) -> None:
        self.unit_id = unit_id
        self.level = level
        self.status = Status.WAITING
        self.claim_due = claim_due
        self.finish_due = None
        self.claim_mode = None
        self.claimant = None
        self.claimed_by = None
        self.claimed_at = None
        self.closed_at = None
        self.closed_by = None
        self.closing_text = None
        self.rating = None
        self.rating_given_by = None

    def _close(self, status: Status, text: str, actor: str, at: datetime) -> None:
        self.status = status
        self.closed_at = at
        self.closed_by = actor
        self.closing_text = text
        self.finish_due = None

    def _handled(self, who: str, did: str) -> None:
        if who not in self.hands:
            self.hands = {**self.hands, who: did}

    def _remember(self, command_id: str, kind: str, occurred_at: datetime, version: int | None = None) -> None:
        # Runs inside the event's apply, before the library bumps the version: hence + 1.
        self._commands[command_id] = (kind, (version or self.version + 1, self.status, self.level, self.unit_id))
        self.last_occurred_at = occurred_at

    def _check_common(self, actor: str, at: datetime, command_id: str) -> None:
        _check_common(actor, at, command_id)
        if at < self.last_occurred_at:
            raise InvalidValue(
                "occurred_at",
                f"{at.isoformat()} is before the grievance's latest event ({self.last_occurred_at.isoformat()})",
            )

    def _check_claimant(self, actor: str, doing: str) -> None:
        if self.status is not Status.CLAIMED:
            raise InvalidTransition(
                "status", f"the grievance is {self.status}; only the claimant of a claimed one can {doing} it"
            )
        if actor not in (self.claimant, self.claimed_by):
            raise NotClaimant("actor", f"{actor!r} did not claim this grievance (claimant: {self.claimant!r})")


# What a report's event names its aggregate's class by, as the library's creation path writes it.
_TOPIC = get_topic(Grievance)


def _check_common(actor: str, at: datetime, command_id: str) -> None:
    _identifier("actor", actor)
    _identifier("command_id", command_id)
    if not isinstance(at, datetime):
        raise InvalidValue("occurred_at", "must be a date and time")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidValue("occurred_at", "must carry a timezone (a naive time is ambiguous)")


def _identifier(field: str, value: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidValue(field, f"must be 1-{MAX_ID} characters of {ID_ALPHABET}, starting with a letter or digit")
    return value


def _text(field: str, value: str, limit: int, *, allow_empty: bool = False) -> str:
    """Free text as stored and shown: NFC-normalised, without control characters (but line breaks and tabs) or
    the bidirectional overrides that make text read otherwise than it is, and not only invisible characters."""
    if not isinstance(value, str):
        raise InvalidValue(field, "must be text")
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    value = value.strip()
    # Regular expressions rather than a loop over characters: every report's title and description pass here.
    if found := CONTROL_OR_BIDI.search(value):
        ch = found.group()
        what = "bidirectional control" if ch in BIDI_CONTROLS else "control character"
        raise InvalidValue(field, f"holds the {what} U+{ord(ch):04X}, which makes text read otherwise than it is")
    if not allow_empty and not VISIBLE.search(value):
        raise InvalidValue(field, "must not be empty (or only invisible characters)")
    if len(value) > limit:
        raise InvalidValue(field, f"is {len(value)} characters; at most {limit} are allowed")
    return value


def one_line_text(field: str, value: str, limit: int) -> str:
    """Free text that must stay one line where it is listed (a disclosure's reason, say): as `_text`, and without
    line breaks or tabs, with which one record could be made to read as two."""
    text = _text(field, value, limit)
    if found := LINE_BREAKS.search(text):
        raise InvalidValue(field, f"must be one line; it holds U+{ord(found.group()):04X}")
    return text


E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], field: str, value: E | str) -> E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidValue(field, f"{value!r} is not one of: {choices}") from None
