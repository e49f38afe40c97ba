"""The senders' record of what became of each message in the loop's outbox, beside the projection's tables:
not projected, so it is kept across a rebuild of the outbox and nothing is delivered twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from adapters.storage.side_table import SideTable
from projections.resident_loop.tables import ResidentLoopTables, utc

# Delivered (or given up on, or withheld from a forgotten resident): a message in one of these is never sent again.
FINAL = ("delivered", "withheld", "no_phone", "failed")


@dataclass(frozen=True)
class Pending:
    """A message the sender still owes: its row, its resident (if the report named one) and its attempts."""

    message_id: str
    grievance_id: UUID
    kind: str
    at: datetime
    unit_id: str
    text: str
    resident_id: str | None
    attempts: int


class Deliveries(SideTable):
    """Each message's delivery (`outbox_deliveries`), read joined with the outbox the loop's tables project."""

    def __init__(self, loop: ResidentLoopTables) -> None:
        super().__init__(loop.datastore, "outbox_deliveries", "message_id TEXT PRIMARY KEY, state TEXT NOT NULL, "
                         "attempts BIGINT NOT NULL, next_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
                         "last_error TEXT NOT NULL")  # fmt: skip
        self.loop = loop

    def _sql(self, sql: str) -> str:
        return self.loop.sql(sql.replace("{outbox_deliveries}", self.table))

    def pending(self, now: datetime, *, limit: int = 100) -> list[Pending]:
        """Messages not yet delivered (nor given up on) whose next attempt is due, oldest first: of grievances whose
        report named a resident (the others' messages have no one to go to)."""
        rows = self._execute(self._sql(
            "SELECT o.*, g.resident_id, d.attempts FROM {loop_outbox} o "
            "JOIN {loop_grievances} g ON g.grievance_id = o.grievance_id "
            "LEFT JOIN {outbox_deliveries} d ON d.message_id = o.message_id "
            "WHERE g.resident_id IS NOT NULL AND (d.message_id IS NULL OR (d.state = 'retrying' AND d.next_at <= ?)) "
            "ORDER BY o.at, o.message_id LIMIT ?"), (utc(now), limit))  # fmt: skip
        return [Pending(r["message_id"], UUID(r["grievance_id"]), r["kind"], datetime.fromisoformat(r["at"]),
                        r["unit_id"], r["text"], r["resident_id"], int(r["attempts"] or 0)) for r in rows]  # fmt: skip

    def record(self, message_id: str, state: str, attempts: int, now: datetime, *, next_at: datetime | None = None,
               error: str = "") -> None:  # fmt: skip
        """Record what became of a delivery: `delivered`, `retrying` (again at `next_at`), or a final refusal."""
        self._execute(self._sql("INSERT INTO {outbox_deliveries} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) "
                                "DO UPDATE SET state = excluded.state, attempts = excluded.attempts, next_at = "
                                "excluded.next_at, updated_at = excluded.updated_at, last_error = excluded.last_error"),
                      (message_id, state, attempts, utc(next_at or now), utc(now), error[:500]))  # fmt: skip

    def deliveries(self) -> dict[str, str]:
        """Every message's delivery state, by its id."""
        return {r["message_id"]: r["state"] for r in self._execute(self._sql("SELECT * FROM {outbox_deliveries}"))}
