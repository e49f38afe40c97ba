"""What the roster answers: an entry as shown (a person's name masked unless revealed), a unit's roll, and the
result of a roster command."""

from __future__ import annotations

from datetime import datetime

import msgspec


class RosterEntryView(msgspec.Struct, kw_only=True, frozen=True):
    """A person or body on the roster, as it stands now."""

    entry_id: str
    kind: str
    kind_label: str
    unit_id: str
    level: str
    # A person's name masked (王**) unless revealed, "[erased]" once forgotten; a body's name as it is.
    name: str
    workplace_id: str | None
    households: list[str]
    representatives: list[str]
    on_roster: bool
    joined_at: datetime
    left_at: datetime | None
    version: int


class RollView(msgspec.Struct, kw_only=True, frozen=True):
    """A unit's roll now, or as it stood at `at`: who could claim there then, and in which mode."""

    unit_id: str
    at: datetime | None
    keeps_roster: bool
    entries: list[RosterEntryView]


class RosterAccepted(msgspec.Struct, kw_only=True, frozen=True, tag="accepted", tag_field="result"):
    """A roster command applied (or recognised as a repeat: `duplicate`)."""

    command_id: str
    entry_id: str
    verb: str
    version: int
    on_roster: bool
    unit_id: str
    duplicate: bool = False


class RosterRejected(msgspec.Struct, kw_only=True, frozen=True, tag="rejected", tag_field="result"):
    """A roster command refused: the field at fault, the reason, a stable code; `row` for a file's row."""

    command_id: str | None
    entry_id: str | None
    code: str
    field: str
    reason: str
    row: int | None = None


RosterResult = RosterAccepted | RosterRejected
