"""Every full reading of a resident's personal data, recorded where auditors can read it (PIPL: access to
personal information is logged): who, as what, when, which grievance, through which channel, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from adapters.storage.side_table import SideTable
from engine.access import Principal
from engine.grievance import one_line_text

TABLE = "personal_data_reads"
MAX_REASON = 500


class Disclosure(msgspec.Struct, kw_only=True, frozen=True):
    """One full reading of personal data."""

    read_at: str
    reader: str
    role: str
    grievance_id: str
    channel: str
    reason: str


class DisclosureLog(SideTable):
    """The record of full readings, in a table of its own in the event store's database; only appended to."""

    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore, TABLE, "read_at TEXT NOT NULL, reader TEXT NOT NULL, role TEXT NOT NULL, "
                         "grievance_id TEXT NOT NULL, channel TEXT NOT NULL, reason TEXT NOT NULL")  # fmt: skip

    def record(self, reader: Principal, grievance_id: UUID, *, channel: str, reason: str) -> None:
        """Record a full reading, before the data is shown; a reason that is not one line of visible text is refused
        (`InvalidValue`), as a line break in it could forge a second reading in the list auditors read."""
        reason = one_line_text("reason", reason, MAX_REASON)
        self._execute(
            f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?, ?)",
            (datetime.now(UTC).isoformat(), reader.name, reader.role.value, str(grievance_id), channel,
             reason),
        )  # fmt: skip

    def latest(self, *, grievance_id: UUID | None = None, limit: int = 100) -> list[Disclosure]:
        """The latest readings, newest first (of one grievance, if given)."""
        return self._latest(Disclosure, "read_at", grievance_id, limit)
