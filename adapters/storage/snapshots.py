"""Grievances' snapshots beside their events: the library's aggregate recorders for snapshots (one table, made on open
if missing, in the events' database), keeping only each grievance's last one taken, and reading the latest snapshots
of a batch's grievances with the events stored since them in one query.

A snapshot is no event: it is in no hash chain and no Merkle log, and nothing here reads it as history. The engine
checks each one against the event it names (engine/service_chain.py, `_load_many`). That check cannot see a snapshot
whose state was rewritten in the database (a grievance made to read as resolved, or claimed by someone else, that the
engine would then decide on): so, once given a key (`seal_with`, as the composition root does), the recorder stores
each snapshot's state followed by an HMAC-SHA256 of its grievance, version, topic and state under that key, and
reads back only snapshots whose seal holds; one that does not is set aside (reported) and the events replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

# SQLite's default limit on bound parameters is 32,766; stay well below it.
IDS_PER_QUERY = 500
SEAL_BYTES = 32
log = logging.getLogger("grievance.snapshots")


class SnapshotSeal:
    """Seals snapshots' stored states with an HMAC under a server key, and opens only those whose seal holds; the
    key is asked for once, when a snapshot is first stored or read."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key_source = key
        self._key: bytes | None = None

    def _mac(self, s: StoredEvent, state: bytes) -> bytes:
        if self._key is None:
            self._key = hmac.new(self._key_source(), b"grievance-snapshots:v1", hashlib.sha256).digest()
        oid = s.originator_id.bytes if isinstance(s.originator_id, UUID) else str(s.originator_id).encode()
        topic = s.topic.encode()
        message = struct.pack(">H", len(oid)) + oid + struct.pack(">QH", s.originator_version, len(topic)) + topic
        return hmac.new(self._key, message + state, hashlib.sha256).digest()

    def sealed(self, s: StoredEvent) -> bytes:
        """The state to store: the snapshot's own, then its seal."""
        return s.state + self._mac(s, s.state)

    def opened(self, s: StoredEvent) -> StoredEvent:
        """The snapshot as taken; one whose seal does not hold (altered, or taken under another key or none) is
        reported and comes with no state, which the engine sets aside as unreadable and reads the events instead."""
        state, seal = s.state[:-SEAL_BYTES], s.state[-SEAL_BYTES:]
        if len(s.state) <= SEAL_BYTES or not hmac.compare_digest(seal, self._mac(s, state)):
            log.warning("the snapshot of grievance %s at version %d is not sealed by this engine's key",
                        s.originator_id, s.originator_version)  # fmt: skip
            state = b""
        return StoredEvent(originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic,
                           state=state)  # fmt: skip


class SealedSnapshots:
    """What both stores' snapshot recorders share: a seal, once given, on what they store and read."""

    seal: SnapshotSeal | None = None

    def seal_with(self, key: Callable[[], bytes]) -> None:
        """Seal snapshots from now on with a key derived from the server secret `key` returns; snapshots stored
        unsealed, or under another key, are set aside from then on."""
        self.seal = SnapshotSeal(key)

    def _state_to_store(self, s: StoredEvent) -> bytes:
        return self.seal.sealed(s) if self.seal else s.state

    def _opened(self, snapshots: dict[UUID, StoredEvent]) -> dict[UUID, StoredEvent]:
        if self.seal is None:
            return snapshots
        return {oid: self.seal.opened(s) for oid, s in snapshots.items()}


def _whole_below(snapshot: StoredEvent, events_through: int) -> bool:
    """Whether every event up to the snapshot's version is still stored (counted in the same read): a snapshot over
    a history whose earlier events were deleted is set aside, so that the events decide, and refuse, as broken."""
    if events_through == snapshot.originator_version:
        return True
    log.warning("the snapshot of grievance %s at version %d stands over %d stored events of its versions: set aside",
                snapshot.originator_id, snapshot.originator_version, events_through)  # fmt: skip
    return False


def events_table_of(snapshots_table: str) -> str:
    """The events' table beside a snapshots' table: the library's factories name both after the application
    (`grievances_snapshots` and `grievances_events` on PostgreSQL, `stored_snapshots` and `stored_events` on SQLite)."""
    return snapshots_table.removesuffix("snapshots") + "events"


class SQLiteSnapshots(SealedSnapshots, SQLiteAggregateRecorder):
    """SQLite's recorder for snapshots, which keeps each grievance's latest and reads it with the events since."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_snapshots") -> None:
        super().__init__(datastore, events_table_name)
        self.beside = events_table_of(events_table_name)

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Another process may have taken the same one: either will do. The others go: older ones are never read
        # again, and one ahead of this (whose events the store lost) must not stay the latest.
        rows = [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id, s.originator_version,
                 s.topic, self._state_to_store(s)) for s in stored_events]  # fmt: skip
        c.executemany(f"INSERT INTO {self.events_table_name} VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        c.executemany(f"DELETE FROM {self.events_table_name} WHERE originator_id = ? AND originator_version <> ?",
                      [(oid, v) for oid, v, _, _ in rows])  # fmt: skip

    def select_latest_with_events(
        self, after: Mapping[UUID, int], latest_of: Collection[UUID]
    ) -> tuple[dict[UUID, StoredEvent], list[StoredEvent]]:
        """The latest snapshot of each grievance of `latest_of` that has one, and the events of each grievance in
        `after` above the version it names or, for one with a snapshot, from the snapshot's own version on; in one
        read transaction, so both are of the same moment."""
        snapshots: dict[UUID, StoredEvent] = {}
        events: list[StoredEvent] = []
        wanted = list(latest_of)
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(wanted), IDS_PER_QUERY):
                chunk = [oid.hex for oid in wanted[i : i + IDS_PER_QUERY]]
                c.execute(f"SELECT s.*, (SELECT COUNT(*) FROM {self.beside} e WHERE e.originator_id = s.originator_id "
                          "AND e.originator_version <= s.originator_version) AS through "
                          f"FROM {self.events_table_name} s WHERE s.originator_id IN "
                          f"({','.join('?' * len(chunk))}) AND s.originator_version = (SELECT MAX(originator_version) "
                          f"FROM {self.events_table_name} WHERE originator_id = s.originator_id)", chunk)  # fmt: skip
                for row in c.fetchall():
                    snapshot = self._stored(row)
                    if _whole_below(snapshot, row["through"]):
                        snapshots[snapshot.originator_id] = snapshot  # type: ignore[index]
            since = {**after, **{oid: s.originator_version - 1 for oid, s in snapshots.items()}}
            pairs = list(since.items())
            for i in range(0, len(pairs), IDS_PER_QUERY):
                part = pairs[i : i + IDS_PER_QUERY]
                c.execute(
                    f"WITH a(id, v) AS (VALUES {','.join(['(?, ?)'] * len(part))}) SELECT e.* FROM a CROSS JOIN "
                    f"{self.beside} e ON e.originator_id = a.id AND e.originator_version > a.v "
                    "ORDER BY e.originator_id, e.originator_version",
                    [x for oid, v in part for x in (oid.hex, v)],
                )
                events.extend(map(self._stored, c.fetchall()))
        return self._opened(snapshots), events

    def _stored(self, row: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=self.convert_originator_id(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )


class PostgresSnapshots(SealedSnapshots, PostgresAggregateRecorder):
    """PostgreSQL's recorder for snapshots, which keeps each grievance's latest and reads it with the events since in
    one statement: one round trip for a batch's loads."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_snapshots") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        events = Identifier(events_table_of(events_table_name))
        self.insert_latest_statement = SQL(
            "WITH new AS (INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) ON CONFLICT DO NOTHING) "
            "DELETE FROM {schema}.{table} s USING unnest(%b::uuid[], %b::bigint[]) AS n(id, v) "
            "WHERE s.originator_id = n.id AND s.originator_version <> n.v"
        ).format(schema=schema, table=table)
        # `latest` is the latest snapshot of each grievance asked for; each grievance's events are then read from its
        # snapshot's version on (the snapshot's own event, to check it) or after the version given.
        self.select_latest_with_events_statement = SQL(
            "WITH a AS (SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::bool[]) AS a(id, v, latest)), "
            "s AS (SELECT l.*, (SELECT COUNT(*) FROM {schema}.{events} e WHERE e.originator_id = l.originator_id "
            "AND e.originator_version <= l.originator_version) AS through FROM a CROSS JOIN LATERAL (SELECT * FROM "
            "{schema}.{table} WHERE originator_id = a.id ORDER BY originator_version DESC LIMIT 1) l WHERE a.latest) "
            "SELECT true AS snapshot, s.* FROM s UNION ALL "
            "SELECT false, e.originator_id, e.originator_version, e.topic, e.state, 0 FROM a "
            # A snapshot over fewer events than its version is set aside: the grievance's events are read whole.
            "LEFT JOIN s ON s.originator_id = a.id AND s.through = s.originator_version "
            # Each grievance's events in a lateral subquery: an index walk per id whatever the plan. As a join, the
            # prepared statement's generic plan hashed the ids and scanned the whole table, for every command (OFFSET 0
            # keeps the planner from folding the subquery back into that join).
            "CROSS JOIN LATERAL (SELECT * FROM {schema}.{events} e WHERE e.originator_id = a.id "
            "AND e.originator_version > COALESCE(s.originator_version - 1, a.v) OFFSET 0) e "
            "ORDER BY snapshot DESC, originator_id, originator_version"
        ).format(schema=schema, table=table, events=events)

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any) -> None:
        ids = [s.originator_id for s in stored_events]
        versions = [s.originator_version for s in stored_events]
        curs.execute(self.insert_latest_statement,
                     (ids, versions, [s.topic for s in stored_events], [self._state_to_store(s) for s in stored_events],
                      ids, versions),
                     prepare=False)  # fmt: skip

    def select_latest_with_events(
        self, after: Mapping[UUID, int], latest_of: Collection[UUID]
    ) -> tuple[dict[UUID, StoredEvent], list[StoredEvent]]:
        """The latest snapshot of each grievance of `latest_of` that has one, and the events of each grievance in
        `after` above the version it names or, for one with a snapshot, from the snapshot's own version on."""
        wanted = set(latest_of)
        pairs = list(after.items())
        snapshots: dict[UUID, StoredEvent] = {}
        events: list[StoredEvent] = []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_latest_with_events_statement,
                         ([p[0] for p in pairs], [p[1] for p in pairs], [p[0] in wanted for p in pairs]),
                         prepare=True)  # fmt: skip
            for row in curs.fetchall():
                stored = StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                     topic=row["topic"], state=bytes(row["state"] or b""))  # fmt: skip
                if row["snapshot"]:
                    if _whole_below(stored, row["through"]):
                        snapshots[row["originator_id"]] = stored
                else:
                    events.append(stored)
        return self._opened(snapshots), events
