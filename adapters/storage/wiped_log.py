"""A store whose Merkle log was wiped behind the engine's back, found before the store is opened.

Opening a store whose events have no log yet builds one from the events as they stand: right for a store made
before the log existed, and a cover for a rewrite if the log was emptied on purpose (its leaves would be rebuilt
over the rewritten events, and every check but one against a checkpoint held elsewhere would pass). The difference
is in `event_hashes`: a store that had a log recorded each event's leaf index there. Its log is in `log_tiles`, or,
for a store made while the log was a row per node, still in `log_nodes` until the opening moves it into tiles.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import psycopg
from psycopg import sql

from adapters.storage.event_stores import HASHES_TABLE
from adapters.storage.log_nodes import NODES_TABLE, TILES_TABLE, LogDamaged

REASON = (
    "log: the store's events were appended to its Merkle log ({hashes} holds their leaf indexes) but {nodes} is "
    "{state} (and no {old} is left to move into it): it was wiped behind the engine's back, and is not rebuilt from "
    "the events as they stand now, which would hide any rewrite of them. Restore {nodes} from a backup and run "
    "grievance verify --all --checkpoint against a checkpoint kept elsewhere; to rebuild it from the events on "
    "purpose, clear the leaf indexes first "
    "(UPDATE {hashes} SET leaf_index = NULL) and verify against a checkpoint after"
)


def refuse_a_wiped_log(env: Mapping[str, str]) -> None:
    """Raise LogDamaged, opening nothing, if the store at `env` (the library's settings) had a log that is gone."""
    try:
        state = _postgres(env) if "POSTGRES_DBNAME" in env else _sqlite(env.get("SQLITE_DBNAME", ""))
    except (sqlite3.Error, psycopg.Error):
        return  # a store that cannot be read here is named by the opening that follows
    if state is not None:
        raise LogDamaged(REASON.format(hashes=HASHES_TABLE, nodes=TILES_TABLE, old=NODES_TABLE, state=state))


def _sqlite(path: str) -> str | None:
    if not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if HASHES_TABLE not in tables:
            return None
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({HASHES_TABLE})")}
        if "leaf_index" not in columns:
            return None
        if conn.execute(f"SELECT 1 FROM {HASHES_TABLE} WHERE leaf_index IS NOT NULL LIMIT 1").fetchone() is None:
            return None
        held = [t for t in (TILES_TABLE, NODES_TABLE) if t in tables]
        if any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None for t in held):
            return None
        return "empty" if TILES_TABLE in tables else "gone"


def _postgres(env: Mapping[str, str]) -> str | None:
    schema = env.get("POSTGRES_SCHEMA") or "public"
    with psycopg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), dbname=env["POSTGRES_DBNAME"],
                         user=env["POSTGRES_USER"], password=env.get("POSTGRES_PASSWORD") or None,
                         connect_timeout=10) as conn:  # fmt: skip
        found = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s AND "
            "((table_name = %s AND column_name = 'leaf_index') OR table_name IN (%s, %s))",
            (schema, HASHES_TABLE, TILES_TABLE, NODES_TABLE),
        ).fetchall()
        tables = {r[0] for r in found}
        if HASHES_TABLE not in tables:
            return None
        hashes = sql.Identifier(schema, HASHES_TABLE)
        query = sql.SQL("SELECT 1 FROM {} WHERE leaf_index IS NOT NULL LIMIT 1").format(hashes)
        if conn.execute(query).fetchone() is None:
            return None
        held = [sql.Identifier(schema, t) for t in (TILES_TABLE, NODES_TABLE) if t in tables]
        if any(conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(t)).fetchone() is not None for t in held):
            return None
        return "empty" if TILES_TABLE in tables else "gone"
