"""Commands as they arrive from grid workers' apps, the CLI, HTTP or Kafka: a union tagged by `kind`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from schemas.common import (
    AwareDatetime,
    CategoryName,
    ChannelName,
    ClaimModeName,
    EscalationReasonName,
    Identifier,
    OptionalText,
    RatingName,
    Text,
    Title,
    UnitId,
)


class CommandBase(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """Fields every command carries: the client's command id makes a retry recognisable."""

    command_id: Identifier
    grievance_id: UUID
    actor: Identifier
    occurred_at: AwareDatetime


class Resident(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The resident who raised a problem: name and phone are personal data, stored sealed with the resident's
    own key (`grievance forget-resident` destroys it)."""

    resident_id: Identifier
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    phone: Annotated[str, msgspec.Meta(pattern=r"^$|^\+?[0-9][0-9 -]{2,19}$")] = ""


class Report(CommandBase, tag="report", frozen=True):
    """Report a resident's problem at a household, building, grid or community."""

    unit_id: UnitId
    category: CategoryName
    title: Title
    description: Text
    channel: ChannelName = "grid_visit"
    resident: Resident | None = None


class Claim(CommandBase, tag="claim", frozen=True):
    """Claim a waiting problem at the unit where it waits."""

    unit_id: UnitId
    mode: ClaimModeName
    claimant: Identifier


class RecordProgress(CommandBase, tag="record_progress", frozen=True):
    """Note progress on a claimed problem."""

    note: Text


class Escalate(CommandBase, tag="escalate", frozen=True):
    """Move a problem one step up; `to_unit_id`, if given, must be that step."""

    reason: EscalationReasonName = "requested"
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

    rating: RatingName
    comment: OptionalText = ""


Command = Report | Claim | RecordProgress | Escalate | Resolve | Reply | Rate

command_decoder = msgspec.json.Decoder(Command)
batch_decoder = msgspec.json.Decoder(list[Command])
