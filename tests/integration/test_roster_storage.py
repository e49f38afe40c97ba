"""The roster on each store: entries and rolls stored in the chain's own events, read back by another process,
people's names sealed under their own keys (the residents' keys table, apart from residents' ids), erased by
forgetting the key; every roster event a leaf of the store's Merkle log, and every hash chain intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest

from adapters.audit.transparency import LoggedStore
from adapters.composition import build_audit_trail, build_chain, build_transparency, roster_of
from adapters.settings import Settings
from engine.errors import InvalidValue, UnknownResident
from engine.personal_data import ERASED
from engine.roster import SUBJECT_SCOPE, Kind, entry_uuid, roll_uuid
from engine.roster_book import RosterBook
from engine.roster_commands import Join, Leave, Move
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.integration.test_tamper_evidence import tamper
from tests.scenario import BUILDING, COMMUNITY, HOUSEHOLD

NAME = "王秀英"


@pytest.fixture
def chain(database_url: str) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=database_url))
    yield app
    app.close()


def _join(entry_id: str, kind: Kind, unit_id: str, name: str = NAME, minutes: int = 0, **extra: Any) -> Join:
    return Join(command_id=f"j-{entry_id}", actor="op", occurred_at=T0 + timedelta(minutes=minutes),
                entry_id=entry_id, kind=kind, unit_id=unit_id, name=name, **extra)  # fmt: skip


def _fill(book: RosterBook) -> None:
    results = book.execute([
        _join("m-1", Kind.MEMBER, HOUSEHOLD),
        _join("m-2", Kind.MEMBER, COMMUNITY, "李四"),
        _join("org-1", Kind.PARTY_ORGANISATION, COMMUNITY, "城西第3社区党委", representatives=["m-2"]),
    ], principal=OPERATOR)  # fmt: skip
    assert not [r for r in results if isinstance(r, Exception)], results
    book.apply(Move(command_id="mv", actor="op", occurred_at=T0 + timedelta(minutes=5), entry_id="m-1",
                    to_unit_id=BUILDING), principal=OPERATOR)  # fmt: skip
    book.apply(Leave(command_id="lv", actor="op", occurred_at=T0 + timedelta(minutes=9), entry_id="m-2"),
               principal=OPERATOR)  # fmt: skip


def test_the_roster_is_stored_and_read_back_by_another_process(chain: ServiceChain, database_url: str) -> None:
    _fill(roster_of(chain))
    other = build_chain(Settings(database_url=database_url))
    try:
        book = roster_of(other)
        entry = book.entry("m-1")
        assert (entry.kind, entry.unit_id, entry.name, entry.version) == (Kind.MEMBER, BUILDING, NAME, 2)
        assert book.entry("org-1").representatives == ("m-2",)
        assert not book.entry("m-2").active
        assert book.on_roll(COMMUNITY) == {"org-1": Kind.PARTY_ORGANISATION}
        assert book.on_roll(COMMUNITY, T0 + timedelta(minutes=6)) == {"m-2": Kind.MEMBER,
                                                                      "org-1": Kind.PARTY_ORGANISATION}  # fmt: skip
        assert book.on_roll(HOUSEHOLD) == {}
        assert set(book.rolls([HOUSEHOLD, BUILDING, COMMUNITY, "lg"])) == {HOUSEHOLD, BUILDING, COMMUNITY}
    finally:
        other.close()


def test_a_person_s_name_is_sealed_under_their_own_key_and_a_body_s_is_not(chain: ServiceChain) -> None:
    _fill(roster_of(chain))
    (person, *_) = chain.recorder.select_events(entry_uuid("m-1"))
    assert NAME.encode() not in person.state
    assert json.loads(person.state)["name"].startswith("sealed:v1:")
    (body,) = chain.recorder.select_events(entry_uuid("org-1"))
    assert json.loads(body.state)["name"] == "城西第3社区党委"
    for stored in chain.recorder.select_events(roll_uuid(COMMUNITY)):
        assert NAME.encode() not in stored.state
    keys: Any = cast(Any, chain.mapper).personal_data
    assert keys.knows(SUBJECT_SCOPE + "m-1")
    # A resident's id cannot be a roster person's key: forgetting a resident never erases a member.
    with pytest.raises(UnknownResident):
        chain.forget_resident("m-1")


def test_a_forgotten_person_s_name_reads_erased_and_the_histories_still_verify(
    chain: ServiceChain, database_url: str
) -> None:
    book = roster_of(chain)
    _fill(book)
    assert book.forget("m-1") is True
    assert book.forget("m-1") is False
    with pytest.raises(InvalidValue, match="not personal data"):
        book.forget("org-1")
    other = build_chain(Settings(database_url=database_url))
    try:
        assert roster_of(other).entry("m-1").name == ERASED
        assert roster_of(other).entry("m-2").name == "李四"
        assert list(build_audit_trail(other).verify_all()) == []
    finally:
        other.close()


def test_every_roster_event_is_a_leaf_of_the_store_s_merkle_log(chain: ServiceChain) -> None:
    _fill(roster_of(chain))
    store = cast(LoggedStore, chain.recorder)
    ids = [entry_uuid("m-1"), entry_uuid("m-2"), entry_uuid("org-1"), roll_uuid(HOUSEHOLD), roll_uuid(BUILDING),
           roll_uuid(COMMUNITY)]  # fmt: skip
    leaves = store.select_leaves_of(ids)
    events = store.select_events_of(ids)
    assert sum(len(v) for v in leaves.values()) == len(events) == 14
    size, _ = build_transparency(chain).head()
    assert size == chain.recorder.max_notification_id() == 14


def test_verify_all_counts_the_roster_s_records_apart_from_grievances_and_names_a_broken_one(
    chain: ServiceChain, database_url: str
) -> None:
    _fill(roster_of(chain))
    kinds: Counter[str] = Counter()
    assert list(build_audit_trail(chain).verify_all(on_batch=kinds.update)) == []
    assert kinds == {"roster entry": 3, "unit roll": 3}
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 1",
           b"{}", entry_uuid("org-1"))  # fmt: skip
    env = {**os.environ, "GRIEVANCE_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "adapters.cli", "verify", "--all"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert f"broken: roster entry {entry_uuid('org-1')} at version 1: event altered" in done.stdout
    assert "1 of 6 histories (3 roster entries, 3 unit rolls) broken" in done.stdout
    one = subprocess.run([sys.executable, "-m", "adapters.cli", "verify", str(entry_uuid("org-1"))], env=env,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert "1 of 1 roster entry broken" in one.stdout, one.stdout
