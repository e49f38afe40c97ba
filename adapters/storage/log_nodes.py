"""The Merkle log's stored nodes, in SQLite and PostgreSQL: appended in the transaction that stores their events.

`log_tiles (level, idx, hashes)` holds the log in tiles (adapters.storage.merkle_log): tile (t, k) is the
concatenated hashes of up to 256 nodes of level 8t (leaves in tiles of level 0), a full one followed by the rows
of nodes above them. Full tiles never change; the right-edge tile of each level is rewritten as it grows, so a
batch of events writes a row per 256 leaves and a few edge tiles, not a row per node. The log's size is read off
its last leaf tile. Each event's leaf index sits next to its chained hash in `event_hashes`, so a grievance's
proofs are found from its id.

Stores made while the log was a row per node (`log_nodes (level, idx, hash)`) have their leaves moved into
tiles when opened (`Migration`); stores made before the log have it built from their events (`Backfill`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Composed, Identifier

from adapters.storage.hash_chain import GENESIS, link, originator_uuid
from adapters.storage.merkle_log import (
    HASH_SIZE,
    TILE_HEIGHT,
    NodeKey,
    TileCut,
    TileKey,
    appended_tiles,
    edge_tiles,
    full_tile_size,
    leaf_hashes,
    nodes_in_tiles,
    tile_of,
    tile_width,
)
from engine.errors import InfrastructureError

TILES_TABLE = "log_tiles"
# The layout before tiles: a row per complete subtree. Read only to move its leaves into tiles.
NODES_TABLE = "log_nodes"
# The most tile levels a log of 2^63 leaves has.
TILE_LEVELS = -(-63 // TILE_HEIGHT)
SQLITE_KEYS_PER_QUERY = 400


class LogDamaged(InfrastructureError):
    """The stored log lacks a tile an append or a proof needs: rows were deleted behind the engine's back."""


def wiped(hashes_table: str) -> LogDamaged:
    """The refusal to open a store whose events were appended to its log (`hashes_table` holds their leaf
    indexes) but whose log is gone: rebuilding it from the events as they stand would hide any rewrite of them."""
    return LogDamaged(
        f"log: the store's events were appended to its Merkle log ({hashes_table} holds their leaf indexes) but "
        f"{TILES_TABLE} is empty (and no {NODES_TABLE} is left to move into it): it was wiped behind the engine's "
        f"back, and is not rebuilt from the events as they stand now, which would hide any rewrite of them. Restore "
        f"{TILES_TABLE} from a backup and run grievance verify --all --checkpoint against a checkpoint kept "
        f"elsewhere; to rebuild it from the events on purpose, clear the leaf indexes first (UPDATE {hashes_table} "
        "SET leaf_index = NULL) and verify against a checkpoint after"
    )


def _damaged(cut: TileCut) -> LogDamaged:
    return LogDamaged(
        f"log: tile {cut.key} of the Merkle log is missing or cut short ({cut}), so no event can be stored: restore "
        f"{TILES_TABLE} from a backup, or empty it and clear the events' leaf indexes to rebuild it from the events "
        "at the next start (then verify --checkpoint)"
    )


def _size(last: tuple[int, bytes] | None) -> int:
    """The log's size from its last leaf tile (index, hashes)."""
    return 0 if last is None else (last[0] << TILE_HEIGHT) + tile_width(last[1])


def new_tiles(size: int, edge: Mapping[TileKey, bytes], chained: Iterable[bytes]) -> dict[TileKey, bytes]:
    """The tiles appending events with these chained hashes (in storage order) to a log of `size` writes."""
    try:
        return appended_tiles(size, edge, leaf_hashes(chained))
    except TileCut as e:
        raise _damaged(e) from None


class SQLiteLogNodes:
    """The log's tiles in a SQLite store, read and appended on the caller's cursor."""

    # A rowid table: tiles are 8 KiB, which SQLite keeps better in overflow pages of a rowid table than in a
    # WITHOUT ROWID one's index.
    create_statement = (
        f"CREATE TABLE IF NOT EXISTS {TILES_TABLE} (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
        "hashes BLOB NOT NULL, PRIMARY KEY (level, idx))"
    )
    upsert_statement = (
        f"INSERT INTO {TILES_TABLE} VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes"
    )

    @staticmethod
    def size(c: Any) -> int:
        """The number of leaves in the log."""
        c.execute(f"SELECT idx, hashes FROM {TILES_TABLE} WHERE level = 0 ORDER BY idx DESC LIMIT 1")
        row = c.fetchone()
        return _size(None if row is None else (row[0], row[1]))

    @staticmethod
    def tiles(c: Any, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
        """The stored tiles of these keys (absent ones left out)."""
        wanted = list(set(keys))
        found: dict[TileKey, bytes] = {}
        for i in range(0, len(wanted), SQLITE_KEYS_PER_QUERY):
            chunk = wanted[i : i + SQLITE_KEYS_PER_QUERY]
            c.execute(f"WITH k(level, idx) AS (VALUES {','.join(['(?, ?)'] * len(chunk))}) SELECT t.level, t.idx, "
                      f"t.hashes FROM k JOIN {TILES_TABLE} t ON t.level = k.level AND t.idx = k.idx",
                      [x for key in chunk for x in key])  # fmt: skip
            found.update(((row[0], row[1]), bytes(row[2])) for row in c.fetchall())
        return found

    def nodes(self, c: Any, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hash of each key (absent keys left out)."""
        wanted = set(keys)
        return nodes_in_tiles(wanted, self.tiles(c, {tile_of(k)[0] for k in wanted}))

    def append(self, c: Any, chained: Sequence[bytes]) -> int:
        """Append leaves for events with these chained hashes, in storage order; the first one's leaf index.
        The caller's transaction holds the database's write lock, so no other append interleaves."""
        size = self.size(c)
        written = new_tiles(size, self.tiles(c, [k for k, _ in edge_tiles(size)]), chained)
        self.write(c, written)
        return size

    def write(self, c: Any, tiles: Mapping[TileKey, bytes]) -> None:
        """Store tiles whole, over the edge tiles they extend."""
        c.executemany(self.upsert_statement, [(t, k, h) for (t, k), h in tiles.items()])


class PostgresLogNodes:
    """The log's tiles in a PostgreSQL schema. Appends run inside the events' transaction, after its lock on
    the events table (the library's, which serialises writers), so leaf indexes are gapless and in the order
    the events are stored."""

    def __init__(self, schema: str) -> None:
        s, tiles = Identifier(schema), Identifier(TILES_TABLE)
        self.create_statement: Composed = SQL(
            "CREATE TABLE IF NOT EXISTS {s}.{tiles} (level smallint NOT NULL, idx bigint NOT NULL, "
            "hashes bytea NOT NULL, PRIMARY KEY (level, idx))"
        ).format(s=s, tiles=tiles)
        # The size and the edge tiles in one round trip: for each tile level t, tile (t, (size >> 8t) >> 8) when
        # it holds any hash, that is when (size >> 8t) & 255 is not 0.
        self.select_edge_statement = SQL(
            "WITH s AS (SELECT (idx << {height}) + CASE length(hashes) WHEN {full} THEN {width} "
            "ELSE length(hashes) / {hash_size} END AS size FROM {s}.{tiles} WHERE level = 0 ORDER BY idx DESC LIMIT 1) "
            "SELECT s.size, b.level, t.hashes FROM s CROSS JOIN generate_series(0, {levels}) AS b(level) "
            "LEFT JOIN {s}.{tiles} t ON t.level = b.level AND t.idx = s.size >> ({height} * (b.level + 1)) "
            "WHERE (s.size >> ({height} * b.level)) & {mask} <> 0"
        ).format(s=s, tiles=tiles, height=TILE_HEIGHT, hash_size=HASH_SIZE, levels=TILE_LEVELS - 1,
                 full=full_tile_size(), width=1 << TILE_HEIGHT,
                 mask=(1 << TILE_HEIGHT) - 1)  # fmt: skip
        self.upsert_statement = SQL(
            "INSERT INTO {s}.{tiles} SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[]) "
            "ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes"
        ).format(s=s, tiles=tiles)
        self.select_last_statement = SQL(
            "SELECT idx, hashes FROM {s}.{tiles} WHERE level = 0 ORDER BY idx DESC LIMIT 1"
        ).format(s=s, tiles=tiles)
        # A lateral subquery, an index lookup per key whatever the plan: as a join, a prepared statement's generic
        # plan may hash the keys and scan every tile (OFFSET 0 keeps the planner from folding it back into one).
        self.select_tiles_statement = SQL(
            "SELECT t.level, t.idx, t.hashes FROM unnest(%b::smallint[], %b::bigint[]) AS k(level, idx) "
            "CROSS JOIN LATERAL (SELECT * FROM {s}.{tiles} t WHERE t.level = k.level AND t.idx = k.idx OFFSET 0) t"
        ).format(s=s, tiles=tiles)

    def start_append(self, c: Any) -> None:
        """Ask for the size and the edge tiles (read by `append` on the same cursor), so that the question rides
        in the pipeline with the events' other reads."""
        c.execute(self.select_edge_statement, prepare=False)

    def append(self, c: Any, chained: Sequence[bytes]) -> tuple[int, dict[TileKey, bytes]]:
        """The first new leaf's index, and the tiles to write (with `write`), for events with these chained
        hashes in storage order; `c` is the cursor `start_append` asked on."""
        rows = c.fetchall()
        size = int(rows[0]["size"]) if rows else 0
        edge = {
            (int(r["level"]), size >> (TILE_HEIGHT * (int(r["level"]) + 1))): bytes(r["hashes"])
            for r in rows
            if r["hashes"] is not None
        }
        return size, new_tiles(size, edge, chained)

    def write(self, c: Any, tiles: Mapping[TileKey, bytes]) -> None:
        """Store tiles whole, over the edge tiles they extend."""
        keys = list(tiles)
        c.execute(self.upsert_statement, ([t for t, _ in keys], [k for _, k in keys], [tiles[k] for k in keys]),
                  prepare=False)  # fmt: skip

    def size(self, c: Any) -> int:
        """The number of leaves in the log."""
        c.execute(self.select_last_statement)
        row = c.fetchone()
        return _size(None if row is None else (int(row["idx"]), bytes(row["hashes"])))

    def tiles(self, c: Any, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
        """The stored tiles of these keys (absent ones left out)."""
        wanted = list(set(keys))
        c.execute(self.select_tiles_statement, ([k[0] for k in wanted], [k[1] for k in wanted]))
        return {(int(r["level"]), int(r["idx"])): bytes(r["hashes"]) for r in c.fetchall()}

    def nodes(self, c: Any, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hash of each key (absent keys left out)."""
        wanted = set(keys)
        return nodes_in_tiles(wanted, self.tiles(c, {tile_of(k)[0] for k in wanted}))


class GrowingLog:
    """A log written page by page (when a store is opened): its size and edge tiles, all the next page joins."""

    def __init__(self) -> None:
        self.size = 0
        self._edge: dict[TileKey, bytes] = {}

    def append(self, leaves: bytes) -> dict[TileKey, bytes]:
        """Append leaf hashes (concatenated); the tiles to write."""
        written = appended_tiles(self.size, self._edge, leaves)
        self.size += len(leaves) // HASH_SIZE
        self._edge = {k: written.get(k) or self._edge[k] for k, _ in edge_tiles(self.size)}
        return written


class Backfill:
    """The log of a store whose events were stored before it existed, built page by page in storage order: each
    event's leaf is its stored chained hash (recomputed where a store older still kept none)."""

    def __init__(self) -> None:
        self._log = GrowingLog()
        self._last: dict[UUID, bytes] = {}

    def page(self, rows: Sequence[tuple[StoredEvent, bytes | None]]) -> tuple[list[tuple[UUID, int, bytes, int]],
                                                                              dict[TileKey, bytes]]:  # fmt: skip
        """For the next events in storage order with their stored hashes (None if none): each one's (grievance,
        version, chained hash, leaf index), and the tiles they write."""
        hashed: list[tuple[UUID, int, bytes, int]] = []
        first = self._log.size
        for event, stored in rows:
            oid = originator_uuid(event)
            previous = self._last.get(oid, GENESIS) if event.originator_version > 1 else GENESIS
            chained = stored if stored is not None else link(previous, event)
            self._last[oid] = chained
            hashed.append((oid, event.originator_version, chained, first + len(hashed)))
        return hashed, self._log.append(leaf_hashes(h for _, _, h, _ in hashed))


class Migration:
    """The leaves of a log stored a row per node (`log_nodes`, before tiles), moved into tiles page by page in
    leaf order: the tiles hold exactly the leaves that log recorded, so checkpoints signed before still verify."""

    def __init__(self) -> None:
        self._log = GrowingLog()

    @property
    def size(self) -> int:
        """Leaves moved so far."""
        return self._log.size

    def page(self, leaves: Sequence[tuple[int, bytes]]) -> dict[TileKey, bytes]:
        """The tiles written by the next leaves (index, leaf hash), which must follow those moved before."""
        for expected, (index, _) in enumerate(leaves, start=self.size):
            if index != expected:
                msg = (
                    f"log: leaf {expected} of the Merkle log is missing from {NODES_TABLE}, so its leaves cannot be "
                    f"moved into {TILES_TABLE}: restore {NODES_TABLE} from a backup, or drop it to rebuild the log "
                    "from the events at the next start (then verify --checkpoint)"
                )
                raise LogDamaged(msg)
        return self._log.append(b"".join(h for _, h in leaves))
