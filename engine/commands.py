"""What grid workers and members ask the chain to do, as typed messages, and what each request left behind.

A command is a msgspec Struct tagged by `kind`: every channel (HTTP, Kafka, the CLI, Open311) decodes
its input into one of these, and the application receives exactly that. Field constraints here are the
input rules every channel shares; `grievance schema` publishes them as JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin
from uuid import UUID

import msgspec

from engine.errors import InvalidValue
from engine.grievance import Category, Channel, ClaimMode, EscalationReason, Rating, RatingSource, Status
from engine.levels import Level
from engine.times import parse_time

Identifier = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$",
        description="An id: 1-100 characters of A-Z, a-z, 0-9 and . _ : @ + -, starting with a letter or digit.",
    ),
]
UnitId = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$", description="A unit of the organisation chart."
    ),
]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"\S")]
OptionalText = Annotated[str, msgspec.Meta(max_length=4000)]
AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="An RFC 3339 time with a UTC offset (Z or ±hh:mm); in a command, the seconds may be left out.",
    ),
]


class CommandBase(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """Fields every command carries: the client's command id makes a retry recognisable."""

    command_id: Identifier
    grievance_id: UUID
    actor: Identifier
    occurred_at: AwareDatetime

    @property
    def kind(self) -> str:
        """The command's tag on the wire: `report`, `claim`, …"""
        return str(type(self).__struct_config__.tag)


class Resident(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The resident who raised a problem: name and phone are personal data, stored sealed with the resident's
    own key (`grievance forget-resident` destroys it)."""

    resident_id: Identifier
    # On Kafka each may come sealed to the engine's intake key (`hpke:v1:…`, adapters/kafka/intake_sealing.py).
    name: Annotated[str, msgspec.Meta(max_length=400)] = ""
    phone: Annotated[str, msgspec.Meta(pattern=r"^$|^\+?[0-9][0-9 -]{2,19}$|^hpke:v1:[A-Za-z0-9+/=]{1,400}$")] = ""


class Report(CommandBase, tag="report", frozen=True):
    """Report a resident's problem at a household, building, grid or community."""

    unit_id: UnitId
    category: Category
    title: Title
    description: Text
    channel: Channel = Channel.GRID_VISIT
    resident: Resident | None = None


class Claim(CommandBase, tag="claim", frozen=True):
    """Claim a waiting problem at the unit where it waits."""

    unit_id: UnitId
    mode: ClaimMode
    claimant: Identifier


class RecordProgress(CommandBase, tag="record_progress", frozen=True):
    """Note progress on a claimed problem."""

    note: Text


class Escalate(CommandBase, tag="escalate", frozen=True):
    """Move a problem one step up; `to_unit_id`, if given, must be that step."""

    reason: EscalationReason = EscalationReason.REQUESTED
    to_unit_id: UnitId | None = None
    note: OptionalText = ""


class Resolve(CommandBase, tag="resolve", frozen=True):
    """Close a claimed problem as solved."""

    summary: Text


class Reply(CommandBase, tag="reply", frozen=True):
    """Close a claimed problem unsolved, with the reason and what the resident was told."""

    reason: Text
    answer: Text


class Rate(CommandBase, tag="rate", frozen=True):
    """The resident's rating of a resolution or reply: given by the resident with their receipt, or on the
    office's callback (回访), whose caller is the actor."""

    rating: Rating
    comment: OptionalText = ""
    given_by: RatingSource = RatingSource.CALLBACK


Command = Report | Claim | RecordProgress | Escalate | Resolve | Reply | Rate

T = TypeVar("T")


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or (get_origin(annotation) is Annotated and get_args(annotation)[0] is datetime)


# The commands' time fields, read by `engine.times` rather than msgspec, whose reader insists on seconds.
TIME_FIELDS = frozenset(f.name for kind in get_args(Command) for f in msgspec.structs.fields(kind) if _is_time(f.type))


def times_read(document: Any) -> Any:
    """`document` (a command's fields, or a list of them) with each time field that holds text read as RFC 3339,
    with or without seconds; a time that is not one is msgspec's `ValidationError`, at the field's path, as any
    other field at fault is."""
    items = document if isinstance(document, list) else [document]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for name in TIME_FIELDS & item.keys():
            if isinstance(item[name], str):
                try:
                    item[name] = parse_time(name, item[name], bounded=False)
                except InvalidValue as e:
                    path = f"$[{i}].{name}" if isinstance(document, list) else f"$.{name}"
                    raise msgspec.ValidationError(f"{e.reason} - at `{path}`") from None
    return document


class CommandDecoder(Generic[T]):
    """Decodes JSON into `kind` (a command, or a list of them), its times read as every channel reads them."""

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind
        self._json = msgspec.json.Decoder()

    def decode(self, data: bytes | str) -> T:
        """The `kind` that JSON `data` holds; msgspec's `DecodeError` or `ValidationError` if it holds none."""
        return self.convert(self._json.decode(data))

    def convert(self, document: Any) -> T:
        """The `kind` that decoded JSON (dicts, lists, strings) holds; `document` is read in place."""
        return msgspec.convert(times_read(document), self.kind)


# Built once and shared: every channel decodes with these.
command_decoder: CommandDecoder[Command] = CommandDecoder(Command)  # type: ignore[arg-type]
batch_decoder: CommandDecoder[list[Command]] = CommandDecoder(list[Command])


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command left: the grievance's version and where it stands; `duplicate` for a repeat."""

    grievance_id: UUID
    command_id: str
    kind: str
    version: int
    status: Status
    level: Level
    unit_id: str
    duplicate: bool = False
