"""The chain on real stores: a SQLite file and the PostgreSQL server, each test on a fresh database."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from uuid import uuid4

from adapters.settings import Settings
from engine.commands import Command, Outcome
from engine.errors import GrievanceError
from engine.grievance import Status
from engine.service_chain import ServiceChain
from tests.conftest import T0
from tests.scenario import BUILDING, HOUSEHOLD, Scenario


def reopen(chain: ServiceChain, database_url: str) -> ServiceChain:
    """A second process's view of the same store."""
    return ServiceChain(Settings(database_url=database_url).store_env(), chart=chain.chart)


def test_a_whole_life_is_stored_and_read_back_by_another_process(stored_chain: ServiceChain, database_url: str) -> None:
    s = Scenario(stored_chain)
    s.report()
    s.claim()
    s.escalate()
    s.claim()
    s.reply()
    s.rate("dissatisfied")
    other = reopen(stored_chain, database_url)
    try:
        g = other.grievance(s.id)
        assert (g.version, g.status, g.unit_id, g.reopen_count) == (7, Status.WAITING, BUILDING, 1)
        assert [e.originator_version for e in other.history(s.id)] == list(range(1, 8))
        assert other.grievance(s.id, version=5).status is Status.REPLIED
        assert other.grievance_at(s.id, T0 + timedelta(hours=2, minutes=30), clock="occurred").version == 2
    finally:
        other.close()


def test_a_batch_is_stored_in_one_go_with_its_refusals_in_place(stored_chain: ServiceChain) -> None:
    ids = [uuid4() for _ in range(600)]  # more than one SQLite read chunk
    batch = [
        Command(
            "report",
            gid,
            f"r-{i}",
            "w",
            T0,
            {"unit_id": HOUSEHOLD, "category": "other", "title": "t", "description": "d"},
        )
        for i, gid in enumerate(ids)
    ]
    batch += [
        Command("claim", gid, f"c-{i}", "m", T0, {"unit_id": HOUSEHOLD, "mode": "member", "claimant": "m"})
        for i, gid in enumerate(ids)
    ]
    batch.insert(50, Command("escalate", ids[0], "bad", "m", T0, {"to_unit_id": "lg"}))
    max_before = stored_chain.recorder.max_notification_id() or 0
    results = stored_chain.execute(batch)
    assert isinstance(results[50], GrievanceError)
    assert results[50].field == "to_unit_id"
    assert sum(isinstance(r, Outcome) for r in results) == 1200
    assert (stored_chain.recorder.max_notification_id() or 0) - max_before == 1200
    again = stored_chain.execute(batch)
    assert all(r.duplicate for r in again if isinstance(r, Outcome))
    assert (stored_chain.recorder.max_notification_id() or 0) - max_before == 1200


def test_two_writers_on_one_grievance_lose_no_update(stored_chain: ServiceChain, database_url: str) -> None:
    s = Scenario(stored_chain)
    s.report()
    s.claim()
    writers = [stored_chain, reopen(stored_chain, database_url)]
    errors: list[BaseException] = []

    def write(chain: ServiceChain, name: str) -> None:
        try:
            for i in range(15):
                chain.record_progress(
                    s.id,
                    command_id=f"{name}-{i}",
                    actor="member-wang",
                    occurred_at=s.at + timedelta(minutes=1),
                    note=f"{name} {i}",
                )
        except BaseException as e:  # surfaced below, in the test's own thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w, f"w{n}")) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writers[1].close()
    assert not errors
    g = stored_chain.grievance(s.id)
    assert (g.version, g.progress_notes) == (32, 30)


def test_the_durability_setting_reaches_the_database(database_url: str, yongji: Any) -> None:
    for durability, sqlite_value, pg_value in (("full", 2, "on"), ("normal", 1, "off")):
        env = Settings(database_url=database_url, durability=durability).store_env()
        chain = ServiceChain(env, chart=yongji)
        try:
            datastore: Any = chain.factory.datastore  # type: ignore[attr-defined]
            if database_url.startswith("sqlite"):
                with datastore.transaction(commit=False) as cursor:
                    cursor.execute("PRAGMA synchronous")
                    assert cursor.fetchone()[0] == sqlite_value
            else:
                with datastore.transaction(commit=False) as cursor:
                    cursor.execute("SHOW synchronous_commit")
                    assert cursor.fetchone()["synchronous_commit"] == pg_value
        finally:
            chain.close()
