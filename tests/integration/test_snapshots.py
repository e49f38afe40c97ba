"""Snapshots on both stores: a process that has just started loads a long grievance from its latest snapshot and the
events since, in one query; a snapshot that is broken, ahead of the events or of other events is set aside, reported,
and the events decide; a forgotten resident stays unreadable in snapshots as in events; old stores gain the table."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.composition import build_audit_trail, build_chain, build_chart
from adapters.settings import Settings
from adapters.storage.receipts import read_secret
from adapters.storage.resident_keys import ResidentKeys
from adapters.storage.snapshots import SEAL_BYTES, SnapshotSeal
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Claim, RecordProgress, Report, Resident
from engine.errors import BrokenHistory
from engine.grievance import Category, ClaimMode, Grievance
from engine.personal_data import ERASED
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import HOUSEHOLD, claimed, notes

INTERVAL = 10
NAME, PHONE = "王秀英", "+86 139 0000 1234"


def run_sql(database_url: str, sql: str, *params: Any) -> list[Any]:
    """SQL straight against the store, as someone with database access could run it; `stored_events` and
    `stored_snapshots` stand for the tables, whatever the store calls them."""
    url = urlsplit(database_url)
    if url.scheme == "sqlite":
        with sqlite3.connect(url.path) as conn:
            rows = conn.execute(sql.replace("%s", "?"), [p.hex if isinstance(p, UUID) else p for p in params])
            return rows.fetchall()
    sql = sql.replace("stored_events", "grievances_events").replace("stored_snapshots", "grievances_snapshots")
    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{parse_qs(url.query)["schema"][0]}"')
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def open_chain(database_url: str, yongji: OrgChart, *, sealing: bool = False) -> ServiceChain:
    """A chain on the store, as a process that has just started: nothing held in memory."""
    chain = ServiceChain(Settings(database_url=database_url).store_env(), chart=yongji, clock=PlaybackClock(T0),
                         snapshot_interval=INTERVAL)  # fmt: skip
    if sealing:
        chain.protect_personal_data(ResidentKeys(chain.recorder.datastore))  # type: ignore[attr-defined]
    return chain


@pytest.fixture
def chain(database_url: str, yongji: OrgChart) -> Iterator[ServiceChain]:
    app = open_chain(database_url, yongji)
    yield app
    app.close()


def reads(chain: ServiceChain) -> list[tuple[int, int]]:
    """(snapshots, events) each combined read of `chain`'s snapshot recorder returned."""
    counts: list[tuple[int, int]] = []
    assert chain.snapshots is not None
    recorder: Any = chain.snapshots.recorder
    select = recorder.select_latest_with_events

    def counting(*args: Any) -> Any:
        snapshots, events = select(*args)
        counts.append((len(snapshots), len(events)))
        return snapshots, events

    recorder.select_latest_with_events = counting
    return counts


def replayed(chain: ServiceChain, gid: UUID) -> dict[str, Any]:
    state: Any = None
    for event in chain.history(gid):
        state = event.mutate(state)  # type: ignore[attr-defined]
    return dict(state.__dict__)


def test_a_process_just_started_loads_from_the_latest_snapshot_and_the_events_since(
    chain: ServiceChain, database_url: str, yongji: OrgChart
) -> None:
    gid, other = claimed(chain), claimed(chain)
    notes(chain, gid, 55)
    notes(chain, gid, 2, start=55)
    assert run_sql(database_url, "SELECT originator_version FROM stored_snapshots WHERE originator_id = %s", gid) == [
        (57,)
    ], "only the latest snapshot is kept"
    fresh = open_chain(database_url, yongji)
    try:
        counts = reads(fresh)
        notes(fresh, gid, 1, start=57)
        notes(fresh, other, 1)
        assert counts == [(1, 3), (0, 2)], "the snapshot, its own event and the two since; no snapshot: the history"
        assert fresh.grievance(gid).__dict__ == replayed(fresh, gid)
        assert fresh.grievance(gid).version == 60
    finally:
        fresh.close()


@pytest.mark.parametrize(
    ("damage", "params"),
    [
        pytest.param("UPDATE stored_snapshots SET state = %s", (b"{not json",), id="does-not-decode"),
        pytest.param("UPDATE stored_snapshots SET topic = %s", ("engine.grievance:Grievance.Claimed",), id="not-one"),
        pytest.param("UPDATE stored_snapshots SET originator_version = originator_version + 50", (), id="ahead"),
        pytest.param("UPDATE stored_snapshots SET originator_version = originator_version - 1", (), id="another-event"),
        pytest.param("DELETE FROM stored_events WHERE originator_version > 20", (), id="events-lost"),
        pytest.param("UPDATE stored_snapshots SET state = %s", (b"{}",), id="empty"),
    ],
)
def test_a_snapshot_that_cannot_be_trusted_is_set_aside_reported_and_the_events_decide(
    chain: ServiceChain,
    database_url: str,
    yongji: OrgChart,
    damage: str,
    params: tuple[Any, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gid = claimed(chain)
    notes(chain, gid, 20)
    assert run_sql(database_url, "SELECT originator_version FROM stored_snapshots") == [(22,)]
    run_sql(database_url, damage, *params)
    if "stored_events" in damage:  # as a store restored from an older backup: the hashes of the lost events went too
        run_sql(database_url, "DELETE FROM event_hashes WHERE originator_version > 20")
    fresh = open_chain(database_url, yongji)
    try:
        with caplog.at_level(logging.WARNING, logger="grievance.snapshots"):
            loaded = fresh.grievance(gid)
        assert loaded.__dict__ == replayed(fresh, gid)
        assert [r for r in caplog.records if str(gid) in r.getMessage()], "the snapshot set aside is reported"
        notes(fresh, gid, 1, start=40)
        assert fresh.grievance(gid).version == loaded.version + 1
        assert run_sql(database_url, "SELECT originator_version FROM stored_snapshots") == [(loaded.version + 1,)], (
            "the whole history was replayed: a snapshot is taken after the write, and the one set aside is gone"
        )
    finally:
        fresh.close()


@pytest.mark.parametrize("lost", ["originator_version < 22", "originator_version = 1", "originator_version = 9"])
def test_events_deleted_under_a_kept_snapshot_leave_a_broken_history_that_takes_no_command(
    chain: ServiceChain, database_url: str, yongji: OrgChart, lost: str, caplog: pytest.LogCaptureFixture
) -> None:
    gid = claimed(chain)
    notes(chain, gid, 20)
    assert run_sql(database_url, "SELECT originator_version FROM stored_snapshots") == [(22,)]
    run_sql(database_url, f"DELETE FROM stored_events WHERE originator_id = %s AND {lost}", gid)
    fresh = open_chain(database_url, yongji)
    try:
        with caplog.at_level(logging.WARNING, logger="grievance.snapshots"), pytest.raises(BrokenHistory):
            fresh.grievance(gid)
        assert any("set aside" in r.getMessage() for r in caplog.records)
        (result,) = fresh.execute([RecordProgress(grievance_id=gid, command_id="after-the-loss", actor="member-wang",
                                                  occurred_at=T0, note="还在修")], principal=OPERATOR)  # fmt: skip
        assert isinstance(result, BrokenHistory), result
        assert run_sql(database_url, "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = %s",
                       gid) == [(22,)], "nothing was stored on the broken history"  # fmt: skip
    finally:
        fresh.close()


def test_a_forgotten_resident_is_unreadable_in_snapshots_as_in_events(database_url: str, yongji: OrgChart) -> None:
    chain = open_chain(database_url, yongji, sealing=True)
    try:
        # One reported and snapshotted in the same batch (the grievance holds the name as given), one snapshotted later.
        first, second = uuid4(), uuid4()
        batch: list[Any] = [report_command(first, "res-7"), claim_command(first)]
        batch += [RecordProgress(grievance_id=first, command_id=f"f{i}", actor="member-wang", occurred_at=T0, note="n")
                  for i in range(12)]  # fmt: skip
        assert not [r for r in chain.execute(batch, principal=OPERATOR) if isinstance(r, Exception)]
        chain.execute([report_command(second, "res-7")], principal=OPERATOR)
        chain.execute([claim_command(second)], principal=OPERATOR)
        for i in range(12):
            notes(chain, second, 1, start=i)
        stored = run_sql(database_url, "SELECT state FROM stored_snapshots")
        assert len(stored) == 2
        for (state,) in stored:
            assert NAME.encode() not in bytes(state)
            assert b"139 0000" not in bytes(state)
        assert chain.forget_resident("res-7")
    finally:
        chain.close()
    fresh = open_chain(database_url, yongji, sealing=True)
    try:
        counts = reads(fresh)
        for gid in (first, second):
            shown = fresh.grievance(gid)
            assert (shown.resident_name, shown.resident_phone) == (ERASED, ERASED)
        assert [s for s, _ in counts] == [1, 1], "each was loaded from its snapshot"
    finally:
        fresh.close()


def report_command(gid: UUID, resident: str) -> Report:
    return Report(grievance_id=gid, command_id=str(uuid4()), actor="worker-li", occurred_at=T0, unit_id=HOUSEHOLD,
                  category=Category.ELDERLY_CARE, title="独居老人需要照看", description="每周探访",
                  resident=Resident(resident_id=resident, name=NAME, phone=PHONE))  # fmt: skip


def claim_command(gid: UUID) -> Claim:
    return Claim(grievance_id=gid, command_id=str(uuid4()), actor="member-wang", occurred_at=T0, unit_id=HOUSEHOLD,
                 mode=ClaimMode.MEMBER, claimant="member-wang")  # fmt: skip


def test_a_store_made_before_snapshots_gains_the_table_on_open(
    chain: ServiceChain, database_url: str, yongji: OrgChart
) -> None:
    gid = claimed(chain)
    notes(chain, gid, 25)
    run_sql(database_url, "DROP TABLE stored_snapshots")
    reopened = open_chain(database_url, yongji)
    try:
        assert run_sql(database_url, "SELECT COUNT(*) FROM stored_snapshots") == [(0,)]
        assert reopened.grievance(gid).version == 27, "read from the events"
        notes(reopened, gid, 5, start=25)
        assert run_sql(database_url, "SELECT originator_version FROM stored_snapshots") == [(32,)]
        assert not [e for e in reopened.history(gid) if isinstance(e, Grievance.Snapshot)]
    finally:
        reopened.close()


@pytest.mark.parametrize("sealed_by_the_engine", [True, False], ids=["rewritten", "stored-unsealed"])
def test_a_snapshot_rewritten_in_the_database_does_not_open_under_the_engines_key(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, sealed_by_the_engine: bool
) -> None:
    # The digest of the event a snapshot was taken at cannot see its state rewritten (a claimed grievance made to
    # read as resolved): the seal under the server's key can.
    key = tmp_path / "server.key"
    read_secret(key, create=True)
    settings = Settings(database_url=database_url, receipt_key_file=key)
    first = build_chain(settings) if sealed_by_the_engine else ServiceChain(settings.store_env(),
                                                                            chart=build_chart(settings))  # fmt: skip
    try:
        gid = claimed(first)
        notes(first, gid, 30)
    finally:
        first.close()
    ((state,),) = run_sql(database_url, "SELECT state FROM stored_snapshots WHERE originator_id = %s", gid)
    assert b'"claimed"' in bytes(state)
    if sealed_by_the_engine:
        forged = bytes(state).replace(b'"claimed"', b'"resolved"')
        run_sql(database_url, "UPDATE stored_snapshots SET state = %s", forged)
    fresh = build_chain(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="grievance.snapshots"):
            held = fresh.grievance(gid)
        assert held.status == "claimed"
        assert held.version == 32
        assert "is not sealed by this engine's key" in caplog.text
        notes(fresh, gid, 1, start=30)  # and the engine goes on deciding, from the events
    finally:
        fresh.close()


def test_a_snapshot_forged_with_the_stolen_key_is_named_by_verify(database_url: str, tmp_path: Path) -> None:
    # Someone holding the database and the server's key file can rewrite a snapshot and seal it again; the engine
    # then starts loads from it. verify replays the events up to the snapshot and names it as rewritten.
    key = tmp_path / "server.key"
    read_secret(key, create=True)
    settings = Settings(database_url=database_url, receipt_key_file=key)
    chain = build_chain(settings)
    try:
        gid, untouched = claimed(chain), claimed(chain)
        notes(chain, gid, 30)
        notes(chain, untouched, 30)
        assert list(build_audit_trail(chain).verify_all()) == [], "snapshots its events make are not departures"
        ((version, topic, state),) = run_sql(database_url, "SELECT originator_version, topic, state FROM "
                                                          "stored_snapshots WHERE originator_id = %s", gid)  # fmt: skip
        seal = SnapshotSeal(lambda: read_secret(key, create=False))
        taken = bytes(state)[:-SEAL_BYTES].replace(b'"claimed"', b'"resolved"')
        forged = seal.sealed(StoredEvent(originator_id=gid, originator_version=version, topic=topic, state=taken))
        run_sql(database_url, "UPDATE stored_snapshots SET state = %s WHERE originator_id = %s", forged, gid)
    finally:
        chain.close()
    fresh = build_chain(settings)
    try:
        assert fresh.grievance(gid).status == "resolved", "the forgery opens: the engine would decide on it"
        (broken,) = build_audit_trail(fresh).verify_all()
        assert (broken.grievance_id, broken.version, broken.kind) == (gid, version, "grievance")
        assert broken.reason.startswith(f"its snapshot at version {version} is not what its events make")
        assert "status" in broken.reason
        assert build_audit_trail(fresh).verify(untouched) is None
    finally:
        fresh.close()
