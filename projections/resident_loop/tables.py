"""The resident's loop's tables beside the events, in the event store's database (SQLite or PostgreSQL): the
outbox of messages owed to residents, the grievances' units and residents, the closures waiting for a rating and
the ratings; all projected, all rebuildable. What the senders delivered is theirs (adapters.notifications)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from projections.resident_loop.changes import LoopChanges
from projections.store_statement import run_alone

OUTBOX = "loop_outbox"
TABLES = (OUTBOX, "loop_position", "loop_grievances", "loop_closures", "loop_ratings")


def utc(moment: datetime) -> str:
    """A moment as the tables store it: ISO 8601 in UTC, which sorts as time does."""
    return moment.astimezone(UTC).isoformat()


class ResidentLoopTables:
    """The loop's projected tables: the LoopViews port (projections.resident_loop.runner), and statements on
    them written with `{table}` names and `?` marks (the queries', and the senders' joins)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.mark = "%s" if self.postgres else "?"
        # Each table's name as statements spell it: in the store's schema, on PostgreSQL, if it has one.
        self.names = {n: self.qualified(n) for n in TABLES}
        self.table = self.names[OUTBOX]
        for name, columns in (
            (OUTBOX, "message_id TEXT PRIMARY KEY, grievance_id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL, "
                     "unit_id TEXT NOT NULL, text TEXT NOT NULL"),
            ("loop_position", "name TEXT PRIMARY KEY, position BIGINT NOT NULL"),
            ("loop_grievances", "grievance_id TEXT PRIMARY KEY, unit_id TEXT NOT NULL, resident_id TEXT"),
            ("loop_closures", "grievance_id TEXT PRIMARY KEY, unit_id TEXT NOT NULL, status TEXT NOT NULL, "
                              "closed_at TEXT NOT NULL"),
            ("loop_ratings", "grievance_id TEXT NOT NULL, version BIGINT NOT NULL, unit_id TEXT NOT NULL, rating TEXT "
                             "NOT NULL, given_by TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (grievance_id, version)"),
        ):  # fmt: skip
            self._execute(f"CREATE TABLE IF NOT EXISTS {self.names[name]} ({columns})")
        # The position's row exists from the start, so that a runner can lock it (PostgreSQL) before writing a page.
        self._execute(self.sql("INSERT INTO {loop_position} VALUES ('loop', 0) ON CONFLICT (name) DO NOTHING"))
        self._lock = " FOR UPDATE" if self.postgres else ""  # SQLite's writers take turns anyway

    def qualified(self, name: str) -> str:
        """A table's name as statements spell it in this store (the senders' own table is named alike)."""
        return f'"{self.datastore.schema}".{name}' if self.postgres and self.datastore.schema else name

    def sql(self, sql: str) -> str:
        """A statement with its `{table}` names and `?` marks spelled as this store reads them."""
        for name, full in self.names.items():
            sql = sql.replace("{" + name + "}", full)
        return sql.replace("?", self.mark)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one statement (names and marks as `sql` spells them) in a transaction of its own; its rows."""
        return self._execute(self.sql(sql), params)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return run_alone(self.datastore, sql, params, self.mark)

    # ----------------------------------------------------------------------------- the projection's port

    def position(self) -> int:
        rows = self._execute(self.sql("SELECT position FROM {loop_position} WHERE name = 'loop'"))
        return int(rows[0]["position"]) if rows else 0

    def units_of(self, grievance_ids: Collection[UUID]) -> dict[UUID, str]:
        found: dict[UUID, str] = {}
        ids = [str(g) for g in grievance_ids]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._execute(self.sql(f"SELECT grievance_id, unit_id FROM {{loop_grievances}} WHERE grievance_id "
                                          f"IN ({', '.join('?' * len(chunk))})"), tuple(chunk))  # fmt: skip
            found.update((UUID(r["grievance_id"]), r["unit_id"]) for r in rows)
        return found

    def write(self, changes: LoopChanges, units: Mapping[UUID, str], position: int, *, previous: int) -> bool:
        with self.datastore.transaction(commit=True) as cursor:
            # Locked till the page is written: two runners catching up at once write each page once.
            cursor.execute(self.sql("SELECT position FROM {loop_position} WHERE name = 'loop'" + self._lock))
            rows = list(cursor.fetchall())
            if (int(rows[0]["position"]) if rows else 0) != previous:
                return False
            cursor.execute(self.sql("INSERT INTO {loop_position} VALUES ('loop', ?) ON CONFLICT (name) DO UPDATE "
                                    "SET position = excluded.position"), (position,))  # fmt: skip
            cursor.executemany(self.sql("INSERT INTO {loop_grievances} VALUES (?, ?, ?) ON CONFLICT (grievance_id) "
                                        "DO UPDATE SET unit_id = excluded.unit_id"),
                               [(str(g), u, changes.residents.get(g)) for g, u in units.items()])  # fmt: skip
            cursor.executemany(self.sql("UPDATE {loop_grievances} SET resident_id = ? WHERE grievance_id = ?"),
                               [(r, str(g)) for g, r in changes.residents.items()])  # fmt: skip
            cursor.executemany(self.sql("INSERT INTO {loop_outbox} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) "
                                        "DO NOTHING"),
                               [(m.message_id, str(m.grievance_id), m.kind, utc(m.at), m.unit_id, m.text)
                                for m in changes.messages])  # fmt: skip
            closed = [(str(g), c.unit_id, c.status, utc(c.closed_at)) for g, c in changes.closures.items() if c]
            cursor.executemany(self.sql("DELETE FROM {loop_closures} WHERE grievance_id = ?"),
                               [(str(g),) for g in changes.closures])  # fmt: skip
            cursor.executemany(self.sql("INSERT INTO {loop_closures} VALUES (?, ?, ?, ?)"), closed)
            cursor.executemany(self.sql("INSERT INTO {loop_ratings} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                                        "(grievance_id, version) DO NOTHING"),
                               [(str(r.grievance_id), r.version, r.unit_id, r.rating, r.given_by, utc(r.at))
                                for r in changes.ratings])  # fmt: skip
        return True

    def clear(self) -> None:
        for name in ("loop_grievances", "loop_closures", "loop_ratings"):
            self._execute(self.sql(f"DELETE FROM {{{name}}}"))
        self._execute(self.sql("UPDATE {loop_position} SET position = 0"))
        self._execute(self.sql("DELETE FROM {loop_outbox}"))
