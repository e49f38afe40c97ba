"""What operators did at the store: the CLI, with direct access to the database, acts as whatever actor it is
told, so each command it applies (to a grievance or to the roster) is recorded with the operator who ran it, for
auditors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from adapters.storage.side_table import SideTable
from engine.access import Principal
from engine.commands import Command
from engine.errors import GrievanceError
from engine.roster import entry_uuid
from engine.roster_commands import RosterCommand, RosterOutcome
from schemas.results import Accepted, Result

TABLE = "operator_actions"


class OperatorAction(msgspec.Struct, kw_only=True, frozen=True):
    """One command an operator applied: who ran it, as whom, what, and what became of it."""

    at: str
    operator: str
    verb: str
    grievance_id: str
    command_id: str
    kind: str
    actor: str
    outcome: str


class OperatorLog(SideTable):
    """The record of operators' commands, in a table of its own beside the events; only appended to."""

    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore, TABLE, "at TEXT NOT NULL, operator TEXT NOT NULL, verb TEXT NOT NULL, "
                         "grievance_id TEXT NOT NULL, command_id TEXT NOT NULL, kind TEXT NOT NULL, "
                         "actor TEXT NOT NULL, outcome TEXT NOT NULL")  # fmt: skip

    def record(self, operator: Principal, verb: str, commands: Sequence[Command], results: Sequence[Result]) -> None:
        """Record each command of one invocation, in one transaction."""
        at = datetime.now(UTC).isoformat()
        rows = [(at, operator.name, verb, str(c.grievance_id), c.command_id, c.kind, c.actor,
                 ("duplicate" if r.duplicate else "applied") if isinstance(r, Accepted) else f"refused: {r.code}")
                for c, r in zip(commands, results, strict=True)]  # fmt: skip
        self._insert(rows)

    def record_roster(self, operator: Principal, verb: str, commands: Sequence[RosterCommand],
                      outcomes: Sequence[RosterOutcome | GrievanceError]) -> None:  # fmt: skip
        """Record each roster command of one invocation under its entry's record id (`roster join` and so on), in
        one transaction: the roster's keepers act at the store as the grievances' operators do."""
        at = datetime.now(UTC).isoformat()
        rows = [(at, operator.name, verb, str(entry_uuid(c.entry_id)), c.command_id, f"roster {c.verb}", c.actor,
                 f"refused: {o.code}" if isinstance(o, GrievanceError) else "duplicate" if o.duplicate else "applied")
                for c, o in zip(commands, outcomes, strict=True)]  # fmt: skip
        self._insert(rows)

    def _insert(self, rows: Sequence[tuple[str, ...]]) -> None:
        if rows:
            with self.datastore.transaction(commit=True) as cursor:
                marks = ", ".join([self.mark] * 8)
                cursor.executemany(f"INSERT INTO {self.table} VALUES ({marks})", rows)

    def latest(self, *, grievance_id: UUID | None = None, limit: int = 100) -> list[OperatorAction]:
        """The latest actions, newest first (on one grievance, if given)."""
        return self._latest(OperatorAction, "at", grievance_id, limit)
