"""What the engine answers: command results and views of a grievance."""

from __future__ import annotations

from uuid import UUID

import msgspec

from schemas.common import (
    AwareDatetime,
    CategoryName,
    ChannelName,
    ClaimModeName,
    LevelName,
    RatingName,
    StatusName,
)
from schemas.events import EventEnvelope


class Accepted(msgspec.Struct, kw_only=True, frozen=True, tag="accepted", tag_field="result"):
    """The command was applied (or, with `duplicate`, had been applied before and nothing was stored)."""

    command_id: str
    grievance_id: UUID
    kind: str
    version: int
    status: StatusName
    level: LevelName
    unit_id: str
    duplicate: bool = False
    # A report's receipt code for the resident (adapters/storage/receipts.py): it opens their page, /r/{code}.
    receipt: str | None = None


class Rejected(msgspec.Struct, kw_only=True, frozen=True, tag="rejected", tag_field="result"):
    """The command was refused and nothing was stored; `field` names the input at fault."""

    command_id: str | None
    grievance_id: UUID | None
    code: str
    field: str
    reason: str


Result = Accepted | Rejected


class ClaimantThen(msgspec.Struct, kw_only=True, frozen=True):
    """Who the claimant was on the roster when they claimed: what they were, where registered, and their name
    (a person's masked, "[erased]" once forgotten; a body's as it is), and whether they stood on it then."""

    kind: str
    unit_id: str
    name: str
    on_roster: bool


class GrievanceView(msgspec.Struct, kw_only=True, frozen=True):
    """A grievance's current (or past) state."""

    grievance_id: UUID
    version: int
    status: StatusName
    level: LevelName
    unit_id: str
    category: CategoryName
    channel: ChannelName
    title: str
    description: str
    reported_unit: str
    reported_by: str
    reported_at: AwareDatetime
    # The resident's name and phone read "[erased]" once the resident has been forgotten.
    resident_id: str | None = None
    resident_name: str | None = None
    resident_phone: str | None = None
    path: list[str]
    claim_mode: ClaimModeName | None
    claimant: str | None
    claimed_at: AwareDatetime | None
    # The claimant on the roster as it stood at the claim; None where the claimant was not on it (or none claimed).
    claimant_then: ClaimantThen | None = None
    due_at: AwareDatetime | None
    overdue: bool
    closed_at: AwareDatetime | None
    closing_text: str | None
    rating: RatingName | None
    reopen_count: int
    progress_notes: int
    recorded_at: AwareDatetime


class History(msgspec.Struct, kw_only=True, frozen=True):
    """Every event of one grievance, oldest first."""

    grievance_id: UUID
    events: list[EventEnvelope]
