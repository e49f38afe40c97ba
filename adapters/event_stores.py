"""The library's SQLite and PostgreSQL stores, with an explicit durability setting and batch reads.

The library reads one aggregate a query; a batch of commands touches hundreds of grievances, so the
recorders here add `select_events_of`, which reads the events of many grievances in one query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
    SQLiteProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType
from psycopg.sql import SQL, Identifier

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL", "OFF")


# SQLite's default limit on bound parameters is 32,766; stay well below it.
SQLITE_IDS_PER_QUERY = 500


class BatchReadingSQLiteRecorder(SQLiteProcessRecorder):
    """SQLite process recorder (events, and upstream positions in the same transaction) that can read many
    aggregates' events in one query."""

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
                events.extend(
                    StoredEvent(
                        originator_id=self.convert_originator_id(row["originator_id"]),
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                    )
                    for row in c.fetchall()
                )
        return events


class BatchReadingPostgresRecorder(PostgresProcessRecorder):
    """PostgreSQL process recorder (events, and upstream positions in the same transaction) that can read
    many aggregates' events in one query."""

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

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # As the library's PostgresApplicationRecorder: lock, notify, insert; only the insert's parameters differ.
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of the given aggregates, ordered by aggregate and version."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_of_statement, [list(originator_ids)], prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]


class DurableSQLiteFactory(SQLiteFactory):
    """SQLiteFactory whose connections run `PRAGMA synchronous=<SQLITE_SYNCHRONOUS>` (default FULL).

    In the library's WAL mode, FULL fsyncs the log at every commit, so an acknowledged command
    survives a power cut; NORMAL fsyncs only at checkpoints (a power cut can lose the last commits,
    never corrupt the file); OFF leaves flushing to the operating system.
    """

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"
    # A process recorder is an application recorder; mypy objects only to its keyword-only constructor.
    application_recorder_class = BatchReadingSQLiteRecorder  # type: ignore[assignment]

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        level = (self.env.get(self.SQLITE_SYNCHRONOUS) or "FULL").strip().upper()
        if level not in SYNCHRONOUS_LEVELS:
            msg = f"SQLITE_SYNCHRONOUS {level!r} is not one of {', '.join(SYNCHRONOUS_LEVELS)}"
            raise OSError(msg)
        self.synchronous = level
        _set_synchronous(self.datastore.pool, level)


def _set_synchronous(pool: SQLiteConnectionPool, level: str) -> None:
    # The pool opens connections lazily, so wrapping its factory method covers every connection.
    create = pool._create_connection

    def create_with_pragma() -> SQLiteConnection:
        connection = create()
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute(f"PRAGMA synchronous={level}")
        return connection

    pool._create_connection = create_with_pragma  # type: ignore[method-assign]


class DurablePostgresFactory(PostgresFactory):
    """PostgresFactory whose sessions run `SET synchronous_commit` from POSTGRES_SYNCHRONOUS_COMMIT.

    `on` (the server's default) returns from a commit only once its WAL is flushed; `off` returns
    earlier and can lose the last commits in a server crash, never leaving them half-written.
    """

    POSTGRES_SYNCHRONOUS_COMMIT = "POSTGRES_SYNCHRONOUS_COMMIT"
    application_recorder_class = BatchReadingPostgresRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        setting = (self.env.get(self.POSTGRES_SYNCHRONOUS_COMMIT) or "on").strip().lower()
        if setting not in ("on", "off"):
            msg = f"POSTGRES_SYNCHRONOUS_COMMIT {setting!r} is not on or off"
            raise OSError(msg)
        pool: Any = self.datastore.pool
        configure = pool._configure

        def configure_with_durability(conn: Any) -> None:
            configure(conn)
            conn.execute(f"SET synchronous_commit = {setting}")

        pool._configure = configure_with_durability
