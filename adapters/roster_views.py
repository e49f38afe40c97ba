"""The roster as every channel shows it: entries with people's names masked unless revealed, and command results."""

from __future__ import annotations

from engine.errors import GrievanceError
from engine.personal_data import masked
from engine.roster import RosterEntry
from engine.roster_commands import RosterCommand, RosterOutcome
from schemas.roster import RosterAccepted, RosterEntryView, RosterRejected, RosterResult


def entry_view(entry: RosterEntry, *, reveal: bool = False) -> RosterEntryView:
    """The entry as shown: a person's name masked unless `reveal` (a body's name is public)."""
    name = entry.name if reveal or not entry.kind.is_person else masked("name", entry.name) or ""
    return RosterEntryView(
        entry_id=entry.entry_id, kind=entry.kind.value, kind_label=entry.kind.label, unit_id=entry.unit_id,
        level=entry.level.value, name=name, workplace_id=entry.workplace_id, households=list(entry.households),
        representatives=list(entry.representatives), on_roster=entry.active, joined_at=entry.joined_at,
        left_at=entry.left_at, version=entry.version,
    )  # fmt: skip


def result_of(command: RosterCommand | None, result: RosterOutcome | GrievanceError, row: int | None = None,
              ) -> RosterResult:  # fmt: skip
    """The wire result of one roster command (or of a file's row that named none that decodes)."""
    if isinstance(result, RosterOutcome):
        return RosterAccepted(command_id=result.command_id, entry_id=result.entry_id, verb=result.verb,
                              version=result.version, on_roster=result.on_roster, unit_id=result.unit_id,
                              duplicate=result.duplicate)  # fmt: skip
    return RosterRejected(command_id=command.command_id if command else None,
                          entry_id=command.entry_id if command else None, code=result.code, field=result.field,
                          reason=result.reason, row=row)  # fmt: skip
