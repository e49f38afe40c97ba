"""What grid workers and members ask the chain to do, as typed messages, and what each request left behind.

A command is a msgspec Struct tagged by `kind`: every channel (HTTP, Kafka, the CLI, Open311) decodes
its input into one of these, and the application receives exactly that. Field constraints here are the
input rules every channel shares; `grievance schema` publishes them as JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from engine.grievance import Category, Channel, ClaimMode, EscalationReason, Rating, Status
from engine.levels import Level

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
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True, description="An RFC 3339 time with a UTC offset.")]


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
    """The resident's rating of a resolution or reply."""

    rating: Rating
    comment: OptionalText = ""


Command = Report | Claim | RecordProgress | Escalate | Resolve | Reply | Rate

# Built once and shared: every channel decodes with these.
command_decoder = msgspec.json.Decoder(Command)
batch_decoder = msgspec.json.Decoder(list[Command])


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
