"""One SQL statement in a transaction of its own, on the event store's datastore (SQLite or PostgreSQL): what the
read models' own tables and the adapters' side tables beside the events share."""

from __future__ import annotations

from typing import Any


def run_alone(datastore: Any, sql: str, params: tuple[Any, ...], mark: str) -> list[Any]:
    """Run `sql` (written with `?` marks, spelled `mark` for this store) in its own transaction; its rows, if any."""
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(sql.replace("?", mark), params)
        try:
            return list(cursor.fetchall())
        except Exception:  # a statement that returns no rows: each driver says so its own way
            return []
