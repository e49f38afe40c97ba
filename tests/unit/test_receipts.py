"""Receipt codes: derived from the grievance under the server's secret (the same for a retry, another under
another secret), read however a resident types them, and found only where the code derives from."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from adapters.http.rate_limits import Limit, RateLimits
from adapters.storage.receipts import LENGTH, Receipts, normalised, read_secret
from engine.errors import ConfigurationError


@pytest.fixture
def datastore(tmp_path: Path) -> SQLiteDatastore:
    return SQLiteDatastore(str(tmp_path / "r.db"))


def test_a_code_derives_from_the_grievance_and_the_secret(datastore: SQLiteDatastore) -> None:
    gid = uuid4()
    one, other = Receipts(datastore, b"a" * 32), Receipts(datastore, b"b" * 32)
    assert one.code_of(gid) == one.code_of(gid)
    assert one.code_of(gid) != other.code_of(gid)
    assert len(one.code_of(gid)) == LENGTH
    assert len({one.code_of(uuid4()) for _ in range(2000)}) == 2000


def test_a_code_is_read_however_it_is_typed() -> None:
    assert normalised("abcd-efgh-jkmn") == "ABCDEFGHJKMN"
    assert normalised(" ABCD EFGH JKMN ") == "ABCDEFGHJKMN"
    assert normalised("oOiI-lL00-1111") == "001111001111"
    for wrong in ("", "ABCD-EFGH-JKM", "ABCD-EFGH-JKMNP", "ABCD-EFGH-JKMU", "ABCD\x00EFGH-JKMN", "Ａ" * 12, "x" * 41):
        assert normalised(wrong) is None


def test_a_row_moved_to_another_grievance_opens_nothing(datastore: SQLiteDatastore, tmp_path: Path) -> None:
    receipts = Receipts(datastore, b"s" * 32)
    mine, theirs = uuid4(), uuid4()
    codes = receipts.issue([mine, theirs])
    assert receipts.issue([mine]) == {mine: codes[mine]}  # issuing again changes nothing
    assert receipts.find(codes[mine]) == mine
    with sqlite3.connect(tmp_path / "r.db") as db:
        db.execute("UPDATE grievance_receipts SET grievance_id = ? WHERE grievance_id = ?", (str(theirs), str(mine)))
    assert receipts.find(codes[mine]) is None
    assert receipts.find(codes[theirs]) == theirs


def test_the_secret_is_made_once_readable_by_its_owner_and_a_bad_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "receipt.key"
    with pytest.raises(ConfigurationError, match="GRIEVANCE_RECEIPT_KEY_FILE"):
        read_secret(path, create=False)
    secret = read_secret(path, create=True)
    assert read_secret(path, create=True) == secret
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("not hex")
    with pytest.raises(ConfigurationError, match="hex"):
        read_secret(path, create=False)
    path.write_text("00ff")
    with pytest.raises(ConfigurationError, match="at least 16"):
        read_secret(path, create=False)


def test_a_bucket_refills_and_forgets_the_least_recently_seen() -> None:
    now = [0.0]
    limits = RateLimits({"page": Limit(burst=2, per_minute=6)}, max_keys=2, clock=lambda: now[0])
    assert [limits.spend("a", "page") for _ in range(3)] == [0, 0, 10]
    now[0] = 10.0
    assert limits.spend("a", "page") == 0
    limits.spend("b", "page")
    limits.spend("c", "page")  # "a" is forgotten: a fresh bucket
    assert limits.spend("a", "page") == 0
