"""Tamper evidence: rows edited or deleted behind the engine's back, in SQLite and PostgreSQL, are named
by `verify` at the first broken link (grievance, version)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest

from adapters.audit.trail import AuditTrail
from adapters.composition import build_chain
from adapters.settings import Settings
from adapters.storage.hash_chain import BrokenLink
from engine.service_chain import ServiceChain
from tests.scenario import Scenario


def tamper(database_url: str, sql: str, *params: Any) -> int:
    """Run SQL straight against the store, as someone with database access could; the rows it touched.
    `stored_events` stands for the events table, whatever the store calls it."""
    return int(_run(database_url, sql, params, lambda cursor: cursor.rowcount))


def query(database_url: str, sql: str, *params: Any) -> list[Any]:
    """The rows SQL run straight against the store returns (`stored_events` as in `tamper`)."""
    return list(_run(database_url, sql, params, lambda cursor: cursor.fetchall()))


def _run(database_url: str, sql: str, params: tuple[Any, ...], result: Any) -> Any:
    url = urlsplit(database_url)
    if url.scheme != "sqlite":
        sql = sql.replace("stored_events", "grievances_events")
    if url.scheme == "sqlite":
        with sqlite3.connect(url.path) as conn:
            sql = sql.replace("%s", "?")
            return result(conn.execute(sql, [p.hex if isinstance(p, UUID) else p for p in params]))
    schema = parse_qs(url.query)["schema"][0]
    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return result(conn.execute(sql, params))


@pytest.fixture
def chain(database_url: str) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=database_url))
    yield app
    app.close()


def lived(chain: ServiceChain) -> UUID:
    """A grievance with seven events."""
    return Scenario(chain).answered_then_reopened()


def test_an_untouched_store_verifies(chain: ServiceChain) -> None:
    ids = [lived(chain) for _ in range(3)]
    trail = AuditTrail(chain)
    assert all(trail.verify(gid) is None for gid in ids)
    assert list(trail.verify_all()) == []
    assert [e.hash is not None and len(e.hash) == 64 for e in trail.history(ids[0])] == [True] * 7


def test_an_edited_event_is_named(chain: ServiceChain, database_url: str) -> None:
    gid, other = lived(chain), lived(chain)
    assert tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND "
                  "originator_version = 3", b'{"note": "nothing to see"}', gid) == 1  # fmt: skip
    trail = AuditTrail(chain)
    assert trail.verify(gid) == BrokenLink(gid, 3, "event altered: its hash does not match")
    assert trail.verify(other) is None
    assert list(trail.verify_all()) == [BrokenLink(gid, 3, "event altered: its hash does not match")]


def test_a_deleted_event_is_named_in_the_middle_and_at_the_end(chain: ServiceChain, database_url: str) -> None:
    middle, end = lived(chain), lived(chain)
    tamper(database_url, "DELETE FROM stored_events WHERE originator_id = %s AND originator_version = 2", middle)
    tamper(database_url, "DELETE FROM stored_events WHERE originator_id = %s AND originator_version = 7", end)
    trail = AuditTrail(chain)
    assert trail.verify(middle) == BrokenLink(middle, 2, "event missing: the versions skip it")
    assert trail.verify(end) == BrokenLink(end, 7, "event missing: a hash remains for it")


def test_an_edited_event_with_its_hash_rewritten_still_breaks_the_next_link(
    chain: ServiceChain, database_url: str
) -> None:
    gid = lived(chain)
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 4",
           b'{"x": 1}', gid)  # fmt: skip
    tamper(database_url, "UPDATE event_hashes SET hash = %s WHERE originator_id = %s AND originator_version = 4",
           bytes(32), gid)  # fmt: skip
    assert AuditTrail(chain).verify(gid) == BrokenLink(gid, 4, "event altered: its hash does not match")
    tamper(database_url, "DELETE FROM event_hashes WHERE originator_id = %s AND originator_version = 4", gid)
    assert AuditTrail(chain).verify(gid) == BrokenLink(gid, 4, "its hash is missing")


def test_verify_on_the_command_line_names_the_broken_link(chain: ServiceChain, database_url: str) -> None:
    gid, _ = lived(chain), lived(chain)
    env = {"GRIEVANCE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}

    def grievance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    intact = grievance("verify", "--all")
    assert intact.returncode == 0, intact.stderr
    assert "intact: the hash chains of 2 grievances verify" in intact.stdout
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 5",
           b"{}", gid)  # fmt: skip
    broken = grievance("verify", "--all")
    assert broken.returncode == 4
    assert f"broken: grievance {gid} at version 5: event altered" in broken.stdout
    one = grievance("verify", str(gid))
    assert one.returncode == 4
    assert "at version 5" in one.stdout
