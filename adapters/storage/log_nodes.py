"""The Merkle log's stored nodes, in SQLite and PostgreSQL: appended in the transaction that stores their events.

`log_nodes (level, idx, hash)` holds every complete subtree (adapters.storage.merkle_log), leaves at level 0;
the log's size is one more than its last leaf's index. Each event's leaf index sits next to its chained hash
in `event_hashes`, so a grievance's proofs are found from its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Composed, Identifier

from adapters.storage.hash_chain import GENESIS, link, originator_uuid
from adapters.storage.merkle_log import Node, NodeKey, appended, leaf_hash, span_nodes
from engine.errors import InfrastructureError

NODES_TABLE = "log_nodes"
# The most levels a log of 2^63 leaves has: its frontier is at most one node a level.
LEVELS = 63
SQLITE_KEYS_PER_QUERY = 400


class LogDamaged(InfrastructureError):
    """The stored log lacks a node an append or a proof needs: rows were deleted behind the engine's back."""


def frontier_keys(size: int) -> list[NodeKey]:
    """The complete subtrees an append to a log of `size` leaves joins (its head's, left to right)."""
    return span_nodes(0, size)


def _frontier(size: int, found: Mapping[NodeKey, bytes]) -> list[bytes]:
    try:
        return [found[k] for k in frontier_keys(size)]
    except KeyError as e:
        msg = (
            f"log: node {e.args[0]} of the Merkle log is missing, so no event can be stored: restore {NODES_TABLE} "
            "from a backup, or empty it to rebuild it from the events at the next start (then verify --checkpoint)"
        )
        raise LogDamaged(msg) from None


def new_nodes(size: int, frontier: Sequence[bytes], chained: Iterable[bytes]) -> list[Node]:
    """The nodes appending events with these chained hashes (in storage order) to a log of `size` completes."""
    return appended(size, frontier, (leaf_hash(h) for h in chained))


class SQLiteLogNodes:
    """The log's nodes in a SQLite store, read and appended on the caller's cursor."""

    create_statement = (
        f"CREATE TABLE IF NOT EXISTS {NODES_TABLE} (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
        "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
    )

    @staticmethod
    def size(c: Any) -> int:
        """The number of leaves in the log."""
        c.execute(f"SELECT max(idx) FROM {NODES_TABLE} WHERE level = 0")
        last = c.fetchone()[0]
        return 0 if last is None else int(last) + 1

    @staticmethod
    def nodes(c: Any, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hash of each key (absent keys left out)."""
        wanted = list(set(keys))
        found: dict[NodeKey, bytes] = {}
        for i in range(0, len(wanted), SQLITE_KEYS_PER_QUERY):
            chunk = wanted[i : i + SQLITE_KEYS_PER_QUERY]
            c.execute(f"WITH k(level, idx) AS (VALUES {','.join(['(?, ?)'] * len(chunk))}) SELECT n.level, n.idx, "
                      f"n.hash FROM k JOIN {NODES_TABLE} n ON n.level = k.level AND n.idx = k.idx",
                      [x for key in chunk for x in key])  # fmt: skip
            found.update(((row[0], row[1]), bytes(row[2])) for row in c.fetchall())
        return found

    def append(self, c: Any, chained: Sequence[bytes]) -> int:
        """Append leaves for events with these chained hashes, in storage order; the first one's leaf index.
        The caller's transaction holds the database's write lock, so no other append interleaves."""
        size = self.size(c)
        made = new_nodes(size, _frontier(size, self.nodes(c, frontier_keys(size))), chained)
        c.executemany(f"INSERT INTO {NODES_TABLE} VALUES (?, ?, ?)", [(n.level, n.index, n.hash) for n in made])
        return size


class PostgresLogNodes:
    """The log's nodes in a PostgreSQL schema. Appends run inside the events' transaction, after its lock on
    the events table (the library's, which serialises writers), so leaf indexes are gapless and in the order
    the events are stored."""

    def __init__(self, schema: str) -> None:
        s, nodes = Identifier(schema), Identifier(NODES_TABLE)
        self.create_statement: Composed = SQL(
            "CREATE TABLE IF NOT EXISTS {s}.{nodes} (level smallint NOT NULL, idx bigint NOT NULL, "
            "hash bytea NOT NULL, PRIMARY KEY (level, idx))"
        ).format(s=s, nodes=nodes)
        # The size and the frontier nodes in one round trip: node (b, (size >> b) - 1) for each bit b of the size.
        self.select_frontier_statement = SQL(
            "WITH s AS (SELECT coalesce(max(idx) + 1, 0) AS size FROM {s}.{nodes} WHERE level = 0) "
            "SELECT s.size, b.level, n.hash FROM s CROSS JOIN generate_series(0, {levels}) AS b(level) "
            "LEFT JOIN {s}.{nodes} n ON n.level = b.level AND n.idx = (s.size >> b.level) - 1 "
            "WHERE (s.size >> b.level) & 1 = 1"
        ).format(s=s, nodes=nodes, levels=LEVELS)
        self.insert_statement = SQL(
            "INSERT INTO {s}.{nodes} SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])"
        ).format(s=s, nodes=nodes)
        self.select_size_statement = SQL("SELECT max(idx) AS last FROM {s}.{nodes} WHERE level = 0").format(
            s=s, nodes=nodes
        )
        self.select_nodes_statement = SQL(
            "SELECT n.level, n.idx, n.hash FROM unnest(%b::smallint[], %b::bigint[]) AS k(level, idx) "
            "JOIN {s}.{nodes} n ON n.level = k.level AND n.idx = k.idx"
        ).format(s=s, nodes=nodes)

    def start_append(self, c: Any) -> None:
        """Ask for the size and the frontier (read by `append` on the same cursor), so that the question rides
        in the pipeline with the events' other reads."""
        c.execute(self.select_frontier_statement, prepare=False)

    def append(self, c: Any, chained: Sequence[bytes]) -> tuple[int, list[Node]]:
        """The first new leaf's index, and the nodes to insert (with `insert`), for events with these chained
        hashes in storage order; `c` is the cursor `start_append` asked on."""
        rows = c.fetchall()
        size = int(rows[0]["size"]) if rows else 0
        found = {(int(r["level"]), (size >> int(r["level"])) - 1): bytes(r["hash"]) for r in rows if r["hash"]}
        return size, new_nodes(size, _frontier(size, found), chained)

    def insert(self, c: Any, made: Sequence[Node]) -> None:
        """Insert the nodes `append` made."""
        c.execute(self.insert_statement, ([n.level for n in made], [n.index for n in made], [n.hash for n in made]),
                  prepare=False)  # fmt: skip

    def size(self, c: Any) -> int:
        """The number of leaves in the log."""
        c.execute(self.select_size_statement)
        last = c.fetchone()["last"]
        return 0 if last is None else int(last) + 1

    def nodes(self, c: Any, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hash of each key (absent keys left out)."""
        wanted = list(set(keys))
        c.execute(self.select_nodes_statement, ([k[0] for k in wanted], [k[1] for k in wanted]))
        return {(int(r["level"]), int(r["idx"])): bytes(r["hash"]) for r in c.fetchall()}


class Backfill:
    """The log of a store whose events were stored before it existed, built page by page in storage order: each
    event's leaf is its stored chained hash (recomputed where a store older still kept none)."""

    def __init__(self) -> None:
        self.size = 0
        self._frontier: dict[NodeKey, bytes] = {}
        self._last: dict[UUID, bytes] = {}

    def page(self, rows: Sequence[tuple[StoredEvent, bytes | None]]) -> tuple[list[tuple[UUID, int, bytes, int]],
                                                                              list[Node]]:  # fmt: skip
        """For the next events in storage order with their stored hashes (None if none): each one's (grievance,
        version, chained hash, leaf index), and the nodes they complete."""
        hashed: list[tuple[UUID, int, bytes, int]] = []
        for event, stored in rows:
            oid = originator_uuid(event)
            previous = self._last.get(oid, GENESIS) if event.originator_version > 1 else GENESIS
            chained = stored if stored is not None else link(previous, event)
            self._last[oid] = chained
            hashed.append((oid, event.originator_version, chained, self.size + len(hashed)))
        made = new_nodes(self.size, [self._frontier[k] for k in frontier_keys(self.size)], [h for _, _, h, _ in hashed])
        self.size += len(hashed)
        known = {**self._frontier, **{(n.level, n.index): n.hash for n in made}}
        self._frontier = {k: known[k] for k in frontier_keys(self.size)}
        return hashed, made
