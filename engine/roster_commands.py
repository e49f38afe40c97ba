"""What the roster's keepers ask it to do, as typed messages tagged by `verb`, and what each request left behind.

Every channel (the CLI, an imported file, HTTP) decodes its input into one of these; the field constraints are the
input rules they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from engine.commands import AwareDatetime, CommandDecoder, Identifier, UnitId
from engine.roster import MAX_HOUSEHOLDS, MAX_REASON, MAX_REPRESENTATIVES, Kind

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]


class RosterCommandBase(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="verb"):
    """Fields every roster command carries: the client's command id makes a retry recognisable."""

    command_id: Identifier
    actor: Identifier
    occurred_at: AwareDatetime
    entry_id: Identifier

    @property
    def verb(self) -> str:
        """The command's tag on the wire: `join`, `move`, `leave` or `represent`."""
        return str(type(self).__struct_config__.tag)


class Join(RosterCommandBase, tag="join", frozen=True):
    """Put a person or body on the roster at a unit (or back on it, under the id it had)."""

    kind: Kind
    unit_id: UnitId
    name: Name
    workplace_id: Identifier | None = None
    households: Annotated[list[Identifier], msgspec.Meta(max_length=MAX_HOUSEHOLDS)] = []
    representatives: Annotated[list[Identifier], msgspec.Meta(max_length=MAX_REPRESENTATIVES)] = []


class Move(RosterCommandBase, tag="move", frozen=True):
    """Move an entry's registration to another unit; a chief may be given new households with it."""

    to_unit_id: UnitId
    households: Annotated[list[Identifier], msgspec.Meta(max_length=MAX_HOUSEHOLDS)] | None = None


class Leave(RosterCommandBase, tag="leave", frozen=True):
    """Take an entry off the roster."""

    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON)] = ""


class Represent(RosterCommandBase, tag="represent", frozen=True):
    """Name who acts for a body from now on, in place of those named before (an empty list: nobody)."""

    representatives: Annotated[list[Identifier], msgspec.Meta(max_length=MAX_REPRESENTATIVES)]


RosterCommand = Join | Move | Leave | Represent

roster_command_decoder: CommandDecoder[RosterCommand] = CommandDecoder(RosterCommand)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RosterOutcome:
    """What a roster command left: the entry's version, where it stands, and `duplicate` for a repeat."""

    entry_id: str
    command_id: str
    verb: str
    version: int
    on_roster: bool
    unit_id: str
    duplicate: bool = False
