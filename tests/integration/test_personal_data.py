"""Residents' personal data (PIPL): names and phones are stored sealed under a key per resident, kept apart
from the events; forgetting the resident destroys the key, and histories still replay and verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from adapters.audit.export import as_json_lines
from adapters.audit.trail import AuditTrail
from adapters.composition import build_audit_trail, build_chain, build_tracking
from adapters.kafka.relay import EventRelay
from adapters.settings import Settings
from adapters.storage.key_encryption import KeyEncryptionKeys, new_key_encryption_key, retire_key_encryption_key
from engine.chart import OrgChart
from engine.commands import Claim, Command, Report, Resident
from engine.errors import ConfigurationError, UnknownResident
from engine.grievance import Category, ClaimMode
from engine.personal_data import ERASED
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import HOUSEHOLD

NAME, PHONE = "王秀英", "+86 139 0000 1234"


@pytest.fixture
def chain(database_url: str) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=database_url))
    yield app
    app.close()


def report(chain: ServiceChain, resident: str, name: str = NAME, phone: str = PHONE) -> UUID:
    gid = uuid4()
    chain.execute([_command(gid, resident, name, phone)], principal=OPERATOR)
    return gid


def _command(gid: UUID, resident: str, name: str, phone: str) -> Command:
    return Report(
        grievance_id=gid,
        command_id=str(uuid4()),
        actor="grid-worker-li",
        occurred_at=T0,
        unit_id=HOUSEHOLD,
        category=Category.ELDERLY_CARE,
        title="独居老人需要照看",
        description="每周探访",
        resident=Resident(resident_id=resident, name=name, phone=phone),
    )


def stored_state(chain: ServiceChain, gid: UUID) -> bytes:
    (first, *_) = chain.recorder.select_events(gid)
    return first.state


def test_names_and_phones_are_stored_sealed_and_read_back_by_whoever_may(chain: ServiceChain) -> None:
    gid = report(chain, "res-1")
    state = stored_state(chain, gid)
    assert NAME.encode() not in state
    # Not a bare "139": the ciphertext and the ids hold that by chance, about one event in a hundred.
    assert PHONE.encode() not in state
    assert b"139 0000" not in state
    stored = json.loads(state)
    assert stored["resident_name"].startswith("sealed:v1:")
    assert stored["resident_phone"].startswith("sealed:v1:")
    g = chain.grievance(gid)
    assert (g.resident_id, g.resident_name, g.resident_phone) == ("res-1", NAME, PHONE)


def test_a_forgotten_resident_reads_erased_while_the_history_replays_verifies_and_goes_on(
    chain: ServiceChain,
) -> None:
    gid, other = report(chain, "res-2"), report(chain, "res-3", name="李建国")
    before = stored_state(chain, gid)
    assert chain.forget_resident("res-2") is True
    g = chain.grievance(gid)
    assert (g.resident_name, g.resident_phone) == (ERASED, ERASED)
    assert g.title == "独居老人需要照看", "only the personal fields are erased"
    assert chain.grievance(other).resident_name == "李建国"
    assert stored_state(chain, gid) == before, "the event is never edited"
    trail = AuditTrail(chain)
    assert trail.verify(gid) is None, "the hash chain covers the sealed bytes, which did not change"
    exported = as_json_lines(trail.history(gid))
    assert NAME.encode() not in exported
    assert ERASED.encode() in exported
    chain.apply(
        Claim(
            grievance_id=gid,
            command_id="c",
            actor="m",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            mode=ClaimMode.MEMBER,
            claimant="m",
        ),
        principal=OPERATOR,
    )
    assert chain.grievance(gid).version == 2


def test_a_resident_forgotten_then_reporting_again_gets_a_new_key(chain: ServiceChain) -> None:
    old = report(chain, "res-4")
    chain.forget_resident("res-4")
    new = report(chain, "res-4", name="张伟")
    assert chain.grievance(old).resident_name == ERASED
    assert chain.grievance(new).resident_name == "张伟"
    assert chain.forget_resident("res-4") is True  # the new key
    assert chain.forget_resident("res-4") is False  # erased before: nothing more to destroy
    with pytest.raises(UnknownResident, match="no report has named resident 'nobody'"):
        chain.forget_resident("nobody")


class Sent:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Any:
        self.values.append(value)
        return self

    def get(self, timeout: float) -> None:
        return None

    def flush(self) -> None:
        return None


def test_the_events_topic_only_ever_carries_personal_data_sealed(chain: ServiceChain, database_url: str) -> None:
    report(chain, "res-5")
    producer = Sent()
    tracking = build_tracking(Settings(database_url=database_url))
    relay = EventRelay(chain, build_audit_trail(chain), tracking, producer, "grievance.events")
    relay.catch_up()
    (sent,) = producer.values
    assert NAME.encode() not in sent
    assert b'"resident_name":"sealed:v1:' in sent


def test_a_destroyed_key_is_not_left_in_the_sqlite_files(tmp_path: Path, yongji: OrgChart) -> None:
    """secure_delete zeroes what the UPDATE overwrote, and the write-ahead log is checkpointed and truncated."""
    db = tmp_path / "g.db"
    chain = build_chain(Settings(database_url=f"sqlite:///{db}"))
    try:
        report(chain, "res-keyed")
        keys: Any = chain.mapper.personal_data  # type: ignore[attr-defined]
        (row,) = keys._execute(f"SELECT key FROM {keys.table} WHERE resident_id = ?", ("res-keyed",))
        key = bytes(row["key"])
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("g.db"))
        assert key in on_disk
        assert chain.forget_resident("res-keyed")
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("g.db"))
        assert key not in on_disk
    finally:
        chain.close()


def test_keys_wrapped_under_a_key_encryption_key_are_useless_in_a_backup_once_it_is_retired(
    tmp_path: Path, yongji: OrgChart
) -> None:
    """A backup taken before an erasure holds the forgotten resident's key only wrapped; once the key-encryption
    key it was wrapped under is rotated out and retired, no key anywhere opens it."""
    keks, db = tmp_path / "keks.json", tmp_path / "g.db"
    first = new_key_encryption_key(keks)
    settings = Settings(database_url=f"sqlite:///{db}", resident_kek_file=keks)
    chain = build_chain(settings)
    try:
        gid = report(chain, "res-backed-up")
        keys: Any = chain.mapper.personal_data  # type: ignore[attr-defined]
        (row,) = keys._execute(f"SELECT key, kek_id FROM {keys.table} WHERE resident_id = ?", ("res-backed-up",))
        assert row["kek_id"] == first
        backup = (bytes(row["key"]), row["kek_id"])  # what a backup taken now holds
        assert chain.grievance(gid).resident_name == NAME
        chain.forget_resident("res-backed-up")
        report(chain, "res-other")
        second = new_key_encryption_key(keks)
        rotated = KeyEncryptionKeys.from_file(keks)
        keys.keks = rotated
        assert keys.rewrap() == (1, {second})
        retire_key_encryption_key(keks, first, keys.wrapping())
        left = KeyEncryptionKeys.from_file(keks)
        assert first not in left.keys
        with pytest.raises(ConfigurationError):
            left.unwrap(*reversed(backup))
    finally:
        chain.close()


def test_a_batch_naming_new_residents_stores_their_keys_with_its_events_in_one_transaction(
    chain: ServiceChain,
) -> None:
    keys = chain_keys(chain)
    reads: list[str] = []
    execute = keys._execute

    def counted(sql: str, params: Any = ()) -> Any:
        reads.append(sql)
        return execute(sql, params)

    keys._execute = counted
    gids = [uuid4() for _ in range(600)]
    # 600 residents, one of whom reports twice in the batch: past SQLite's 500 ids a query.
    commands = [_command(gid, f"res-{i % 599}", NAME, PHONE) for i, gid in enumerate(gids)]
    results = chain.execute(commands, principal=OPERATOR)
    assert all(not isinstance(r, Exception) for r in results)
    assert len(reads) == 2, f"the batch read its residents' keys in two queries, and wrote none apart: {reads}"
    assert all(sql.startswith("SELECT") for sql in reads)
    assert len(execute(f"SELECT resident_id FROM {keys.table} WHERE key IS NOT NULL")) == 599
    keys._keys.clear()  # read back from the table, not from what this process remembers
    assert {chain.grievance(g).resident_name for g in gids} == {NAME}
    assert chain.grievance(gids[0]).resident_id == chain.grievance(gids[599]).resident_id == "res-0"


def test_a_key_another_writer_stored_meanwhile_wins_and_the_batch_is_sealed_again_under_it(
    database_url: str,
) -> None:
    first, second = build_chain(Settings(database_url=database_url)), build_chain(Settings(database_url=database_url))
    try:
        keys = chain_keys(first)
        prepare = keys.for_batch
        racing = uuid4()
        made: list[bool] = []

        def the_other_writer_first(subjects: Any) -> Any:
            prepared = prepare(subjects)
            made.append("res-race" in prepared.made)
            if made == [True]:
                # Between this batch's read of the keys and its commit, another process reports for the same resident.
                report_in(second, racing, "res-race")
            return prepared

        keys.for_batch = the_other_writer_first
        # As a Kafka worker applies it: the batch's upstream position is stored with it, or not at all.
        gid = uuid4()
        (result,) = first.execute([_command(gid, "res-race", NAME, PHONE)], principal=OPERATOR,
                                  tracking=Tracking("commands-partition-0", 7))  # fmt: skip
        assert not isinstance(result, Exception), result
        assert first.tracked("commands-partition-0") == 7
        keys.for_batch = prepare
        assert made == [True, False], "the batch failed on the key stored meanwhile, and was sealed again under it"
        for app in (first, second):
            chain_keys(app)._keys.clear()
            assert app.grievance(gid).resident_name == NAME
            assert app.grievance(racing).resident_name == NAME
        stored = execute_in(first, f"SELECT count(*) AS n FROM {keys.table} WHERE resident_id = 'res-race'")
        assert stored[0]["n"] == 1
    finally:
        first.close()
        second.close()


def test_a_forgotten_resident_who_reports_again_gets_a_new_key_in_a_batch(chain: ServiceChain) -> None:
    old = report(chain, "res-back")
    assert chain.forget_resident("res-back") is True
    new = report(chain, "res-back", name="王秀兰")
    chain_keys(chain)._keys.clear()
    assert chain.grievance(old).resident_name == ERASED
    assert chain.grievance(new).resident_name == "王秀兰"


def chain_keys(chain: ServiceChain) -> Any:
    return chain.mapper.personal_data  # type: ignore[attr-defined]


def report_in(chain: ServiceChain, gid: UUID, resident: str) -> None:
    (result,) = chain.execute([_command(gid, resident, NAME, PHONE)], principal=OPERATOR)
    assert not isinstance(result, Exception), result


def execute_in(chain: ServiceChain, sql: str) -> list[Any]:
    return chain_keys(chain)._execute(sql)  # type: ignore[no-any-return]


def test_a_resident_forgotten_while_their_first_batch_commits_is_not_remembered_again(chain: ServiceChain) -> None:
    keys = chain_keys(chain)
    prepared = keys.for_batch({"res-late"})
    assert "res-late" in prepared.made
    keys.forget("res-late")  # lands between the batch's commit and its keys being remembered
    prepared.stored()
    assert "res-late" not in keys._keys


@pytest.mark.parametrize("damage", [b"short", "a text, not bytes", b""])
def test_a_damaged_key_in_the_table_is_a_one_line_infrastructure_error_naming_the_table(
    chain: ServiceChain, damage: Any
) -> None:
    from engine.errors import InfrastructureError

    gid = report(chain, "res-damaged")
    keys = chain_keys(chain)
    execute_in(chain, f"SELECT 1 FROM {keys.table}")  # the table exists
    keys._execute(f"UPDATE {keys.table} SET key = ? WHERE resident_id = ?", (damage, "res-damaged"))
    keys._keys.clear()
    with pytest.raises(InfrastructureError, match="resident_keys: the key stored for resident re"):
        chain.grievance(gid)
    with pytest.raises(InfrastructureError, match="edited or damaged"):
        report(chain, "res-damaged")
