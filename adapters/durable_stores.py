"""The library's SQLite and PostgreSQL stores with an explicit durability setting."""

from __future__ import annotations

import sqlite3
from typing import Any

from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL", "OFF")


class DurableSQLiteFactory(SQLiteFactory):
    """SQLiteFactory whose connections run `PRAGMA synchronous=<SQLITE_SYNCHRONOUS>` (default FULL).

    In the library's WAL mode, FULL fsyncs the log at every commit, so an acknowledged command
    survives a power cut; NORMAL fsyncs only at checkpoints (a power cut can lose the last commits,
    never corrupt the file); OFF leaves flushing to the operating system.
    """

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

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
