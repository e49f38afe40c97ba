"""The grievances a process holds as last stored: a command reads only what was stored since, yet never decides on
a stale copy, whoever wrote meanwhile; and a held copy never carries a resident's name in clear."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.composition import build_chain
from adapters.settings import Settings
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import RecordProgress, Resident
from engine.errors import InvalidTransition
from engine.grievance import Status
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import Scenario


@pytest.fixture
def two_processes(database_url: str, yongji: OrgChart) -> Iterator[tuple[ServiceChain, ServiceChain]]:
    """Two chains on one store, as two processes (HTTP and the Kafka worker, say), each with its own cache."""
    env = Settings(database_url=database_url).store_env()
    clock = PlaybackClock(T0)
    first, second = (ServiceChain(env, chart=yongji, clock=clock) for _ in range(2))
    yield first, second
    first.close()
    second.close()


def events_read(chain: ServiceChain) -> list[int]:
    """Counts, one per load, of the events each load of `chain` reads from the store (with a snapshot or without)."""
    counts: list[int] = []
    recorder: Any = chain.recorder
    select = recorder.select_events_after
    assert chain.snapshots is not None
    snapshots: Any = chain.snapshots.recorder
    select_with_snapshots = snapshots.select_latest_with_events

    def counting(after: Any) -> Any:
        found = select(after)
        counts.append(len(found))
        return found

    def counting_with_snapshots(after: Any, latest_of: Any) -> Any:
        latest, found = select_with_snapshots(after, latest_of)
        counts.append(len(found))
        return latest, found

    recorder.select_events_after = counting
    snapshots.select_latest_with_events = counting_with_snapshots
    return counts


def progress(chain: ServiceChain, gid: UUID, n: int, start: int = 0, at: datetime = T0) -> None:
    notes = [
        RecordProgress(grievance_id=gid, command_id=f"p{start + i}", actor="member-wang", occurred_at=at, note="n")
        for i in range(n)
    ]
    for result in chain.execute(notes, principal=OPERATOR):
        if isinstance(result, Exception):
            raise result


def claimed(chain: ServiceChain) -> UUID:
    scenario = Scenario(chain, at=T0.replace(hour=0))
    scenario.report()
    scenario.claim()
    return scenario.id


def test_a_command_on_a_long_history_reads_only_the_events_stored_since_its_held_copy(
    two_processes: tuple[ServiceChain, ServiceChain],
) -> None:
    chain, _ = two_processes
    gid = claimed(chain)
    progress(chain, gid, 300)
    counts = events_read(chain)
    progress(chain, gid, 1, start=300)
    assert counts == [1], "the held copy was current: only its own last event is read, to confirm it"
    assert chain.grievance(gid).version == 303
    chain.decided.clear()
    progress(chain, gid, 1, start=301)
    assert counts[-1] == 2, "without the held copy, the latest snapshot's own event (302) and the one since"


def test_what_another_process_stored_meanwhile_is_read_before_deciding(
    two_processes: tuple[ServiceChain, ServiceChain],
) -> None:
    first, second = two_processes
    gid = claimed(first)
    progress(first, gid, 5)
    held = first.grievance(gid).version
    other = Scenario(second, at=T0.replace(hour=12))
    other.id = gid
    other.resolve()
    counts = events_read(first)
    with pytest.raises(InvalidTransition):
        # Resolved meanwhile: the stale copy would have taken the note.
        progress(first, gid, 1, start=5, at=other.tick())
    assert counts == [2], "the held copy's last event, and the one stored since"
    assert first.grievance(gid).status is Status.RESOLVED
    assert first.grievance(gid).version == held + 1


def test_a_copy_handed_out_or_a_batch_that_failed_leaves_the_held_copy_as_stored(
    two_processes: tuple[ServiceChain, ServiceChain],
) -> None:
    chain, _ = two_processes
    gid = claimed(chain)
    shown = chain.grievance(gid)
    shown.status = Status.RESOLVED
    shown.path.append("nowhere")

    def refuse(_: Any) -> None:
        raise RuntimeError("the transaction failed")

    note = RecordProgress(grievance_id=gid, command_id="lost", actor="member-wang", occurred_at=T0, note="n")
    with pytest.raises(RuntimeError):
        chain.execute([note], principal=OPERATOR, before_store=refuse)
    again = chain.grievance(gid)
    assert (again.status, again.path, again.version) == (Status.CLAIMED, [again.reported_unit], 2)
    assert again.outcome_of("lost", "record_progress") is None


def test_held_copies_keep_residents_fields_sealed(database_url: str) -> None:
    chain = build_chain(Settings(database_url=database_url))
    try:
        scenario = Scenario(chain, at=T0.replace(hour=0))
        scenario.report(resident=Resident(resident_id="res-9", name="王秀英", phone="13900001234"))  # type: ignore[arg-type]
        assert scenario.id not in set(chain.decided._entries), "the new grievance holds the name as given"
        assert chain.grievance(scenario.id).resident_name == "王秀英"
        held = chain.decided._entries[scenario.id]
        assert str(held.resident_name).startswith("sealed:v1:")
        assert str(held.resident_phone).startswith("sealed:v1:")
        assert chain.forget_resident("res-9")
        assert chain.grievance(scenario.id).resident_name == "[erased]"
    finally:
        chain.close()


def test_a_store_behind_the_held_copy_is_believed_and_the_grievance_read_whole_from_it(
    two_processes: tuple[ServiceChain, ServiceChain],
) -> None:
    chain, _ = two_processes
    gid = claimed(chain)
    progress(chain, gid, 3)
    assert chain.grievance(gid).version == 5
    # The store loses its last two commits (restored from a backup; a crash with `normal` durability).
    recorder: Any = chain.recorder
    with recorder.datastore.transaction(commit=True) as cursor:
        schema = getattr(recorder.datastore, "schema", None)
        mark, key = ("%s", gid) if schema is not None else ("?", gid.hex)
        for lost in (recorder.events_table_name, "event_hashes"):
            table = f'"{schema}".{lost}' if schema else lost
            cursor.execute(f"DELETE FROM {table} WHERE originator_version > 3 AND originator_id = {mark}", [key])
    assert chain.grievance(gid).version == 3, "the store's history, not the copy this process held"
    progress(chain, gid, 1, start=10)
    assert [e.originator_version for e in chain.history(gid)] == [1, 2, 3, 4], "no gap written into the history"
