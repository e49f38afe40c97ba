"""Snapshots of grievances: taken when a batch reaches a multiple of the interval, used as a load's starting point,
never shown as history. Those set aside when broken are tested on both stores (tests/integration/test_snapshots.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Claim, RecordProgress
from engine.errors import CommandIdReused
from engine.grievance import ClaimMode, CommandsSeen, Earlier, Grievance, GrievanceState, Status
from engine.levels import Level
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import HOUSEHOLD, claimed, notes

INTERVAL = 10


@pytest.fixture
def chain(yongji: OrgChart) -> Iterator[ServiceChain]:
    """A chain on the in-memory store that snapshots every ten events and holds no grievance in memory, so every
    load starts from the store."""
    app = ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=PlaybackClock(T0),
                       snapshot_interval=INTERVAL, decided_cache_size=0)  # fmt: skip
    yield app
    app.close()


def snapshot_versions(chain: ServiceChain, gid: UUID) -> list[int]:
    assert chain.snapshots is not None
    return [s.originator_version for s in chain.snapshots.recorder.select_events(gid)]


def replayed(chain: ServiceChain, gid: UUID) -> Grievance:
    state: Any = None
    for event in chain.history(gid):
        state = event.mutate(state)  # type: ignore[attr-defined]
    return state  # type: ignore[no-any-return]


def events_read(chain: ServiceChain) -> list[int]:
    """How many events each read of the store returned."""
    counts: list[int] = []
    recorder: Any = chain.recorder
    select = recorder.select_events

    def counting(*args: Any, **kwargs: Any) -> Any:
        found = select(*args, **kwargs)
        counts.append(len(found))
        return found

    recorder.select_events = counting
    return counts


def test_a_snapshot_is_taken_when_a_batch_reaches_a_multiple_of_the_interval(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 7)
    assert snapshot_versions(chain, gid) == [], "version 9: no multiple of ten reached yet"
    notes(chain, gid, 1, start=7)
    assert snapshot_versions(chain, gid) == [10]
    notes(chain, gid, 15, start=8)
    assert snapshot_versions(chain, gid)[-1] == 25, "as the grievance stands after the batch that reached 20"
    notes(chain, gid, 4, start=23)
    assert snapshot_versions(chain, gid)[-1] == 25, "version 29: 30 not reached"


def test_a_load_starts_from_the_latest_snapshot_and_decides_as_the_whole_history_would(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 43)
    assert snapshot_versions(chain, gid)[-1] == 45
    notes(chain, gid, 3, start=43)
    counts = events_read(chain)
    loaded = chain.grievance(gid)
    assert counts == [4], "the snapshot's own event, to check it, and the three since"
    assert loaded.__dict__ == replayed(chain, gid).__dict__
    assert (loaded.version, loaded.progress_notes, loaded.status) == (48, 46, Status.CLAIMED)


def test_a_repeat_of_a_command_from_before_the_snapshot_is_answered_from_it(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 30)
    note = RecordProgress(grievance_id=gid, command_id="n3", actor="member-wang", occurred_at=T0, note="again")
    outcome = chain.apply(note, principal=OPERATOR)
    assert (outcome.duplicate, outcome.version) == (True, 6), "the first outcome; nothing stored"
    assert chain.grievance(gid).version == 32
    claim = Claim(grievance_id=gid, command_id="n4", actor="member-wang", occurred_at=T0, unit_id=HOUSEHOLD,
                  mode=ClaimMode.MEMBER, claimant="member-wang")  # fmt: skip
    with pytest.raises(CommandIdReused):
        chain.apply(claim, principal=OPERATOR)


def test_a_snapshot_holds_every_attribute_a_grievance_has(chain: ServiceChain) -> None:
    grievance = chain.grievance(claimed(chain))
    kept = set(vars(grievance)) - {"_id", "_version", "_pending_events"}
    assert kept == set(GrievanceState.__annotations__), "a new attribute must be added to GrievanceState"


def test_the_commands_before_a_snapshot_are_read_from_the_events_only_for_an_id_seen_there() -> None:
    reported = ("report", (1, Status.WAITING, Level.MEMBER_HOUSEHOLD, "u1"))
    claimed_ = ("claim", (2, Status.CLAIMED, Level.MEMBER_HOUSEHOLD, "u1"))
    seen = CommandsSeen()
    seen["a"] = reported
    reads: list[int] = []

    def read_earlier() -> dict[str, Any]:
        reads.append(1)
        return {"a": reported}

    restored = CommandsSeen(Earlier(seen.digests()))
    restored.read_earlier_with(read_earlier)
    restored["b"] = claimed_
    assert restored.get("c") is None
    assert restored.get("b") == claimed_
    assert reads == [], "no id asked about was taken before the snapshot"
    assert restored.get("a") == reported
    assert restored.get("a") == reported
    assert reads == [1], "read once"
    again = CommandsSeen(Earlier(restored.digests()))
    again.read_earlier_with(lambda: {"a": reported, "b": claimed_})
    assert again.whole() == {"a": reported, "b": claimed_}


def test_a_repeat_of_an_old_command_reads_the_events_once_and_new_ones_never(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 30)
    counts = events_read(chain)
    notes(chain, gid, 1, start=30)
    assert counts == [1], "a new command id: the snapshot's own event, no older one"
    note = RecordProgress(grievance_id=gid, command_id="n1", actor="member-wang", occurred_at=T0, note="again")
    assert chain.apply(note, principal=OPERATOR).duplicate
    assert counts == [1, 2, 32], "an id taken before the snapshot (32): its events up to it, read once"


def test_a_snapshot_is_not_history(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 20)
    history = list(chain.history(gid))
    assert [e.originator_version for e in history] == list(range(1, 23))
    assert not [e for e in history if isinstance(e, Grievance.Snapshot)]
    assert chain.grievance(gid, version=12).version == 12, "a past version is replayed from the events"


def test_no_snapshots_with_an_interval_of_zero(yongji: OrgChart) -> None:
    app = ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=PlaybackClock(T0),
                       snapshot_interval=0)  # fmt: skip
    gid = claimed(app)
    notes(app, gid, 150)
    assert snapshot_versions(app, gid) == []
    with pytest.raises(ValueError, match="snapshot interval"):
        ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, snapshot_interval=-1)


def test_the_librarys_repository_reads_events_only(chain: ServiceChain) -> None:
    gid = claimed(chain)
    notes(chain, gid, 20)
    assert snapshot_versions(chain, gid)
    counts = events_read(chain)
    assert chain.repository.get(gid).version == 22
    assert counts == [22], "no unchecked snapshot to start from"
