"""The library's SQLite and PostgreSQL stores, with an explicit durability setting and batch reads.

The library reads one aggregate a query; a batch of commands touches hundreds of grievances, so the
recorders here add `select_events_after` (and `select_events_of`), which read the events of many grievances in one
query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from adapters.storage.hash_chain import chain, originator_uuid
from adapters.storage.log_nodes import (
    NODES_TABLE,
    TILES_TABLE,
    Backfill,
    Migration,
    PostgresLogNodes,
    SQLiteLogNodes,
    wiped,
)
from adapters.storage.merkle_log import NodeKey
from adapters.storage.snapshots import PostgresSnapshots, SQLiteSnapshots
from engine.errors import ConfigurationError

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL", "OFF")


# SQLite's default limit on bound parameters is 32,766; stay well below it.
SQLITE_IDS_PER_QUERY = 500
# Grievance ids parsed lately, for reads of the log: about 5 MiB.
PARSED_IDS = 20_000
HASHES_TABLE = "event_hashes"
# Events a page when a store made before the Merkle log gets its leaves.
BACKFILL_PAGE = 2000
# An id's last byte as SQLite keeps ids (32 hex digits), in SQL: what `part_of` reads in Python.
_SQLITE_LAST_BYTE = (
    "((instr('0123456789abcdef', substr(originator_id, -2, 1)) - 1) * 16 "
    "+ instr('0123456789abcdef', substr(originator_id, -1, 1)) - 1)"
)


def part_of(originator_id: UUID, parts: int) -> int:
    """Which of `parts` parts of the log an aggregate's events are in (`select_notifications_of_part`): its id's
    last byte, modulo `parts`, so that every aggregate is wholly in one part and the parts are about even."""
    return (originator_id.int & 0xFF) % parts


def _continued(stored_events: Sequence[StoredEvent]) -> list[tuple[UUID, int]]:
    """(grievance, first new version) of each grievance whose new events follow stored ones."""
    first: dict[UUID, int] = {}
    for e in stored_events:
        oid = originator_uuid(e)
        first.setdefault(oid, e.originator_version)
    return [(oid, v) for oid, v in first.items() if v > 1]


def _committed(kwargs: dict[str, Any]) -> None:
    """A batch is committed: the keys made for it (if any) may be used from now on."""
    if (sealed_by := kwargs.get("sealed_by")) is not None:
        sealed_by.stored()


def _stored_event(row: Any) -> StoredEvent:
    """A PostgreSQL row of the events table as the library's StoredEvent."""
    return StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"] or b""),  # NULL, set behind the engine's back: unreadable, so a broken link
    )


class BatchReadingSQLiteRecorder(SQLiteProcessRecorder):
    """SQLite process recorder (events, and upstream positions in the same transaction) that can read many
    aggregates' events in one query, and writes each event's chained hash in the same transaction."""

    # Residents' keys made for a batch (adapters.storage.resident_keys.BatchKeys, passed as `sealed_by`) are
    # written in the batch's own transaction.
    stores_keys_with_events = True

    def __init__(self, datastore: SQLiteDatastore, *, events_table_name: str = "stored_events") -> None:
        self.log = SQLiteLogNodes()
        super().__init__(datastore, events_table_name=events_table_name)
        self._parsed_ids: dict[str, UUID | str] = {}

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        returning = super().insert_events(stored_events, **kwargs)
        _committed(kwargs)
        return returning

    def convert_originator_id(self, originator_id: str) -> UUID | str:
        # SQLite keeps ids as text, and parsing one into a UUID was a sixth of a rebuild. A grievance's id
        # comes back once for each of its events, mostly close together in the log: parse it once while
        # it is recent. (Emptied whole when full: cheaper than ordering entries, and refills at once.)
        found = self._parsed_ids.get(originator_id)
        if found is None:
            if len(self._parsed_ids) >= PARSED_IDS:
                self._parsed_ids.clear()
            found = self._parsed_ids[originator_id] = super().convert_originator_id(originator_id)
        return found

    def select_notifications_of_part(
        self, start: int, limit: int, *, stop: int, part: int, parts: int
    ) -> Sequence[Notification]:
        """The page of the log from `start` up to `stop` of the aggregates in one of `parts` parts (`part_of`): what
        one of several processes rebuilding the views side by side projects."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                f"WHERE rowid >= ? AND rowid <= ? AND {_SQLITE_LAST_BYTE} % ? = ? ORDER BY rowid LIMIT ?",
                (start, stop, parts, part, limit),
            )
            return [
                Notification(id=i, originator_id=self.convert_originator_id(oid), originator_version=v, topic=topic,
                             state=state)
                for i, oid, v, topic, state in c.fetchall()
            ]  # fmt: skip

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} (originator_id TEXT, originator_version INTEGER, "
            "hash BLOB NOT NULL, leaf_index INTEGER, PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
            self.log.create_statement,
        ]

    def _create_table(self, c: Any) -> None:
        super()._create_table(c)
        # A store made before the Merkle log: its hashes' table gains the leaf index.
        c.execute(f"SELECT name FROM pragma_table_info('{HASHES_TABLE}')")
        if "leaf_index" not in {row[0] for row in c.fetchall()}:
            c.execute(f"ALTER TABLE {HASHES_TABLE} ADD COLUMN leaf_index INTEGER")
        c.execute(f"SELECT EXISTS (SELECT 1 FROM {TILES_TABLE}), EXISTS (SELECT 1 FROM {self.events_table_name}), "
                  f"EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{NODES_TABLE}')")  # fmt: skip
        has_log, has_events, has_nodes = c.fetchone()
        if not has_log and has_nodes:
            c.execute(f"SELECT EXISTS (SELECT 1 FROM {NODES_TABLE})")
            if c.fetchone()[0]:
                self._move_log_into_tiles(c)
                has_log = True
        if has_events and not has_log:
            # Leaf indexes recorded mean the events had a log: a store made before the log has none.
            c.execute(f"SELECT EXISTS (SELECT 1 FROM {HASHES_TABLE} WHERE leaf_index IS NOT NULL)")
            if c.fetchone()[0]:
                raise wiped(HASHES_TABLE)
            self._backfill_log(c)
        if has_nodes:
            c.execute(f"DROP TABLE {NODES_TABLE}")

    def _move_log_into_tiles(self, c: Any) -> None:
        # A store whose log was a row per node: its leaves, as that log recorded them, become tiles.
        migration = Migration()
        while True:
            c.execute(f"SELECT idx, hash FROM {NODES_TABLE} WHERE level = 0 AND idx >= ? ORDER BY idx LIMIT ?",
                      (migration.size, BACKFILL_PAGE))  # fmt: skip
            rows = c.fetchall()
            if not rows:
                return
            self.log.write(c, migration.page([(row[0], bytes(row[1])) for row in rows]))

    def _backfill_log(self, c: Any) -> None:
        # Events stored before the log existed become its first leaves, in the order stored, in this transaction.
        backfill, after = Backfill(), 0
        while True:
            c.execute(f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, h.hash FROM "
                      f"{self.events_table_name} e LEFT JOIN {HASHES_TABLE} h ON h.originator_id = e.originator_id "
                      "AND h.originator_version = e.originator_version WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
                      (after, BACKFILL_PAGE))  # fmt: skip
            rows = c.fetchall()
            if not rows:
                return
            after = rows[-1][0]
            hashed, made = backfill.page([(self._stored_event(r), None if r["hash"] is None else bytes(r["hash"]))
                                          for r in rows])  # fmt: skip
            c.executemany(
                f"INSERT INTO {HASHES_TABLE} (originator_id, originator_version, hash, leaf_index) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (originator_id, originator_version) DO UPDATE SET leaf_index = excluded.leaf_index",
                [(oid.hex, v, h, i) for oid, v, h, i in hashed],
            )
            self.log.write(c, made)

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # The library inserts a row at a time, to read each one's rowid (its notification id); one executemany
        # does the batch, and the ids follow from the last one: the transaction holds the database's write lock,
        # so SQLite gives the rows consecutive rowids, each one more than the largest before it.
        c.executemany(self.insert_events_statement, [
            (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id, s.originator_version,
             s.topic, s.state) for s in stored_events
        ])  # fmt: skip
        returning: list[int] = []
        if stored_events:
            c.execute("SELECT last_insert_rowid()")
            last = c.fetchone()[0]
            returning = list(range(last - len(stored_events) + 1, last + 1))
        if (tracking := kwargs.get("tracking")) is not None:
            self._insert_tracking(c, tracking)
        if (sealed_by := kwargs.get("sealed_by")) is not None:
            sealed_by.store(c)
        if stored_events:
            starts = _continued(stored_events)
            previous: dict[UUID, bytes] = {}
            for i in range(0, len(starts), SQLITE_IDS_PER_QUERY):
                chunk = starts[i : i + SQLITE_IDS_PER_QUERY]
                clauses = " OR ".join(["(originator_id = ? AND originator_version = ?)"] * len(chunk))
                c.execute(f"SELECT originator_id, hash FROM {HASHES_TABLE} WHERE {clauses}",
                          [x for oid, v in chunk for x in (oid.hex, v - 1)])  # fmt: skip
                previous.update((UUID(row["originator_id"]), bytes(row["hash"])) for row in c.fetchall())
            rows = chain(stored_events, previous)
            # Leaves in the order of the rows' rowids, which are the events' notification ids.
            first = self.log.append(c, [h for _, _, h in rows])
            c.executemany(
                f"INSERT INTO {HASHES_TABLE} (originator_id, originator_version, hash, leaf_index) VALUES (?, ?, ?, ?)",
                [(oid.hex, v, h, first + i) for i, (oid, v, h) in enumerate(rows)],
            )
        return returning

    def log_size(self) -> int:
        """The number of leaves in the Merkle log."""
        with self.datastore.transaction(commit=False) as c:
            return self.log.size(c)

    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Stored complete subtrees of the Merkle log (a merkle_log.NodeSource)."""
        with self.datastore.transaction(commit=False) as c:
            return self.log.nodes(c, keys)

    def select_leaves_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, int]]:
        """The Merkle log's leaf index of each stored hash of the given grievances, by version."""
        found: dict[UUID, dict[int, int]] = {oid: {} for oid in originator_ids}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(originator_ids), SQLITE_IDS_PER_QUERY):
                chunk = [oid.hex for oid in originator_ids[i : i + SQLITE_IDS_PER_QUERY]]
                c.execute(f"SELECT originator_id, originator_version, leaf_index FROM {HASHES_TABLE} WHERE leaf_index "
                          f"IS NOT NULL AND originator_id IN ({','.join('?' * len(chunk))})", chunk)  # fmt: skip
                for row in c.fetchall():
                    found[UUID(row[0])][row[1]] = row[2]
        return found

    def select_leaf_owner(self, leaf_index: int) -> tuple[UUID, int] | None:
        """The grievance and version whose hash was appended as this leaf, if its row remains (a scan: for
        naming what a failed check found, not for routine reads)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version FROM {HASHES_TABLE} WHERE leaf_index = ?",
                      (leaf_index,))  # fmt: skip
            row = c.fetchone()
            return None if row is None else (UUID(row[0]), row[1])

    def select_hashes_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, bytes]]:
        """The stored hashes of the given grievances, by version."""
        found: dict[UUID, dict[int, bytes]] = {oid: {} for oid in originator_ids}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(originator_ids), SQLITE_IDS_PER_QUERY):
                chunk = [oid.hex for oid in originator_ids[i : i + SQLITE_IDS_PER_QUERY]]
                c.execute(f"SELECT * FROM {HASHES_TABLE} WHERE originator_id IN ({','.join('?' * len(chunk))})", chunk)
                for row in c.fetchall():
                    found[UUID(row["originator_id"])][row["originator_version"]] = bytes(row["hash"])
        return found

    def select_originator_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        """Ids of grievances with stored events or hashes, in order, after `after`."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM (SELECT originator_id FROM {self.events_table_name} UNION "
                f"SELECT originator_id FROM {HASHES_TABLE}) WHERE originator_id > ? ORDER BY originator_id LIMIT ?",
                (after.hex if after else "", limit),
            )
            return [UUID(row["originator_id"]) for row in c.fetchall()]

    def _stored_event(self, row: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=self.convert_originator_id(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )

    def select_events_after(self, after: Mapping[UUID, int]) -> list[StoredEvent]:
        """The stored events of each aggregate in `after` with versions above the one it names, ordered by
        aggregate and version: one walk of the primary key per aggregate."""
        events: list[StoredEvent] = []
        pairs = list(after.items())
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(pairs), SQLITE_IDS_PER_QUERY):
                chunk = pairs[i : i + SQLITE_IDS_PER_QUERY]
                c.execute(
                    f"WITH a(id, v) AS (VALUES {','.join(['(?, ?)'] * len(chunk))}) SELECT e.* FROM a CROSS JOIN "
                    f"{self.events_table_name} e ON e.originator_id = a.id AND e.originator_version > a.v "
                    "ORDER BY e.originator_id, e.originator_version",
                    [x for oid, v in chunk for x in (oid.hex, v)],
                )
                events.extend(map(self._stored_event, c.fetchall()))
        return events

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of the given aggregates, ordered by aggregate and version."""
        events: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(originator_ids), SQLITE_IDS_PER_QUERY):
                chunk = [oid.hex for oid in originator_ids[i : i + SQLITE_IDS_PER_QUERY]]
                c.execute(
                    f"SELECT * FROM {self.events_table_name} WHERE originator_id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version",
                    chunk,
                )
                events.extend(map(self._stored_event, c.fetchall()))
        return events


class BatchReadingPostgresRecorder(PostgresProcessRecorder):
    """PostgreSQL process recorder (events, and upstream positions in the same transaction) that can read
    many aggregates' events in one query."""

    stores_keys_with_events = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Columns as four arrays rather than one array of a composite type: psycopg escapes composites in
        # Python, a fifth of a batch's time; plain arrays it sends in C.
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )
        self.select_events_of_statement = SQL(
            "SELECT * FROM {schema}.{table} WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        # Each aggregate's events in a lateral subquery, an index walk per id whatever the plan: as a join, the
        # prepared statement's generic plan (PostgreSQL's after five runs) hashed the ids and scanned the whole
        # table, so that a single command's read grew with the store (15 ms at 90,000 events). OFFSET 0 keeps
        # the planner from folding the subquery back into that join.
        self.select_events_after_statement = SQL(
            "SELECT e.* FROM unnest(%b::uuid[], %b::bigint[]) AS a(id, v) CROSS JOIN LATERAL (SELECT * FROM "
            "{schema}.{table} e WHERE e.originator_id = a.id AND e.originator_version > a.v OFFSET 0) e "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        schema, hashes = Identifier(self.datastore.schema), Identifier(HASHES_TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{hashes} (originator_id {id_type} NOT NULL, originator_version "
                "bigint NOT NULL, hash bytea NOT NULL, leaf_index bigint, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(schema=schema, hashes=hashes, id_type=Identifier(self.datastore.originator_id_type))
        )
        # A store made before the Merkle log: its hashes' table gains the leaf index.
        self.sql_create_statements.append(
            SQL("ALTER TABLE {schema}.{hashes} ADD COLUMN IF NOT EXISTS leaf_index bigint").format(
                schema=schema, hashes=hashes
            )
        )
        self.log = PostgresLogNodes(self.datastore.schema)
        self.sql_create_statements.append(self.log.create_statement)
        self.select_previous_hashes_statement = SQL(
            "SELECT h.originator_id, h.hash FROM {schema}.{hashes} h JOIN unnest(%b::uuid[], %b::bigint[]) AS p(id, v) "
            "ON h.originator_id = p.id AND h.originator_version = p.v"
        ).format(schema=schema, hashes=hashes)
        self.insert_hashes_statement = SQL(
            "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash, leaf_index) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::bytea[], %b::bigint[])"
        ).format(schema=schema, hashes=hashes)
        self.select_leaves_of_statement = SQL(
            "SELECT originator_id, originator_version, leaf_index FROM {schema}.{hashes} "
            "WHERE originator_id = ANY(%s) AND leaf_index IS NOT NULL"
        ).format(schema=schema, hashes=hashes)
        table = Identifier(self.events_table_name)
        self.select_log_and_events_statement = SQL(
            "SELECT EXISTS (SELECT 1 FROM {schema}.{tiles}) AS has_log, EXISTS (SELECT 1 FROM {schema}.{table}) "
            "AS has_events, to_regclass(%s) IS NOT NULL AS has_nodes"
        ).format(schema=schema, tiles=Identifier(TILES_TABLE), table=table)
        self.select_any_leaf_index_statement = SQL(
            "SELECT EXISTS (SELECT 1 FROM {schema}.{hashes} WHERE leaf_index IS NOT NULL) AS any"
        ).format(schema=schema, hashes=hashes)
        nodes = Identifier(NODES_TABLE)
        self.old_nodes_name = f'"{self.datastore.schema}"."{NODES_TABLE}"'
        self.select_any_old_node_statement = SQL("SELECT EXISTS (SELECT 1 FROM {schema}.{nodes}) AS any").format(
            schema=schema, nodes=nodes
        )
        self.select_old_leaves_statement = SQL(
            "SELECT idx, hash FROM {schema}.{nodes} WHERE level = 0 AND idx >= %s ORDER BY idx LIMIT %s"
        ).format(schema=schema, nodes=nodes)
        self.drop_old_nodes_statement = SQL("DROP TABLE {schema}.{nodes}").format(schema=schema, nodes=nodes)
        self.select_backfill_page_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, h.hash FROM "
            "{schema}.{table} e LEFT JOIN {schema}.{hashes} h ON h.originator_id = e.originator_id AND "
            "h.originator_version = e.originator_version WHERE e.notification_id > %s "
            "ORDER BY e.notification_id LIMIT %s"
        ).format(schema=schema, table=table, hashes=hashes)
        self.upsert_leaf_indexes_statement = SQL(
            "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash, leaf_index) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::bytea[], %b::bigint[]) "
            "ON CONFLICT (originator_id, originator_version) DO UPDATE SET leaf_index = excluded.leaf_index"
        ).format(schema=schema, hashes=hashes)
        self.select_leaf_owner_statement = SQL(
            "SELECT originator_id, originator_version FROM {schema}.{hashes} WHERE leaf_index = %s"
        ).format(schema=schema, hashes=hashes)
        self.select_hashes_of_statement = SQL("SELECT * FROM {schema}.{hashes} WHERE originator_id = ANY(%s)").format(
            schema=schema, hashes=hashes
        )
        self.select_originator_ids_statement = SQL(
            "SELECT originator_id FROM (SELECT originator_id FROM {schema}.{table} UNION "
            "SELECT originator_id FROM {schema}.{hashes}) ids WHERE originator_id > %s ORDER BY originator_id LIMIT %s"
        ).format(schema=schema, hashes=hashes, table=Identifier(self.events_table_name))

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.select_log_and_events_statement, (self.old_nodes_name,))
            row = curs.fetchone()
            if row is not None and ((row["has_events"] and not row["has_log"]) or row["has_nodes"]):
                # Events stored before the log existed become its first leaves, in the order stored, and a log
                # stored a row per node moves into tiles, under the lock writers take: a second process starting
                # at once finds the log built.
                self._lock_table(curs)
                curs.execute(self.select_log_and_events_statement, (self.old_nodes_name,))
                again = curs.fetchone()
                if again is None:
                    return
                has_log = again["has_log"]
                if not has_log and again["has_nodes"]:
                    curs.execute(self.select_any_old_node_statement)
                    if (found := curs.fetchone()) is not None and found["any"]:
                        self._move_log_into_tiles(curs)
                        has_log = True
                if again["has_events"] and not has_log:
                    # Leaf indexes recorded mean the events had a log: a store made before the log has none.
                    curs.execute(self.select_any_leaf_index_statement)
                    if (found := curs.fetchone()) is not None and found["any"]:
                        raise wiped(HASHES_TABLE)
                    self._backfill_log(curs)
                if again["has_nodes"]:
                    curs.execute(self.drop_old_nodes_statement)

    def _move_log_into_tiles(self, curs: Any) -> None:
        # A store whose log was a row per node: its leaves, as that log recorded them, become tiles.
        migration = Migration()
        while True:
            curs.execute(self.select_old_leaves_statement, (migration.size, BACKFILL_PAGE))
            rows = curs.fetchall()
            if not rows:
                return
            self.log.write(curs, migration.page([(int(r["idx"]), bytes(r["hash"])) for r in rows]))

    def _backfill_log(self, curs: Any) -> None:
        backfill, after = Backfill(), 0
        while True:
            curs.execute(self.select_backfill_page_statement, (after, BACKFILL_PAGE))
            rows = curs.fetchall()
            if not rows:
                return
            after = rows[-1]["notification_id"]
            hashed, made = backfill.page([(_stored_event(r), None if r["hash"] is None else bytes(r["hash"]))
                                          for r in rows])  # fmt: skip
            columns = list(zip(*hashed, strict=True))
            curs.execute(self.upsert_leaf_indexes_statement, [list(c) for c in columns])
            self.log.write(curs, made)

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # As the library's PostgresApplicationRecorder: lock, notify, insert; only the insert's parameters differ.
        # The events' hashes, chained to the stored ones, and the Merkle log's leaves are made after the same lock,
        # which keeps both serial: leaf indexes follow the order of the insert below, whose rows take their
        # notification ids in that order, so leaf i is the i-th event stored. Everything that can fail in Python
        # (a node of the log missing) fails before anything is written: the library commits whatever was sent
        # when an exception that is not the database's ends this method.
        self._lock_table(curs)
        self._notify_channel(curs)
        starts = _continued(stored_events)
        with curs.connection.cursor() as hashing, curs.connection.cursor() as logging:
            previous: dict[UUID, bytes] = {}
            self.log.start_append(logging)
            if starts:
                # Never prepared: a statement prepared inside a pipeline whose transaction then fails
                # (a concurrent writer's version) is lost on the server but not in psycopg's cache.
                hashing.execute(self.select_previous_hashes_statement,
                                ([oid for oid, _ in starts], [v - 1 for _, v in starts]), prepare=False)  # fmt: skip
                previous = {row["originator_id"]: bytes(row["hash"]) for row in hashing.fetchall()}
            rows = chain(stored_events, previous)
            first, tiles = self.log.append(logging, [h for _, _, h in rows])
            if (sealed_by := kwargs.get("sealed_by")) is not None:
                sealed_by.store(curs)
            curs.execute(
                self.insert_events_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
            )
            # On cursors of their own: the library reads the insert's RETURNING rows from `curs` afterwards.
            hashing.execute(
                self.insert_hashes_statement,
                ([oid for oid, _, _ in rows], [v for _, v, _ in rows], [h for _, _, h in rows],
                 list(range(first, first + len(rows)))),
                prepare=False,
            )  # fmt: skip
            self.log.write(logging, tiles)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        returning: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        _committed(kwargs)
        return returning

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any) -> list[int]:
        # The library reads each returned notification id through a dict made for its row: a tenth of a batch.
        curs.row_factory = tuple_row
        try:
            ids = [row[0] for row in curs.fetchall()]
        except psycopg.ProgrammingError as e:
            raise ProgrammingError(f"could not read the notification ids of {len(stored_events)} events") from e
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's page of the log, read in PostgreSQL's binary format as plain tuples: its dict a row and
        bytea's text form (hex, decoded again) were 40 % of reading a page, which a rebuild does for every event."""
        where: list[SQL] = []
        params: list[Any] = []
        if start is not None:
            where.append(SQL("notification_id >= %s" if inclusive_of_start else "notification_id > %s"))
            params.append(start)
        if stop is not None:
            where.append(SQL("notification_id <= %s"))
            params.append(stop)
        if topics:
            where.append(SQL("topic = ANY(%s)"))
            params.append(list(topics))
        params.append(limit)
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table}{where} "
            "ORDER BY notification_id LIMIT %s"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            where=SQL(" WHERE ") + SQL(" AND ").join(where) if where else SQL(""),
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as curs:
            curs.execute(statement, params, prepare=True)
            return [
                Notification(id=i, originator_id=oid, originator_version=v, topic=topic, state=state or b"")
                for i, oid, v, topic, state in curs.fetchall()
            ]

    def select_notifications_of_part(
        self, start: int, limit: int, *, stop: int, part: int, parts: int
    ) -> Sequence[Notification]:
        """The page of the log from `start` up to `stop` of the aggregates in one of `parts` parts (`part_of`): what
        one of several processes rebuilding the views side by side projects."""
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE notification_id >= %s AND notification_id <= %s AND mod(get_byte(uuid_send(originator_id), 15), %s) "
            "= %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(force_rollback=True),
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            # The planner takes the part's filter to keep 0.5 % of rows, so that the page would not fill before
            # `stop`: on a store without statistics it then read the whole range and sorted it (0.4 s a page of
            # 20,000 at 1M events, not 10 ms). Walking the index in order stops at the page's last row.
            curs.execute("SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)")
            curs.execute(statement, (start, stop, parts, part, limit), prepare=True)
            return [
                Notification(id=i, originator_id=oid, originator_version=v, topic=topic, state=state or b"")
                for i, oid, v, topic, state in curs.fetchall()
            ]

    def select_hashes_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, bytes]]:
        """The stored hashes of the given grievances, by version."""
        found: dict[UUID, dict[int, bytes]] = {oid: {} for oid in originator_ids}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_hashes_of_statement, [list(originator_ids)])
            for row in curs.fetchall():
                found[row["originator_id"]][row["originator_version"]] = bytes(row["hash"])
        return found

    def log_size(self) -> int:
        """The number of leaves in the Merkle log."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self.log.size(curs)

    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Stored complete subtrees of the Merkle log (a merkle_log.NodeSource)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self.log.nodes(curs, keys)

    def select_leaves_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, int]]:
        """The Merkle log's leaf index of each stored hash of the given grievances, by version."""
        found: dict[UUID, dict[int, int]] = {oid: {} for oid in originator_ids}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_leaves_of_statement, [list(originator_ids)])
            for row in curs.fetchall():
                found[row["originator_id"]][row["originator_version"]] = row["leaf_index"]
        return found

    def select_leaf_owner(self, leaf_index: int) -> tuple[UUID, int] | None:
        """The grievance and version whose hash was appended as this leaf, if its row remains (a scan: for
        naming what a failed check found, not for routine reads)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_leaf_owner_statement, (leaf_index,))
            row = curs.fetchone()
            return None if row is None else (row["originator_id"], row["originator_version"])

    def select_originator_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        """Ids of grievances with stored events or hashes, in order, after `after`."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_originator_ids_statement, (after or UUID(int=0), limit))
            return [row["originator_id"] for row in curs.fetchall()]

    def select_events_after(self, after: Mapping[UUID, int]) -> list[StoredEvent]:
        """The stored events of each aggregate in `after` with versions above the one it names, ordered by
        aggregate and version."""
        pairs = list(after.items())
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_after_statement, ([p[0] for p in pairs], [p[1] for p in pairs]),
                         prepare=True)  # fmt: skip
            return [_stored_event(row) for row in curs.fetchall()]

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of the given aggregates, ordered by aggregate and version."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_of_statement, [list(originator_ids)], prepare=True)
            return [_stored_event(row) for row in curs.fetchall()]


class DurableSQLiteFactory(SQLiteFactory):
    """SQLiteFactory whose connections run `PRAGMA synchronous=<SQLITE_SYNCHRONOUS>` (default FULL).

    In the library's WAL mode, FULL fsyncs the log at every commit, so an acknowledged command
    survives a power cut; NORMAL fsyncs only at checkpoints (a power cut can lose the last commits,
    never corrupt the file); OFF leaves flushing to the operating system.
    """

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"
    # A process recorder is an application recorder; mypy objects only to its keyword-only constructor.
    application_recorder_class = BatchReadingSQLiteRecorder  # type: ignore[assignment]
    # The library builds the snapshots' recorder (table `stored_snapshots`) as an aggregate recorder.
    aggregate_recorder_class = SQLiteSnapshots

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        level = (self.env.get(self.SQLITE_SYNCHRONOUS) or "FULL").strip().upper()
        if level not in SYNCHRONOUS_LEVELS:
            msg = f"SQLITE_SYNCHRONOUS {level!r} is not one of {', '.join(SYNCHRONOUS_LEVELS)}"
            raise ConfigurationError(msg)
        self.synchronous = level
        _set_synchronous(self.datastore.pool, level)


def _set_synchronous(pool: SQLiteConnectionPool, level: str) -> None:
    # The pool opens connections lazily, so wrapping its factory method covers every connection.
    create = pool._create_connection

    def create_with_pragma() -> SQLiteConnection:
        connection = create()
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute(f"PRAGMA synchronous={level}")
        # Deleted or overwritten content (a forgotten resident's key) is zeroed in the pages written anyway, not
        # left behind: the build's default is not the engine's to rely on. FAST rather than ON, which also
        # zeroes freed pages at a fifth of a batch's speed with `normal` durability (BENCHMARKS.md).
        raw.execute("PRAGMA secure_delete=FAST")
        return connection

    pool._create_connection = create_with_pragma  # type: ignore[method-assign]


class DurablePostgresFactory(PostgresFactory):
    """PostgresFactory whose sessions run `SET synchronous_commit` from POSTGRES_SYNCHRONOUS_COMMIT.

    `on` (the server's default) returns from a commit only once its WAL is flushed; `off` returns
    earlier and can lose the last commits in a server crash, never leaving them half-written.
    """

    POSTGRES_SYNCHRONOUS_COMMIT = "POSTGRES_SYNCHRONOUS_COMMIT"
    application_recorder_class = BatchReadingPostgresRecorder
    # The library builds the snapshots' recorder (table `grievances_snapshots`) as an aggregate recorder.
    aggregate_recorder_class = PostgresSnapshots

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        setting = (self.env.get(self.POSTGRES_SYNCHRONOUS_COMMIT) or "on").strip().lower()
        if setting not in ("on", "off"):
            msg = f"POSTGRES_SYNCHRONOUS_COMMIT {setting!r} is not on or off"
            raise ConfigurationError(msg)
        pool: Any = self.datastore.pool
        configure = pool._configure

        def configure_with_durability(conn: Any) -> None:
            configure(conn)
            conn.execute(f"SET synchronous_commit = {setting}")

        pool._configure = configure_with_durability
