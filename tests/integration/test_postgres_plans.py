"""PostgreSQL's batch reads by index in every plan the server may cache, and its page of the log as the library's.

A prepared statement runs on PostgreSQL's generic plan once the server prefers it (psycopg prepares what runs five
times). On a store whose statistics are not gathered yet (new, restored or bulk-filled, before autovacuum's first
analysis), a read that joined a list of ids to the events table was then planned as a hash of the ids and a scan of
the whole table, so that every command's reads grew with the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composed

from adapters.settings import Settings
from engine.chart import OrgChart
from engine.commands import Claim, Command, Report
from engine.grievance import Category, ClaimMode
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import HOUSEHOLD

pytestmark = pytest.mark.postgres


@pytest.fixture
def filled(pg_url: str, yongji: OrgChart) -> Iterator[ServiceChain]:
    """A chain on PostgreSQL holding 1,500 grievances reported and claimed (3,000 events), with no statistics
    gathered."""
    chain = ServiceChain(Settings(database_url=pg_url).store_env(), chart=yongji)
    # A store whose statistics have not been gathered yet, as a new or newly filled store is before autovacuum's
    # first analysis: the planner then guesses, and its guesses must not turn a batch's reads into scans.
    base, schema = pg_url.split("?schema=")
    events = f'"{schema}"."{cast(Any, chain.recorder).events_table_name}"'
    snapshots = f'"{schema}"."{cast(Any, chain.snapshots).recorder.events_table_name}"'
    with psycopg.connect(base, autocommit=True) as conn:
        for table in (events, snapshots):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    batch: list[Command] = []
    for i in range(1500):
        gid = uuid4()
        batch.append(Report(grievance_id=gid, command_id=f"r-{i}", actor="w", occurred_at=T0, unit_id=HOUSEHOLD,
                            category=Category.OTHER, title="t", description="d"))  # fmt: skip
        batch.append(Claim(grievance_id=gid, command_id=f"c-{i}", actor="m", occurred_at=T0, unit_id=HOUSEHOLD,
                           mode=ClaimMode.MEMBER, claimant="m"))  # fmt: skip
    for i in range(0, len(batch), 1000):
        chain.execute(batch[i : i + 1000], principal=OPERATOR)
    yield chain
    chain.close()


def generic_plan(chain: ServiceChain, statement: Composed, literals: list[str]) -> str:
    """The plan PostgreSQL caches for `statement` once it plans it generically, for these parameters."""
    recorder: Any = chain.recorder
    with recorder.datastore.get_connection() as conn:
        text = statement.as_string(conn)
        numbered = iter(range(1, 100))
        text = re.sub(r"%[bs]", lambda _: f"${next(numbered)}", text)
        with conn.cursor() as cursor:
            cursor.execute(SQL("SET plan_cache_mode = force_generic_plan"))
            cursor.execute(SQL("PREPARE batch_read AS ") + SQL(text))
            cursor.execute(SQL("EXPLAIN EXECUTE batch_read(") + SQL(", ".join(literals)) + SQL(")"))
            plan = "\n".join(row["QUERY PLAN"] for row in cursor.fetchall())
            cursor.execute(SQL("DEALLOCATE batch_read"))
            cursor.execute(SQL("RESET plan_cache_mode"))
    return plan


def test_a_batchs_reads_walk_the_index_in_the_generic_plan(filled: ServiceChain, pg_url: str) -> None:
    recorder: Any = filled.recorder
    base, schema = pg_url.split("?schema=")
    events = f'"{schema}"."{recorder.events_table_name}"'
    with psycopg.connect(base, autocommit=True) as conn:  # a city's size: rows of no grievance, read by no one here
        filler = ("SELECT gen_random_uuid(), v, 'filler', '\\x00' "
                  "FROM generate_series(1, 20000) AS g, generate_series(1, 5) AS v")  # fmt: skip
        conn.execute(f"INSERT INTO {events} (originator_id, originator_version, topic, state) {filler}")
    one = f"'{{{recorder.select_notifications(start=1, limit=1)[0].originator_id}}}'"
    reads = {
        "events after a version": (recorder.select_events_after_statement, [one, "'{0}'"]),
        "latest snapshots with the events since": (
            cast(Any, filled.snapshots).recorder.select_latest_with_events_statement,
            [one, "'{0}'", "'{true}'"],
        ),
    }
    for name, (statement, literals) in reads.items():
        plan = generic_plan(filled, statement, literals)
        assert f"Seq Scan on {recorder.events_table_name}" not in plan, f"{name}:\n{plan}"
        assert "Index" in plan, f"{name}:\n{plan}"


def test_a_page_of_the_log_reads_as_the_librarys_read_would(filled: ServiceChain) -> None:
    recorder: Any = filled.recorder
    last = recorder.max_notification_id()
    topics = sorted({n.topic for n in recorder.select_notifications(start=1, limit=10)})
    for start in (None, 1, 7, last):
        for stop in (None, 9, last):
            for chosen in ((), topics[:1], topics):
                for inclusive in (True, False):
                    for limit in (1, 5, 5000):
                        ours = recorder.select_notifications(start, limit, stop, chosen, inclusive_of_start=inclusive)
                        theirs = PostgresApplicationRecorder.select_notifications(
                            recorder, start, limit, stop, chosen, inclusive_of_start=inclusive
                        )
                        assert ours == theirs, (start, stop, chosen, inclusive, limit)
    assert len(recorder.select_notifications(start=1, limit=5000)) == 3000


def test_a_page_of_the_log_with_a_state_nulled_in_the_database_reads_as_an_empty_state(
    filled: ServiceChain, pg_url: str
) -> None:
    recorder: Any = filled.recorder
    base, schema = pg_url.split("?schema=")
    with psycopg.connect(base) as conn:
        conn.execute(f'ALTER TABLE "{schema}"."{recorder.events_table_name}" ALTER COLUMN state DROP NOT NULL')
        conn.execute(f'UPDATE "{schema}"."{recorder.events_table_name}" SET state = NULL WHERE notification_id = 2')
    page = recorder.select_notifications(start=1, limit=3)
    assert [n.state == b"" for n in page] == [False, True, False]
