"""The Merkle log on real stores: leaf i is the i-th event stored, appended in its events' transaction, gapless
under concurrent writers, and its stored nodes give the heads and proofs of the log rebuilt from scratch."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import psycopg
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
    log.append(b"".join(leaf_hash(hashes[oid][v]) for oid, v in order))
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
    tamper(database_url, "DELETE FROM log_tiles")
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


def raw_events(chain: ServiceChain, count: int) -> None:
    """`count` events of new grievances stored through the recorder in one batch (the log's 257th leaf and on
    start tiles of a second level)."""
    s = Scenario(chain)
    s.report()
    recorder: Any = chain.recorder
    (stored,) = recorder.select_events(s.id)
    recorder.insert_events([StoredEvent(uuid4(), 1, stored.topic, stored.state) for _ in range(count - 1)])


def test_a_store_whose_log_lost_a_tile_stores_nothing_until_it_is_rebuilt(
    stored_chain: ServiceChain, database_url: str
) -> None:
    raw_events(stored_chain, 300)
    recorder: Any = stored_chain.recorder
    tamper(database_url, "DELETE FROM log_tiles WHERE level = 1")  # the root of leaves 0-255, which the next joins
    s = Scenario(stored_chain)
    with pytest.raises(LogDamaged, match=r"log: tile \(1, 0\) of the Merkle log is missing or cut short \(tile "
                       r"\(1, 0\) holds 0 hashes, not 1\), so no event can be stored"):  # fmt: skip
        s.report()
    assert recorder.log_size() == 300
    assert recorder.select_leaves_of([s.id]) == {s.id: {}}
    tamper(database_url, "DELETE FROM log_tiles")
    env = Settings(database_url=database_url).store_env()
    # Emptied alone, the log is a wiped one, which opening refuses to rebuild over the events as they stand.
    with pytest.raises(LogDamaged, match=r"log_tiles is empty \(and no log_nodes is left to move into it\): it was "
                       "wiped"):  # fmt: skip
        ServiceChain(env, chart=stored_chain.chart, clock=stored_chain.clock)
    # Rebuilt on purpose, as the refusal says: the leaf indexes cleared too.
    tamper(database_url, "UPDATE event_hashes SET leaf_index = NULL")
    reopened = ServiceChain(env, chart=stored_chain.chart, clock=stored_chain.clock)
    try:
        Scenario(reopened).report()
        assert reopened.recorder.log_size() == 301  # type: ignore[attr-defined]
        log, _ = rebuilt(reopened)
        assert tree_head(301, reopened.recorder) == tree_head(301, log)  # type: ignore[arg-type]
    finally:
        reopened.close()


def as_stored_a_row_per_node(database_url: str, nodes: dict[tuple[int, int], bytes]) -> None:
    """The store's log as it was kept before tiles: `log_nodes (level, idx, hash)`, a row per complete subtree."""
    tamper(database_url, "DROP TABLE log_tiles")
    url = urlsplit(database_url)
    rows = [(level, idx, h) for (level, idx), h in nodes.items()]
    if url.scheme == "sqlite":
        with sqlite3.connect(url.path) as conn:
            conn.execute("CREATE TABLE log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
                         "PRIMARY KEY (level, idx)) WITHOUT ROWID")  # fmt: skip
            conn.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", rows)
        return
    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{parse_qs(url.query)["schema"][0]}"')
        conn.execute("CREATE TABLE log_nodes (level smallint NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, "
                     "PRIMARY KEY (level, idx))")  # fmt: skip
        with conn.cursor() as c:
            c.executemany("INSERT INTO log_nodes VALUES (%s, %s, %s)", rows)


def every_node(recorder: Any, size: int) -> dict[tuple[int, int], bytes]:
    """Every complete subtree of the log's first `size` leaves, as the layout before tiles stored them."""
    keys = [(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)]
    return dict(recorder.nodes(keys))


def test_a_store_whose_log_was_a_row_per_node_has_it_moved_into_tiles_when_opened(
    stored_chain: ServiceChain, database_url: str
) -> None:
    raw_events(stored_chain, 290)
    ids = [Scenario(stored_chain).answered_then_reopened() for _ in range(2)]
    recorder: Any = stored_chain.recorder
    size = recorder.log_size()
    assert size == 304
    nodes, root, leaves = every_node(recorder, size), tree_head(size, recorder), recorder.select_leaves_of(ids)
    as_stored_a_row_per_node(database_url, nodes)
    # An event edited behind the engine's back, its chain recomputed: the move keeps the leaf the log recorded.
    hashes = recorder.select_hashes_of(ids)
    tamper(database_url, "UPDATE event_hashes SET hash = %s WHERE originator_id = %s AND originator_version = 1",
           bytes(32), ids[0])  # fmt: skip
    reopened = ServiceChain(Settings(database_url=database_url).store_env(), chart=stored_chain.chart,
                            clock=stored_chain.clock)  # fmt: skip
    try:
        again: Any = reopened.recorder
        assert again.log_size() == size
        assert tree_head(size, again) == root
        assert every_node(again, size) == nodes
        index = leaves[ids[0]][1]
        proof = inclusion_proof(index, size, again)
        assert verify_inclusion(index, size, leaf_hash(hashes[ids[0]][1]), proof, root)
        later = Scenario(reopened).answered_then_reopened()
        assert again.log_size() == size + 7
        assert again.select_leaves_of([later]) == {later: {v: size + v - 1 for v in range(1, 8)}}
    finally:
        reopened.close()
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedTable), match="log_nodes"):
        tamper(database_url, "SELECT 1 FROM log_nodes")


def test_a_row_per_node_log_that_lost_a_leaf_is_not_moved_into_tiles(
    stored_chain: ServiceChain, database_url: str
) -> None:
    raw_events(stored_chain, 20)
    recorder: Any = stored_chain.recorder
    nodes = every_node(recorder, 20)
    del nodes[(0, 9)]
    as_stored_a_row_per_node(database_url, nodes)
    with pytest.raises(LogDamaged, match=r"log: leaf 9 of the Merkle log is missing from log_nodes"):
        ServiceChain(Settings(database_url=database_url).store_env(), chart=stored_chain.chart,
                     clock=stored_chain.clock).close()  # fmt: skip
