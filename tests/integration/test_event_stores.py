"""The chain on real stores: a SQLite file and the PostgreSQL server, each test on a fresh database."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking

from adapters import composition
from adapters.composition import build_chain
from adapters.settings import Settings
from adapters.storage.event_stores import part_of
from engine.commands import Claim, Command, Escalate, Outcome, RecordProgress, Report, Resolve
from engine.errors import GrievanceError
from engine.grievance import Category, ClaimMode, Status
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import BUILDING, HOUSEHOLD, Scenario
from tests.sqlite_lock import short_lock_timeout, write_lock_held


def reopen(chain: ServiceChain, database_url: str) -> ServiceChain:
    """A second process's view of the same store, on the same clock (as two servers' clocks agree)."""
    return ServiceChain(Settings(database_url=database_url).store_env(), chart=chain.chart, clock=chain.clock)


def test_a_whole_life_is_stored_and_read_back_by_another_process(stored_chain: ServiceChain, database_url: str) -> None:
    s = Scenario(stored_chain)
    s.answered_then_reopened()
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
    batch: list[Command] = [
        Report(
            grievance_id=gid,
            command_id=f"r-{i}",
            actor="w",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            category=Category.OTHER,
            title="t",
            description="d",
        )
        for i, gid in enumerate(ids)
    ]
    batch += [
        Claim(
            grievance_id=gid,
            command_id=f"c-{i}",
            actor="m",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            mode=ClaimMode.MEMBER,
            claimant="m",
        )
        for i, gid in enumerate(ids)
    ]
    batch.insert(50, Escalate(grievance_id=ids[0], command_id="bad", actor="m", occurred_at=T0, to_unit_id="lg"))
    max_before = stored_chain.recorder.max_notification_id() or 0
    results = stored_chain.execute(batch, principal=OPERATOR)
    assert isinstance(results[50], GrievanceError)
    assert results[50].field == "to_unit_id"
    assert sum(isinstance(r, Outcome) for r in results) == 1200
    assert (stored_chain.recorder.max_notification_id() or 0) - max_before == 1200
    again = stored_chain.execute(batch, principal=OPERATOR)
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
                chain.apply(
                    RecordProgress(
                        grievance_id=s.id,
                        command_id=f"{name}-{i}",
                        actor="member-wang",
                        occurred_at=s.at + timedelta(minutes=1),
                        note=f"{name} {i}",
                    ),
                    principal=OPERATOR,
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


def _report(gid: Any, command_id: str) -> Command:
    return Report(
        grievance_id=gid,
        command_id=command_id,
        actor="w",
        occurred_at=T0,
        unit_id=HOUSEHOLD,
        category=Category.OTHER,
        title="t",
        description="d",
    )


def test_a_batch_records_its_upstream_position_with_its_events(stored_chain: ServiceChain) -> None:
    upstream = "kafka:grievance.commands[3]"
    assert stored_chain.tracked(upstream) is None
    stored_chain.execute([_report(uuid4(), "a")], tracking=Tracking(upstream, 0), principal=OPERATOR)
    assert stored_chain.tracked(upstream) == 0
    # A batch with nothing to store (a repeat and a refusal) still moves the position past it.
    results = stored_chain.execute(
        [_report(uuid4(), "a"), Resolve(grievance_id=uuid4(), command_id="b", actor="w", occurred_at=T0, summary="s")],
        tracking=Tracking(upstream, 2),
        principal=OPERATOR,
    )
    assert isinstance(results[1], GrievanceError)
    assert stored_chain.tracked(upstream) == 2


def test_a_batch_whose_upstream_another_writer_moved_stores_nothing(stored_chain: ServiceChain) -> None:
    upstream = "kafka:grievance.commands[0]"
    stored_chain.execute([_report(uuid4(), "first")], tracking=Tracking(upstream, 10), principal=OPERATOR)
    before = stored_chain.recorder.max_notification_id()
    seen: list[Any] = []
    with pytest.raises(IntegrityError):
        # The other writer got to offset 10 first: a batch ending at 10 again is refused, events and all.
        stored_chain.execute(
            [_report(uuid4(), "late")], tracking=Tracking(upstream, 10), before_store=seen.append, principal=OPERATOR
        )
    assert stored_chain.recorder.max_notification_id() == before
    assert stored_chain.tracked(upstream) == 10
    assert len(seen) == 1, "the results were shown once before the store refused them"


def test_nothing_is_stored_when_the_hook_before_storing_fails(stored_chain: ServiceChain) -> None:
    def broker_down(_: Any) -> None:
        raise ConnectionError("broker unreachable")

    gid = uuid4()
    with pytest.raises(ConnectionError):
        stored_chain.execute(
            [_report(gid, "x")], tracking=Tracking("up", 5), before_store=broker_down, principal=OPERATOR
        )
    assert stored_chain.tracked("up") is None
    with pytest.raises(GrievanceError):
        stored_chain.grievance(gid)


def test_the_notification_ids_a_batch_is_given_are_those_its_events_are_read_back_by(
    stored_chain: ServiceChain,
) -> None:
    from eventsourcing.persistence import StoredEvent

    recorder: Any = stored_chain.recorder
    given: list[int] = []
    for size in (3, 1, 250):
        events = [StoredEvent(uuid4(), 1, "engine.grievance:Grievance.Reported", b"{}") for _ in range(size)]
        ids = recorder.insert_events(events)
        assert len(ids) == size
        read = recorder.select_notifications(start=ids[0], limit=size)
        assert [n.id for n in read] == list(ids), "each event is read back at the id its batch was given"
        assert [n.originator_id for n in read] == [e.originator_id for e in events]
        given += ids
    assert given == sorted(given), "later batches follow earlier ones"
    assert recorder.max_notification_id() == given[-1]


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_the_parts_of_the_log_hold_each_event_up_to_their_stop_once_and_each_grievance_whole(
    stored_chain: ServiceChain, parts: int
) -> None:
    for i in range(40):
        s = Scenario(stored_chain, at=T0 + timedelta(minutes=i))
        s.report()
        s.claim()
    stop = (stored_chain.recorder.max_notification_id() or 0) - 5
    everything = stored_chain.recorder.select_notifications(start=1, limit=1000, stop=stop)
    recorder: Any = stored_chain.recorder
    seen = []
    for part in range(parts):
        position, page = 0, 3  # pages smaller than a part, so that each is read in several
        while batch := recorder.select_notifications_of_part(position + 1, page, stop=stop, part=part, parts=parts):
            assert len(batch) <= page
            assert all(part_of(n.originator_id, parts) == part for n in batch)  # the store's parts are `part_of`'s
            seen += batch
            position = batch[-1].id
    assert sorted(seen, key=lambda n: n.id) == list(everything)
    assert everything[-1].id == stop
    assert len({n.originator_id for n in everything}) > 30


def test_a_process_opening_a_store_another_keeps_locked_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_lock_timeout(monkeypatch)
    with write_lock_held(tmp_path / "g.db", release_after=3.0):  # past the lock timeout, twice over
        chain = build_chain(Settings(database_url=f"sqlite:///{tmp_path}/g.db"))  # it waits, then opens
        try:
            chain.execute([Report(grievance_id=uuid4(), command_id="after-the-wait", actor="worker", occurred_at=T0,
                                  unit_id=HOUSEHOLD, category=Category.OTHER, title="t", description="d")],
                          principal=OPERATOR)  # fmt: skip
        finally:
            chain.close()


def test_a_process_gives_up_on_a_store_locked_past_its_bound_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_lock_timeout(monkeypatch)
    monkeypatch.setattr(composition, "MIGRATION_WAIT", 1.5)
    with (
        write_lock_held(tmp_path / "g.db"),
        pytest.raises(OperationalError, match="database is locked: another process has held the store's write"),
    ):
        build_chain(Settings(database_url=f"sqlite:///{tmp_path}/g.db"))
