"""The resident's loop's tables beside the events: the outbox of messages owed to residents, the closures
waiting for a rating, the ratings and who gave them (all projected, rebuildable: projections.resident_loop),
and the senders' record of what they delivered (kept across a rebuild, so nothing is delivered twice)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from adapters.storage.side_table import SideTable
from projections.resident_loop.changes import Closure, LoopChanges

OUTBOX = "loop_outbox"
# Delivered (or given up on, or withheld from a forgotten resident): a message in one of these is never sent again.
FINAL = ("delivered", "withheld", "no_phone", "failed")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


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


@dataclass(frozen=True)
class RatingShare:
    """Ratings of one scope: how many, how many satisfied (or basically), how many the residents gave themselves."""

    rated: int
    satisfied: int
    by_residents: int
    by_callback: int

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None

    @property
    def resident_share(self) -> float | None:
        return self.by_residents / self.rated if self.rated else None


class ResidentLoopTables(SideTable):
    """The LoopViews port (projections.resident_loop.runner), the callback queue and the senders' record."""

    def __init__(self, datastore: Any) -> None:
        columns = "message_id TEXT PRIMARY KEY, grievance_id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL, "
        super().__init__(datastore, OUTBOX, columns + "unit_id TEXT NOT NULL, text TEXT NOT NULL")
        tables = ("loop_position", "loop_grievances", "loop_closures", "loop_ratings", "outbox_deliveries")
        self.names = {n: self.table.replace(OUTBOX, n) for n in tables}
        for name, columns in (
            ("loop_position", "name TEXT PRIMARY KEY, position BIGINT NOT NULL"),
            ("loop_grievances", "grievance_id TEXT PRIMARY KEY, unit_id TEXT NOT NULL, resident_id TEXT"),
            ("loop_closures", "grievance_id TEXT PRIMARY KEY, unit_id TEXT NOT NULL, status TEXT NOT NULL, "
                              "closed_at TEXT NOT NULL"),
            ("loop_ratings", "grievance_id TEXT NOT NULL, version BIGINT NOT NULL, unit_id TEXT NOT NULL, rating TEXT "
                             "NOT NULL, given_by TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (grievance_id, version)"),
            ("outbox_deliveries", "message_id TEXT PRIMARY KEY, state TEXT NOT NULL, attempts BIGINT NOT NULL, "
                                  "next_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_error TEXT NOT NULL"),
        ):  # fmt: skip
            self._execute(f"CREATE TABLE IF NOT EXISTS {self.names[name]} ({columns})")
        # The position's row exists from the start, so that a runner can lock it (PostgreSQL) before writing a page.
        self._execute(self._sql("INSERT INTO {loop_position} VALUES ('loop', 0) ON CONFLICT (name) DO NOTHING"))
        self._lock = " FOR UPDATE" if self.postgres else ""  # SQLite's writers take turns anyway

    def _sql(self, sql: str) -> str:
        for name, full in self.names.items():
            sql = sql.replace("{" + name + "}", full)
        return sql.replace("{loop_outbox}", self.table).replace("?", self.mark)

    # ----------------------------------------------------------------------------- the projection's port

    def position(self) -> int:
        rows = self._execute(self._sql("SELECT position FROM {loop_position} WHERE name = 'loop'"))
        return int(rows[0]["position"]) if rows else 0

    def units_of(self, grievance_ids: Collection[UUID]) -> dict[UUID, str]:
        found: dict[UUID, str] = {}
        ids = [str(g) for g in grievance_ids]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._execute(self._sql(f"SELECT grievance_id, unit_id FROM {{loop_grievances}} WHERE grievance_id "
                                           f"IN ({', '.join('?' * len(chunk))})"), tuple(chunk))  # fmt: skip
            found.update((UUID(r["grievance_id"]), r["unit_id"]) for r in rows)
        return found

    def write(self, changes: LoopChanges, units: Mapping[UUID, str], position: int, *, previous: int) -> bool:
        with self.datastore.transaction(commit=True) as cursor:
            # Locked till the page is written: two runners catching up at once write each page once.
            cursor.execute(self._sql("SELECT position FROM {loop_position} WHERE name = 'loop'" + self._lock))
            rows = list(cursor.fetchall())
            if (int(rows[0]["position"]) if rows else 0) != previous:
                return False
            cursor.execute(self._sql("INSERT INTO {loop_position} VALUES ('loop', ?) ON CONFLICT (name) DO UPDATE "
                                     "SET position = excluded.position"), (position,))  # fmt: skip
            cursor.executemany(self._sql("INSERT INTO {loop_grievances} VALUES (?, ?, ?) ON CONFLICT (grievance_id) "
                                         "DO UPDATE SET unit_id = excluded.unit_id"),
                               [(str(g), u, changes.residents.get(g)) for g, u in units.items()])  # fmt: skip
            cursor.executemany(self._sql("UPDATE {loop_grievances} SET resident_id = ? WHERE grievance_id = ?"),
                               [(r, str(g)) for g, r in changes.residents.items()])  # fmt: skip
            cursor.executemany(self._sql("INSERT INTO {loop_outbox} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) "
                                         "DO NOTHING"),
                               [(m.message_id, str(m.grievance_id), m.kind, _utc(m.at), m.unit_id, m.text)
                                for m in changes.messages])  # fmt: skip
            closed = [(str(g), c.unit_id, c.status, _utc(c.closed_at)) for g, c in changes.closures.items() if c]
            cursor.executemany(self._sql("DELETE FROM {loop_closures} WHERE grievance_id = ?"),
                               [(str(g),) for g in changes.closures])  # fmt: skip
            cursor.executemany(self._sql("INSERT INTO {loop_closures} VALUES (?, ?, ?, ?)"), closed)
            cursor.executemany(self._sql("INSERT INTO {loop_ratings} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                                         "(grievance_id, version) DO NOTHING"),
                               [(str(r.grievance_id), r.version, r.unit_id, r.rating, r.given_by, _utc(r.at))
                                for r in changes.ratings])  # fmt: skip
        return True

    def clear(self) -> None:
        for name in ("loop_grievances", "loop_closures", "loop_ratings"):
            self._execute(self._sql(f"DELETE FROM {{{name}}}"))
        self._execute(self._sql("UPDATE {loop_position} SET position = 0"))
        self._execute(self._sql("DELETE FROM {loop_outbox}"))

    # ----------------------------------------------------------------------------- the office's questions

    def unrated_closures(self, closed_before: datetime, units: Collection[str] | None, *, limit: int = 100
                         ) -> list[Closure]:  # fmt: skip
        """Closures not rated since before `closed_before`, oldest first: whom the office should call back (回访)."""
        rows = self._execute(self._sql("SELECT * FROM {loop_closures} WHERE closed_at < ? ORDER BY closed_at"),
                             (_utc(closed_before),))  # fmt: skip
        found = [Closure(UUID(r["grievance_id"]), r["unit_id"], r["status"], datetime.fromisoformat(r["closed_at"]))
                 for r in rows if units is None or r["unit_id"] in units]  # fmt: skip
        return found[:limit]

    def rating_share(self, units: Collection[str] | None) -> RatingShare:
        """How the ratings of these units (all, for None) were given, and how many were satisfied."""
        rows = self._execute(self._sql("SELECT unit_id, rating, given_by, COUNT(*) AS n FROM {loop_ratings} "
                                       "GROUP BY unit_id, rating, given_by"))  # fmt: skip
        counts = {"rated": 0, "satisfied": 0, "resident": 0, "callback": 0}
        for r in rows:
            if units is not None and r["unit_id"] not in units:
                continue
            n = int(r["n"])
            counts["rated"] += n
            counts["satisfied"] += n if r["rating"] in ("satisfied", "basically_satisfied") else 0
            counts[r["given_by"]] = counts.get(r["given_by"], 0) + n
        return RatingShare(counts["rated"], counts["satisfied"], counts["resident"], counts["callback"])

    # ----------------------------------------------------------------------------- the senders' record

    def pending(self, now: datetime, *, limit: int = 100) -> list[Pending]:
        """Messages not yet delivered (nor given up on) whose next attempt is due, oldest first: of grievances whose
        report named a resident (the others' messages have no one to go to)."""
        rows = self._execute(self._sql(
            "SELECT o.*, g.resident_id, d.attempts FROM {loop_outbox} o "
            "JOIN {loop_grievances} g ON g.grievance_id = o.grievance_id "
            "LEFT JOIN {outbox_deliveries} d ON d.message_id = o.message_id "
            "WHERE g.resident_id IS NOT NULL AND (d.message_id IS NULL OR (d.state = 'retrying' AND d.next_at <= ?)) "
            "ORDER BY o.at, o.message_id LIMIT ?"), (_utc(now), limit))  # fmt: skip
        return [Pending(r["message_id"], UUID(r["grievance_id"]), r["kind"], datetime.fromisoformat(r["at"]),
                        r["unit_id"], r["text"], r["resident_id"], int(r["attempts"] or 0)) for r in rows]  # fmt: skip

    def record(self, message_id: str, state: str, attempts: int, now: datetime, *, next_at: datetime | None = None,
               error: str = "") -> None:  # fmt: skip
        """Record what became of a delivery: `delivered`, `retrying` (again at `next_at`), or a final refusal."""
        self._execute(self._sql("INSERT INTO {outbox_deliveries} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) "
                                "DO UPDATE SET state = excluded.state, attempts = excluded.attempts, next_at = "
                                "excluded.next_at, updated_at = excluded.updated_at, last_error = excluded.last_error"),
                      (message_id, state, attempts, _utc(next_at or now), _utc(now), error[:500]))  # fmt: skip

    def deliveries(self) -> dict[str, str]:
        """Every message's delivery state, by its id."""
        return {r["message_id"]: r["state"] for r in self._execute(self._sql("SELECT * FROM {outbox_deliveries}"))}
