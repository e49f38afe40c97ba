"""Which of the Merkle log's first leaves still have an event's hash row: the census that shows, for one grievance's
check, that events a checkpoint covers were deleted together with their hashes (which leaves no row to miss).

A count of `event_hashes` rows with a leaf index below the checkpoint's size, and, only when it falls short, the
runs of leaves with none. Both scan the hashes' table: a check's cost, never a routine read's.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from adapters.storage.event_stores import HASHES_TABLE

# Runs of orphaned leaves named at most; a finding names the first and counts the rest.
RUNS = 20

COUNT = "SELECT count(*) AS n FROM {hashes} WHERE leaf_index < {p}"
# Each run of leaves below the size with no row, as (first, last): the gaps between recorded leaves, and the tail.
GAPS = (
    "SELECT prev + 1 AS first, leaf_index - 1 AS last FROM (SELECT leaf_index, lag(leaf_index, 1, -1) OVER "
    "(ORDER BY leaf_index) AS prev FROM {hashes} WHERE leaf_index < {p}) t WHERE leaf_index > prev + 1 "
    "UNION ALL SELECT coalesce(max(leaf_index), -1) + 1, {p} - 1 FROM {hashes} WHERE leaf_index < {p} "
    "HAVING coalesce(max(leaf_index), -1) + 1 < {p} ORDER BY first LIMIT {runs}"
)


class LeafCensus:
    """The census of one store's leaves, read through its recorder's datastore (SQLite or PostgreSQL)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        if isinstance(datastore, PostgresDatastore):
            hashes = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(HASHES_TABLE))
            self._count: Any = SQL(COUNT.format(hashes="{hashes}", p="%(size)s")).format(hashes=hashes)
            self._gaps: Any = SQL(GAPS.format(hashes="{hashes}", p="%(size)s", runs=RUNS)).format(hashes=hashes)
        else:
            self._count = COUNT.format(hashes=HASHES_TABLE, p=":size")
            self._gaps = GAPS.format(hashes=HASHES_TABLE, p=":size", runs=RUNS)

    @classmethod
    def of(cls, store: object) -> LeafCensus | None:
        """The census of a recorder, or None for a store with no datastore (one held in memory)."""
        datastore = getattr(store, "datastore", None)
        return None if datastore is None else cls(datastore)

    def recorded_below(self, size: int) -> int:
        """How many of leaves 0 to size-1 have an event's hash row."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._count, {"size": size})
            row = c.fetchone()
            return int(row["n"] if isinstance(row, dict) else row[0])

    def orphaned_below(self, size: int) -> list[tuple[int, int]]:
        """The first runs (first, last) of leaves below `size` whose events' hash rows are gone."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._gaps, {"size": size})
            return [(int(r["first"]), int(r["last"])) for r in c.fetchall()]
