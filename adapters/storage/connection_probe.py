"""One quick connection to PostgreSQL before the store's pool opens, so a wrong port, database or user is
named at once: the pool would retry for its whole timeout and then say only that it got no connection."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from engine.errors import ConfigurationError

PROBE_TIMEOUT_SECONDS = 3


def probe_postgres(env: Mapping[str, str]) -> None:
    """Connect once with the store's settings; a `ConfigurationError` naming what the server (or the network)
    said if that fails. The message names host, port, database and user, never the password."""
    where = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{env['POSTGRES_DBNAME']} as {env['POSTGRES_USER']}"
    try:
        conn = psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"],
            password=env.get("POSTGRES_PASSWORD") or None,
            connect_timeout=PROBE_TIMEOUT_SECONDS,
        )
    except psycopg.OperationalError as e:
        raise ConfigurationError(
            f"GRIEVANCE_DATABASE_URL: cannot connect to PostgreSQL at {where}: {_said(e)}"
        ) from None
    conn.close()


def _said(error: psycopg.OperationalError) -> str:
    """What the server or the network said, in one line: 'database "x" does not exist', 'Connection refused'."""
    text = " ".join(str(error).split())
    # libpq prefixes each attempt with 'connection to server at "h" (addr), port p failed:'; keep what follows.
    reason = text.rsplit(" failed: ", 1)[-1].removeprefix("FATAL: ").strip()
    if reason.lower().startswith("connection refused"):
        return "connection refused (is PostgreSQL running there, listening on TCP?)"
    if "timeout expired" in reason.lower():
        return f"no answer within {PROBE_TIMEOUT_SECONDS} s (timeout expired)"
    return reason or type(error).__name__
