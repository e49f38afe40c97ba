"""Proof of who sent a command on Kafka: what the worker's key book accepts, and why it refuses the rest."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import msgspec
import pytest

from adapters.kafka.intake_sealing import (
    WITHHELD,
    IntakeOpener,
    IntakeSealer,
    Unopened,
    make_intake_key,
    withheld,
)
from adapters.kafka.signatures import (
    AT_HEADER,
    KEY_HEADER,
    SIGNATURE_HEADER,
    CommandSigner,
    KeyBook,
    KeyRole,
    Unverified,
    add_key,
    revoke_key,
    signed_bytes,
)
from engine.access import Role
from engine.chart import OrgChart
from engine.commands import Report, Resident
from engine.errors import ConfigurationError
from engine.grievance import Category
from tests.conftest import T0
from tests.scenario import GRID

Keys = tuple[Path, KeyBook, CommandSigner, CommandSigner]
TOPIC, KEY, VALUE = "grievance.commands", b"9bf3196c-8548-42bb-96e3-90f7fd0ce8f9", b'{"kind": "claim"}'


@pytest.fixture
def keys(tmp_path: Path, yongji: OrgChart) -> Keys:
    """A key file with a grid worker's key and a gateway's; the book that reads it; and both signers."""
    path = tmp_path / "keys.json"
    add_key(path, tmp_path / "li.pem", name="worker-li", role=KeyRole.GRID_WORKER, unit_id=GRID, chart=yongji)
    add_key(path, tmp_path / "app.pem", name="app-gateway", role=KeyRole.GATEWAY, unit_id=None, chart=yongji)
    book = KeyBook(path, yongji, max_age=timedelta(hours=72), skew=timedelta(minutes=5))
    return path, book, CommandSigner.from_file(tmp_path / "li.pem"), CommandSigner.from_file(tmp_path / "app.pem")


def refusal(book: KeyBook, headers: list[tuple[str, bytes]] | None, *, value: bytes = VALUE, topic: str = TOPIC,
            key: bytes = KEY, now: datetime = T0) -> str:  # fmt: skip
    with pytest.raises(Unverified) as refused:
        book.verify(topic, key, value, headers, now)
    return refused.value.code


def test_a_person_signs_as_themselves_and_a_gateway_vouches_for_its_users(keys: Keys) -> None:
    _, book, li, gateway = keys
    worker = book.verify(TOPIC, KEY, VALUE, li.headers(TOPIC, KEY, VALUE, at=T0), T0)
    assert (worker.name, worker.role, worker.unit_id) == ("worker-li", Role.GRID_WORKER, GRID)
    assert book.verify(TOPIC, KEY, VALUE, gateway.headers(TOPIC, KEY, VALUE, at=T0), T0).role is Role.GATEWAY


def test_unsigned_altered_moved_unknown_expired_and_early_messages_are_refused(keys: Keys, tmp_path: Path,
                                                                                yongji: OrgChart) -> None:  # fmt: skip
    _, book, li, _ = keys
    signed = li.headers(TOPIC, KEY, VALUE, at=T0)
    assert refusal(book, None) == "unsigned"
    assert refusal(book, signed, value=b'{"kind": "claim", "actor": "sup-cx"}') == "bad_signature"
    assert refusal(book, signed, topic="grievance.other") == "bad_signature"
    assert refusal(book, signed, key=b"another-grievance") == "bad_signature"
    assert refusal(book, [(k, b"!!" if k == "signature" else v) for k, v in signed]) == "bad_signature"
    add_key(tmp_path / "other.json", tmp_path / "stranger.pem", name="x", role=KeyRole.ADMIN, unit_id=None,
            chart=yongji)  # fmt: skip
    stranger = CommandSigner.from_file(tmp_path / "stranger.pem")
    assert refusal(book, stranger.headers(TOPIC, KEY, VALUE, at=T0)) == "unknown_key"
    assert refusal(book, signed, now=T0 + timedelta(hours=73)) == "expired"  # a replay, days later
    assert refusal(book, li.headers(TOPIC, KEY, VALUE, at=T0 + timedelta(minutes=6))) == "expired"


def test_a_revoked_key_is_refused_without_a_restart(keys: Keys) -> None:
    path, book, li, _ = keys
    headers = li.headers(TOPIC, KEY, VALUE, at=T0)
    book.verify(TOPIC, KEY, VALUE, headers, T0)
    revoke_key(path, li.key_id)
    assert refusal(book, headers) == "revoked_key"


def test_keys_are_checked_when_made_and_private_keys_never_overwritten(tmp_path: Path, yongji: OrgChart) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(ConfigurationError, match="unit"):
        add_key(path, tmp_path / "a.pem", name="w", role=KeyRole.GRID_WORKER, unit_id="nowhere", chart=yongji)
    add_key(path, tmp_path / "b.pem", name="w", role=KeyRole.GRID_WORKER, unit_id=GRID, chart=yongji)
    assert oct((tmp_path / "b.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ConfigurationError, match="never overwritten"):
        add_key(path, tmp_path / "b.pem", name="w", role=KeyRole.GRID_WORKER, unit_id=GRID, chart=yongji)
    with pytest.raises(ConfigurationError, match="no key"):
        revoke_key(path, "0000")


def test_a_sealed_name_lifted_into_another_command_opens_with_nothing(tmp_path: Path) -> None:
    make_intake_key(tmp_path / "intake.pem", tmp_path / "intake.pub.pem")
    sealer = IntakeSealer.from_file(tmp_path / "intake.pub.pem")
    opener = IntakeOpener.from_file(tmp_path / "intake.pem")
    resident = Resident(resident_id="res-1", name="王芳", phone="139 0000 1234")
    original = Report(grievance_id=uuid4(), command_id="mine", actor="w", occurred_at=T0, unit_id=GRID,
                      category=Category.OTHER, title="t", description="d", resident=resident)  # fmt: skip
    sealed = sealer.sealed(original)
    assert isinstance(sealed, Report)
    assert sealed.resident is not None
    assert "王芳" not in sealed.resident.name
    opened = opener.opened(sealed)
    assert isinstance(opened, Report)
    assert opened.resident == resident
    lifted = msgspec.structs.replace(sealed, grievance_id=uuid4(), command_id="theirs")
    with pytest.raises(Unopened) as refused:
        opener.opened(lifted)
    assert refused.value.code == "unreadable_personal_data"
    with pytest.raises(Unopened, match="in clear"):
        opener.opened(original)


def test_a_rejected_copy_that_may_name_a_resident_in_clear_is_withheld() -> None:
    name = "张三".encode()
    assert withheld(b'{"kind": "report", "resident": {"name": "' + name + b'"}}x') == WITHHELD
    assert withheld(b'[{"resident": {"name": "' + name + b'"}}]') == WITHHELD
    assert name not in withheld(b'{"kind": "report", "resident": {"resident_id": "r", "name": "' + name + b'"}}')
    assert withheld(b"{not json") == b"{not json"


def test_signature_at_is_read_as_every_other_time_and_the_key_files_times_are_checked(
    keys: Keys, yongji: OrgChart
) -> None:
    path, book, li, _ = keys
    for when, verdict in (("2026-03-02T08:30+08:00", None), ("2026-03-02T00:30Z", None),
                          ("2026-03-02T08:30:00", "bad_signature")):  # fmt: skip
        signature = li.private_key.sign(signed_bytes(li.key_id, when, TOPIC, KEY, VALUE))
        headers = [(KEY_HEADER, li.key_id.encode()), (AT_HEADER, when.encode()),
                   (SIGNATURE_HEADER, base64.b64encode(signature))]  # fmt: skip
        if verdict is None:
            assert book.verify(TOPIC, KEY, VALUE, headers, T0).name == "worker-li"
        else:
            assert refusal(book, headers) == verdict
    document = json.loads(path.read_text())
    document["keys"][0]["added_at"] = "yesterday"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match=r"keys\[0\]\.added_at: 'yesterday' is not a time"):
        KeyBook(path, yongji, max_age=timedelta(hours=72), skew=timedelta(minutes=5))
