"""The Merkle log on real stores: leaf i is the i-th event stored, appended in its events' transaction, gapless
under concurrent writers, and its stored nodes give the heads and proofs of the log rebuilt from scratch."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.settings import Settings
from adapters.storage.hash_chain import originator_uuid
from adapters.storage.log_nodes import LogDamaged
from adapters.storage.merkle_log import MemoryLog, inclusion_proof, leaf_hash, tree_head, verify_inclusion
from engine.service_chain import ServiceChain
from tests.integration.test_tamper_evidence import tamper
from tests.scenario import Scenario


def stored_order(chain: ServiceChain) -> list[tuple[UUID, int]]:
    """Every stored event, (grievance, version), in the order stored (notification ids)."""
    found: list[tuple[UUID, int]] = []
    start = 1
    while page := chain.recorder.select_notifications(start, 500):
        found.extend((originator_uuid(n), n.originator_version) for n in page)
        start = page[-1].id + 1
    return found


def rebuilt(chain: ServiceChain) -> tuple[MemoryLog, list[tuple[UUID, int]]]:
    """The log rebuilt in memory from the stored chained hashes, in storage order; and that order."""
    recorder: Any = chain.recorder
    order = stored_order(chain)
    hashes = recorder.select_hashes_of(list({oid for oid, _ in order}))
    log = MemoryLog()
    log.append(leaf_hash(hashes[oid][v]) for oid, v in order)
    return log, order


def test_each_stored_event_is_the_leaf_of_its_place_in_the_store(stored_chain: ServiceChain) -> None:
    ids = [Scenario(stored_chain).answered_then_reopened() for _ in range(3)]
    recorder: Any = stored_chain.recorder
    log, order = rebuilt(stored_chain)
    assert recorder.log_size() == len(order) == 21
    leaves = recorder.select_leaves_of(ids)
    assert [leaves[oid][v] for oid, v in order] == list(range(21))
    for size in (1, 7, 13, 21):
        assert tree_head(size, recorder) == tree_head(size, log)
    root = tree_head(21, recorder)
    hashes = recorder.select_hashes_of(ids)
    for oid in ids:
        for version, index in leaves[oid].items():
            proof = inclusion_proof(index, 21, recorder)
            assert verify_inclusion(index, 21, leaf_hash(hashes[oid][version]), proof, root)
    assert recorder.select_leaf_owner(5) == order[5]


def test_concurrent_writers_append_a_gapless_log_in_the_stored_order(
    stored_chain: ServiceChain, database_url: str
) -> None:
    writers = [stored_chain] + [
        ServiceChain(Settings(database_url=database_url).store_env(), chart=stored_chain.chart,
                     clock=stored_chain.clock) for _ in range(3)
    ]  # fmt: skip
    errors: list[BaseException] = []

    def write(chain: ServiceChain) -> None:
        try:
            for _ in range(4):
                Scenario(chain).answered_then_reopened()
        except BaseException as e:  # surfaced below, in the test's own thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers[1:]:
        w.close()
    assert not errors
    recorder: Any = stored_chain.recorder
    log, order = rebuilt(stored_chain)
    assert recorder.log_size() == len(order) == 4 * 4 * 7
    leaves = recorder.select_leaves_of(list({oid for oid, _ in order}))
    assert [leaves[oid][v] for oid, v in order] == list(range(len(order)))
    assert tree_head(len(order), recorder) == tree_head(len(order), log)


def test_a_batch_that_fails_to_store_appends_no_leaf(stored_chain: ServiceChain) -> None:
    s = Scenario(stored_chain)
    s.report()
    recorder: Any = stored_chain.recorder
    (stored,) = recorder.select_events(s.id)
    fresh = StoredEvent(originator_id=uuid4(), originator_version=1, topic=stored.topic, state=stored.state)
    with pytest.raises(IntegrityError):
        recorder.insert_events([fresh, stored])  # the second is a version already stored: the batch fails whole
    assert recorder.log_size() == 1
    assert recorder.select_leaves_of([fresh.originator_id]) == {fresh.originator_id: {}}
    s.claim()
    assert recorder.log_size() == 2
    assert recorder.select_leaves_of([s.id]) == {s.id: {1: 0, 2: 1}}


def test_a_store_made_before_the_log_gets_its_leaves_when_opened(stored_chain: ServiceChain, database_url: str) -> None:
    ids = [Scenario(stored_chain).answered_then_reopened() for _ in range(2)]
    recorder: Any = stored_chain.recorder
    expected = tree_head(14, recorder)
    # As the store was before the log: no nodes, no leaf index column, and (older still) one grievance's hashes gone.
    tamper(database_url, "DELETE FROM log_nodes")
    tamper(database_url, "ALTER TABLE event_hashes DROP COLUMN leaf_index")
    tamper(database_url, "DELETE FROM event_hashes WHERE originator_id = %s", ids[1])
    reopened = ServiceChain(Settings(database_url=database_url).store_env(), chart=stored_chain.chart,
                            clock=stored_chain.clock)  # fmt: skip
    try:
        again: Any = reopened.recorder
        assert again.log_size() == 14
        assert tree_head(14, again) == expected
        assert again.select_leaves_of(ids) == {ids[0]: {v: v - 1 for v in range(1, 8)},
                                               ids[1]: {v: v + 6 for v in range(1, 8)}}  # fmt: skip
        Scenario(reopened).report()
        log, order = rebuilt(reopened)
        assert again.log_size() == len(order) == 15
        assert tree_head(15, again) == tree_head(15, log)
    finally:
        reopened.close()


def test_a_store_whose_log_lost_a_node_stores_nothing_until_it_is_rebuilt(
    stored_chain: ServiceChain, database_url: str
) -> None:
    Scenario(stored_chain).answered_then_reopened()
    recorder: Any = stored_chain.recorder
    tamper(database_url, "DELETE FROM log_nodes WHERE level = 2 AND idx = 0")  # a node of the head of 7
    s = Scenario(stored_chain)
    with pytest.raises(LogDamaged, match=r"log: node \(2, 0\) of the Merkle log is missing, so no event can be stored"):
        s.report()
    assert recorder.log_size() == 7
    assert recorder.select_leaves_of([s.id]) == {s.id: {}}
    tamper(database_url, "DELETE FROM log_nodes")
    reopened = ServiceChain(Settings(database_url=database_url).store_env(), chart=stored_chain.chart,
                            clock=stored_chain.clock)  # fmt: skip
    try:
        Scenario(reopened).report()
        assert reopened.recorder.log_size() == 8  # type: ignore[attr-defined]
    finally:
        reopened.close()
