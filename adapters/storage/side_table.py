"""A table of the engine's own beside the events, in the event store's database (SQLite or PostgreSQL):
residents' keys, the record of personal data read in full."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from projections.store_statement import run_alone

R = TypeVar("R")


class SideTable:
    """One table in the event store's database, created if missing, with statements written with `?` marks."""

    def __init__(self, datastore: Any, name: str, columns: str) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.table = f'"{datastore.schema}".{name}' if self.postgres and datastore.schema else name
        self.mark = "%s" if self.postgres else "?"
        self._execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one statement in a transaction of its own; the rows it returns, if any."""
        return run_alone(self.datastore, sql, params, self.mark)

    def _latest(self, record: type[R], when: str, grievance_id: UUID | None, limit: int) -> list[R]:
        """The newest rows first, by the `when` column, as `record`s (of one grievance, if given)."""
        where, params = (" WHERE grievance_id = ?", (str(grievance_id),)) if grievance_id else ("", ())
        rows = self._execute(f"SELECT * FROM {self.table}{where} ORDER BY {when} DESC LIMIT ?", (*params, limit))
        fields: tuple[str, ...] = record.__struct_fields__  # type: ignore[attr-defined]
        return [record(**{k: r[k] for k in fields}) for r in rows]
