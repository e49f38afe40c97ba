"""Verifiable history on SQLite and PostgreSQL: a checkpoint signed before someone with database access rewrites
the store shows each rewrite the hash chain alone lets through (a tail cut, a grievance deleted, an event edited
with its chain recomputed, a forged append inside the checkpoint, events reordered, a rollback), named by
`grievance verify --checkpoint` with exit 4; and `grievance prove` gives proofs that check offline."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.audit.checkpoint import Checkpoint, Cosigner, Signer, new_signing_key, parse_note, sign
from adapters.composition import build_chain, build_transparency
from adapters.settings import Settings
from adapters.storage.hash_chain import GENESIS, link
from adapters.storage.merkle_log import leaf_hash, verify_consistency, verify_inclusion
from engine.service_chain import ServiceChain
from tests.integration.test_tamper_evidence import query, tamper
from tests.scenario import Scenario

ORIGIN = "grievances.test/log"


@pytest.fixture
def chain(database_url: str) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=database_url))
    yield app
    app.close()


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Signer]:
    path = tmp_path / "notary.key"
    return path, new_signing_key(path, ORIGIN)


@pytest.fixture
def lives(chain: ServiceChain) -> list[UUID]:
    """Three grievances of seven events each, stored one after another: leaves 0-6, 7-13 and 14-20."""
    return [Scenario(chain).answered_then_reopened() for _ in range(3)]


class Cli:
    def __init__(self, database_url: str, key: tuple[Path, Signer], tmp_path: Path) -> None:
        self.env = {"GRIEVANCE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
        self.key_file, self.signer = key
        self.folder = tmp_path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    def checkpoint(self, name: str = "old.checkpoint") -> Path:
        done = self("checkpoint", "--key", str(self.key_file))
        assert done.returncode == 0, done.stderr
        path = self.folder / name
        path.write_text(done.stdout)
        return path

    def verify(self, checkpoint: Path, *args: str) -> tuple[int, dict[str, Any]]:
        done = self("verify", *(args or ("--all",)), "--checkpoint", str(checkpoint), "--verifier-key",
                    self.signer.verifier.encoded(), "--json")  # fmt: skip
        assert done.returncode in (0, 4), done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def cli(database_url: str, key: tuple[Path, Signer], tmp_path: Path) -> Cli:
    return Cli(database_url, key, tmp_path)


def is_sqlite(database_url: str) -> bool:
    return urlsplit(database_url).scheme == "sqlite"


def kinds(report: dict[str, Any]) -> list[str]:
    return [f["kind"] for f in report["findings"]]


def test_an_untouched_store_extends_its_checkpoint_and_says_what_it_cannot_see(
    chain: ServiceChain, lives: list[UUID], cli: Cli
) -> None:
    old = cli.checkpoint()
    signed = parse_note(old.read_text())
    assert signed.signed_by(cli.signer.verifier)
    assert (signed.checkpoint.origin, signed.checkpoint.size) == (ORIGIN, 21)
    Scenario(chain).answered_then_reopened()
    code, report = cli.verify(old)
    assert (code, report["events"], report["unseen"], report["findings"]) == (0, 28, 7, [])
    text = cli("verify", "--all", "--checkpoint", str(old))
    assert text.returncode == 0, text.stderr
    assert "intact: the store's 28 events extend checkpoint grievances.test/log of 21 leaves append-only" in text.stdout
    assert "unseen: 7 events were written after the checkpoint" in text.stdout
    assert "signature was not checked" in text.stdout
    for gid in lives:
        assert cli.verify(old, str(gid))[0] == 0


def test_a_tail_cut_is_named(lives: list[UUID], cli: Cli, database_url: str) -> None:
    old = cli.checkpoint()
    last = lives[2]
    for table in ("stored_events", "event_hashes"):
        tamper(database_url, f"DELETE FROM {table} WHERE originator_id = %s AND originator_version >= 6", last)
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    code, report = cli.verify(old)
    assert (code, kinds(report)) == (4, ["tail_cut"])
    assert report["findings"][0]["leaf_index"] == 19
    reason = report["findings"][0]["reason"]
    assert "the store holds 19 events, the checkpoint covers 21: the last 2 were deleted" in reason
    # The grievance's own check: nothing of its rows is missing, but two leaves of the checkpoint lost theirs.
    code, one = cli.verify(old, str(last))
    assert (code, kinds(one)) == (4, ["events_removed"])
    assert one["findings"][0]["leaf_index"] == 19
    assert one["findings"][0]["reason"] == (
        f"leaves 19–20 of the checkpoint (2 events) have lost their events together with their hashes; grievance "
        f"{last}'s may be among them (its last stored event is version 5 at leaf 18): verify --all --checkpoint "
        "names whose they were"
    )
    text = cli("verify", str(last), "--checkpoint", str(old))
    assert text.returncode == 4
    assert "unseen:" not in text.stdout, "every event of the grievance is inside the checkpoint"


def test_a_deleted_grievance_is_named(lives: list[UUID], cli: Cli, database_url: str) -> None:
    old = cli.checkpoint()
    for table in ("stored_events", "event_hashes"):
        tamper(database_url, f"DELETE FROM {table} WHERE originator_id = %s", lives[1])
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    code, report = cli.verify(old)
    assert (code, kinds(report)[0]) == (4, "events_removed")
    first = report["findings"][0]
    assert first["leaf_index"] == 7
    assert (
        f"7 events before grievance {lives[2]} version 1 (inside the checkpoint) were deleted, their hashes too"
        in (first["reason"])
    )


def test_a_deleted_grievance_whose_hashes_remain_is_named_by_id(lives: list[UUID], cli: Cli, database_url: str) -> None:
    old = cli.checkpoint()
    tamper(database_url, "DELETE FROM stored_events WHERE originator_id = %s", lives[1])
    code, report = cli.verify(old)
    assert (code, kinds(report)[0]) == (4, "grievance_deleted")
    first = report["findings"][0]
    assert (first["leaf_index"], first["grievance_id"], first["version"]) == (7, str(lives[1]), 1)
    assert f"grievance {lives[1]} is gone, its hashes kept; leaf 7 was its version 1" in first["reason"]
    code, one = cli.verify(old, str(lives[1]))
    assert (code, kinds(one)) == (4, ["event_missing"] * 7)


def rechain(chain: ServiceChain, database_url: str, gid: UUID) -> None:
    """Recompute a grievance's chained hashes from its stored events, as someone covering an edit would."""
    previous = GENESIS
    for event in chain.recorder.select_events(gid):
        previous = link(previous, event)
        tamper(database_url, "UPDATE event_hashes SET hash = %s WHERE originator_id = %s AND originator_version = %s",
               previous, gid, event.originator_version)  # fmt: skip


def test_an_edited_event_with_its_chain_recomputed_is_named(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    gid = lives[0]
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 1",
           b'{"title": "nothing happened"}', gid)  # fmt: skip
    rechain(chain, database_url, gid)
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    code, report = cli.verify(old)
    assert (code, kinds(report)[0]) == (4, "event_altered")
    first = report["findings"][0]
    assert (first["leaf_index"], first["grievance_id"], first["version"]) == (0, str(gid), 1)
    code, one = cli.verify(old, str(gid))
    assert code == 4
    assert [(f["kind"], f["version"]) for f in one["findings"]] == [("event_altered", v) for v in range(1, 8)]
    assert cli.verify(old, str(lives[1]))[0] == 0


def forged_event(chain: ServiceChain, gid: UUID) -> tuple[StoredEvent, bytes]:
    """An eighth event for a grievance of seven, chained as the engine would: what a forger with the code writes."""
    events = list(chain.recorder.select_events(gid))
    previous = GENESIS
    for e in events:
        previous = link(previous, e)
    forged = StoredEvent(originator_id=gid, originator_version=8, topic=events[-1].topic, state=events[-1].state)
    return forged, link(previous, forged)


def test_a_forged_append_inside_the_checkpoint_is_named(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    gid = lives[0]
    forged, chained = forged_event(chain, gid)
    nid = "rowid" if is_sqlite(database_url) else "notification_id"
    # Room made after the grievance's seventh event, so the forgery stands inside the checkpoint at leaf 7.
    tamper(database_url, f"UPDATE stored_events SET {nid} = {nid} + 1000 WHERE {nid} > 7")
    tamper(database_url, f"INSERT INTO stored_events ({nid}, originator_id, originator_version, topic, state) "
           "VALUES (8, %s, 8, %s, %s)", gid, forged.topic, forged.state)  # fmt: skip
    tamper(database_url, "INSERT INTO event_hashes (originator_id, originator_version, hash) VALUES (%s, 8, %s)",
           gid, chained)  # fmt: skip
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    code, report = cli.verify(old)
    assert (code, kinds(report)[0]) == (4, "forged")
    first = report["findings"][0]
    assert (first["leaf_index"], first["grievance_id"], first["version"]) == (7, str(gid), 8)
    assert "inside the checkpoint" in first["reason"]
    assert kinds(cli.verify(old, str(gid))[1]) == ["not_in_log"]


def test_a_forged_append_after_the_checkpoint_shows_against_the_log(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    forged, chained = forged_event(chain, lives[1])
    tamper(database_url, "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
           "VALUES (%s, 8, %s, %s)", lives[1], forged.topic, forged.state)  # fmt: skip
    tamper(database_url, "INSERT INTO event_hashes (originator_id, originator_version, hash) VALUES (%s, 8, %s)",
           lives[1], chained)  # fmt: skip
    code, report = cli.verify(old)
    assert (code, kinds(report)) == (4, ["forged"])
    assert "leaf 21 (after the checkpoint)" in report["findings"][0]["reason"]


def test_reordered_events_are_named(lives: list[UUID], cli: Cli, database_url: str) -> None:
    old = cli.checkpoint()
    nid = "rowid" if is_sqlite(database_url) else "notification_id"
    for a, b in ((3, 1003), (17, 3), (1003, 17)):
        tamper(database_url, f"UPDATE stored_events SET {nid} = %s WHERE {nid} = %s", b, a)
    code, report = cli.verify(old)
    assert (code, kinds(report)[0]) == (4, "reordered")
    assert report["findings"][0]["leaf_index"] == 2


def roll_back(database_url: str, size: int) -> None:
    """The store as a copy taken when it held `size` events: its later events, hashes and log nodes gone."""
    nid = "rowid" if is_sqlite(database_url) else "notification_id"
    tamper(database_url, "DELETE FROM event_hashes WHERE leaf_index >= %s", size)
    tamper(database_url, f"DELETE FROM stored_events WHERE {nid} > %s", size)
    cut_log(database_url, size)


def cut_log(database_url: str, size: int) -> None:
    """The log's tiles as they were at `size` leaves: tiles wholly beyond gone, the edge tile of each level cut to
    the bottom hashes it held then (a tile's bottom row comes first, full or not)."""
    # Tile (t, k) holds the nodes of level 8t from 256k on; a log of `size` leaves has size >> 8t of them.
    tamper(database_url, "DELETE FROM log_tiles WHERE (%s >> (8 * level)) <= 256 * idx", size)
    tamper(database_url, "UPDATE log_tiles SET hashes = substr(hashes, 1, CAST(32 * ((%s >> (8 * level)) - 256 * idx) "
           "AS INTEGER)) WHERE (%s >> (8 * level)) - 256 * idx < 256", size, size)  # fmt: skip


def alter_leaves(database_url: str, first: int, count: int) -> None:
    """Overwrite `count` leaves of the log's first tile from leaf `first` on with zeros, as a DBA could."""
    ((hashes,),) = query(database_url, "SELECT hashes FROM log_tiles WHERE level = 0 AND idx = 0")
    hashes = bytes(hashes)
    altered = hashes[: 32 * first] + bytes(32 * count) + hashes[32 * (first + count) :]
    tamper(database_url, "UPDATE log_tiles SET hashes = %s WHERE level = 0 AND idx = 0", altered)


def cut_leaves(database_url: str, keep: int) -> None:
    """The log's first tile cut to its first `keep` leaves, the rest of its rows left as they are."""
    tamper(database_url, "UPDATE log_tiles SET hashes = substr(hashes, 1, %s) WHERE level = 0 AND idx = 0", 32 * keep)


def test_a_rollback_to_an_earlier_copy_is_named_and_so_is_writing_over_it(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    roll_back(database_url, 14)
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    code, report = cli.verify(old)
    assert (code, kinds(report)) == (4, ["rolled_back"])
    assert kinds(cli.verify(old, str(lives[0]))[1])[0] == "rolled_back"
    reason = report["findings"][0]["reason"]
    assert "the store holds 14 events and its log 14 leaves, fewer than the checkpoint's 21" in reason
    # Written since: the rolled-back store grows past the checkpoint again, its log consistent with itself.
    reopened = build_chain(Settings(database_url=database_url))
    try:
        Scenario(reopened).answered_then_reopened()
    finally:
        reopened.close()
    code, report = cli.verify(old)
    assert (code, kinds(report)) == (4, ["log_rewritten"])
    proof = cli("prove", str(lives[0]), "--checkpoint", str(old), "--json")
    assert proof.returncode == 4
    assert proof.stderr.startswith("error: checkpoint: the store's log of 21 leaves does not have the checkpoint's")


def test_a_proof_checks_offline_against_the_checkpoint(chain: ServiceChain, lives: list[UUID], cli: Cli) -> None:
    old = cli.checkpoint()
    Scenario(chain).answered_then_reopened()
    done = cli("prove", str(lives[1]), "--checkpoint", str(old), "--verifier-key", cli.signer.verifier.encoded(),
               "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    signed = parse_note(doc["checkpoint"])
    assert signed.signed_by(cli.signer.verifier)
    root, size = signed.checkpoint.root, signed.checkpoint.size
    previous = GENESIS
    assert [e["leaf_index"] for e in doc["events"]] == list(range(7, 14))
    for e in doc["events"]:
        event = StoredEvent(originator_id=lives[1], originator_version=e["version"], topic=e["topic"],
                            state=base64.b64decode(e["state"]))  # fmt: skip
        previous = link(previous, event)
        assert previous.hex() == e["chained_hash"]
        proof = [bytes.fromhex(h) for h in e["inclusion_proof"]]
        assert verify_inclusion(e["leaf_index"], size, leaf_hash(previous), proof, root)
    assert build_transparency(chain).head()[0] == 28
    # The auditor's own check, with no database: intact as printed, broken by any altered byte of the bytes stored.
    document = cli.folder / "proof.json"
    document.write_text(done.stdout)
    offline = [sys.executable, "-m", "adapters.audit.offline_verifier", str(document), "--verifier-key",
               cli.signer.verifier.encoded()]  # fmt: skip
    ok = subprocess.run(offline, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"verified: grievance {lives[1]}: versions 1-7 (leaves "), ok.stdout
    state = base64.b64decode(doc["events"][2]["state"])
    doc["events"][2]["state"] = base64.b64encode(state.replace(b"1", b"2", 1)).decode()
    document.write_text(json.dumps(doc))
    broken = subprocess.run(offline, capture_output=True, text=True, timeout=60, check=False)
    assert (broken.returncode, broken.stderr.strip()) == (
        4,
        "error: events[2].chained_hash: not the hash its topic, stored bytes and the event before it chain to "
        "[broken]",
    )  # fmt: skip


def test_a_bad_checkpoint_or_key_is_one_line(lives: list[UUID], cli: Cli, tmp_path: Path) -> None:
    old = cli.checkpoint()
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(old.read_text().replace("\n21\n", "\n20\n"))
    done = cli("verify", "--all", "--checkpoint", str(forged), "--verifier-key", cli.signer.verifier.encoded())
    assert done.returncode == 1
    assert done.stderr.startswith("error: checkpoint: not signed by grievances.test/log+")
    assert done.stderr.rstrip().endswith("[bad_checkpoint]")
    again = cli("checkpoint-key", str(cli.key_file), "--name", ORIGIN)
    assert (again.returncode, again.stderr.strip()) == (
        1, f"error: file: {cli.key_file} exists; a signing key is never overwritten [bad_checkpoint]"
    )  # fmt: skip
    missing = cli("checkpoint", "--key", str(tmp_path / "nope.key"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: key: ")


def test_a_consistency_proof_joins_two_checkpoints_and_a_rewrite_between_them_has_none(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    Scenario(chain).answered_then_reopened()
    new = cli.checkpoint("new.checkpoint")
    done = cli("prove", "--consistency", "--from", str(old), "--checkpoint", str(new), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    a, b = parse_note(doc["from"]).checkpoint, parse_note(doc["to"]).checkpoint
    assert (doc["old_size"], doc["new_size"]) == (a.size, b.size) == (21, 28)
    assert verify_consistency(21, 28, [bytes.fromhex(h) for h in doc["proof"]], a.root, b.root)
    # The store rolled back to 14 events and written again past 21: a checkpoint now is no extension of the old one.
    roll_back(database_url, 14)
    reopened = build_chain(Settings(database_url=database_url))
    try:
        for _ in range(2):
            Scenario(reopened).answered_then_reopened()
    finally:
        reopened.close()
    rewritten = cli.checkpoint("rewritten.checkpoint")
    refused = cli("prove", "--consistency", "--from", str(old), "--checkpoint", str(rewritten))
    assert refused.returncode == 4
    assert refused.stderr.strip() == ("error: checkpoint: the checkpoint of 21 leaves is not a prefix of the one of "
                                      "28 leaves: the log was rewritten between them [not_consistent]")  # fmt: skip
    backwards = cli("prove", "--consistency", "--from", str(new), "--checkpoint", str(old))
    assert backwards.returncode == 4
    assert "[rolled_back]" in backwards.stderr


def test_a_witness_cosigns_only_a_log_that_grew_from_what_it_cosigned_last(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str, tmp_path: Path
) -> None:
    auditor_key = tmp_path / "auditor.key"
    auditor = new_signing_key(auditor_key, "audit.example.org/w1")
    log_key = cli.signer.verifier.encoded()

    def witness(checkpoint: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return cli("witness", "--key", str(auditor_key), "--log-key", log_key, str(checkpoint), *args)

    first = witness(cli.checkpoint())
    assert first.returncode == 0, first.stderr
    assert "cosigned 21 leaves (the first: taken on trust) as audit.example.org/w1+" in first.stderr
    Scenario(chain).answered_then_reopened()
    second = witness(cli.checkpoint("new.checkpoint"))
    assert second.returncode == 0, second.stderr
    cosigned = parse_note(second.stdout)
    assert cosigned.checkpoint.size == 28
    assert cosigned.signed_by(cli.signer.verifier)
    assert Cosigner.of(auditor).cosigned_at(cosigned) is not None
    assert Cosigner.of(auditor).cosigned_at(parse_note(cli.checkpoint("plain.checkpoint").read_text())) is None
    state = tmp_path / "auditor.key.state"
    assert state.read_text() == second.stdout
    # Rolled back and written over: a checkpoint signed with the log's own key now, but of another history.
    roll_back(database_url, 14)
    reopened = build_chain(Settings(database_url=database_url))
    try:
        for _ in range(3):
            Scenario(reopened).answered_then_reopened()
    finally:
        reopened.close()
    refused = witness(cli.checkpoint("rewritten.checkpoint"))
    assert refused.returncode == 4
    assert refused.stderr.strip() == ("error: checkpoint: the checkpoint of 28 leaves is not a prefix of the one of "
                                      "35 leaves: the log was rewritten between them [not_consistent]")  # fmt: skip
    assert state.read_text() == second.stdout, "nothing cosigned, the state unchanged"
    other = tmp_path / "other.checkpoint"
    other.write_text(second.stdout)
    stranger = cli("witness", "--key", str(auditor_key), "--log-key", auditor.verifier.encoded(), str(other))
    assert stranger.returncode == 1
    assert stranger.stderr.startswith("error: checkpoint: not signed by the log's key audit.example.org/w1+")


def test_a_witness_checks_a_proof_it_is_given_without_the_store(lives: list[UUID], cli: Cli, tmp_path: Path) -> None:
    auditor_key = tmp_path / "auditor.key"
    new_signing_key(auditor_key, "audit.example.org/w1")
    old = cli.checkpoint()
    assert (
        cli("witness", "--key", str(auditor_key), "--log-key", cli.signer.verifier.encoded(), str(old)).returncode == 0
    )
    new = cli.checkpoint("new.checkpoint")  # the same size: an empty proof joins them
    proof = tmp_path / "proof.json"
    proof.write_text(cli("prove", "--consistency", "--from", str(old), "--checkpoint", str(new), "--json").stdout)
    offline = Cli("sqlite:////nonexistent/dir/store.db", (cli.key_file, cli.signer), tmp_path)
    done = offline("witness", "--key", str(auditor_key), "--log-key", cli.signer.verifier.encoded(), str(new),
                   "--proof", str(proof))  # fmt: skip
    assert done.returncode == 0, done.stderr
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"old_size": 21, "new_size": 21, "proof": ["00" * 32]}))
    refused = offline("witness", "--key", str(auditor_key), "--log-key", cli.signer.verifier.encoded(), str(new),
                      "--proof", str(forged))  # fmt: skip
    assert refused.returncode == 4
    assert "[not_consistent]" in refused.stderr


def published_size(directory: Path) -> int | None:
    latest = directory / "latest"
    return parse_note(latest.read_text()).checkpoint.size if latest.exists() else None


def wait_for(check: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Until `check` holds (the notary publishes in its own time), failing if the notary stops first."""
    deadline = time.monotonic() + 60
    while not check():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the notary published nothing in a minute"
        time.sleep(0.05)


def test_the_notary_publishes_each_head_and_never_one_that_does_not_extend_the_last(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "checkpoints"
    command = [sys.executable, "-m", "adapters.cli", "notary", "--key", str(cli.key_file), "--every", "0.1",
               "--dir", str(folder)]  # fmt: skip
    notary = subprocess.Popen(command, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: published_size(folder) == 21, notary)
        Scenario(chain).answered_then_reopened()
        wait_for(lambda: published_size(folder) == 28, notary)
    finally:
        notary.send_signal(signal.SIGTERM)
        out, err = notary.communicate(timeout=60)
    assert notary.returncode == 0, err
    # A grievance's seven events are stored in several transactions: the notary may have signed a head between them.
    names = {p.name for p in folder.iterdir()}
    assert {"checkpoint.21", "checkpoint.28", "latest"} <= names
    assert all(name == "latest" or 21 <= int(name.removeprefix("checkpoint.")) <= 28 for name in names), names
    assert parse_note((folder / "checkpoint.21").read_text()).signed_by(cli.signer.verifier)
    assert "checkpoint of 28 leaves" in out
    roll_back(database_url, 14)
    reopened = build_chain(Settings(database_url=database_url))
    try:
        for _ in range(3):
            Scenario(reopened).answered_then_reopened()
    finally:
        reopened.close()
    refused = subprocess.run(command, env=cli.env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 4
    assert "[not_consistent]" in refused.stderr
    assert published_size(folder) == 28, "nothing published over the last good checkpoint"


def test_prove_refuses_an_event_whose_stored_bytes_are_not_its_leaf(
    lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    gid = lives[1]
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 3",
           b'{"note": "never said"}', gid)  # fmt: skip
    done = cli("prove", str(gid), "--checkpoint", str(old), "--json")
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr.startswith(f"error: history: grievance {gid} version 3 (leaf 9): its stored bytes chain to ")
    assert "not to the hash the log's leaf was appended with" in done.stderr
    assert done.stderr.rstrip().endswith("[event_altered]")
    assert cli("prove", str(lives[0]), "--checkpoint", str(old)).returncode == 0, "the others still prove"


def test_prove_refuses_an_edit_covered_by_a_recomputed_chain(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    gid = lives[2]
    tamper(database_url, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 1",
           b'{"title": "nothing happened"}', gid)  # fmt: skip
    rechain(chain, database_url, gid)
    assert cli("verify", str(gid)).returncode == 0, "the hash chain alone cannot see it"
    done = cli("prove", str(gid), "--checkpoint", str(old))
    assert done.returncode == 4
    assert f"grievance {gid} version 1 (leaf 14)" in done.stderr
    assert "[event_altered]" in done.stderr


def test_prove_names_the_log_when_its_leaf_was_altered_or_deleted(
    lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    gid = lives[0]
    alter_leaves(database_url, 2, 1)
    done = cli("prove", str(gid), "--checkpoint", str(old))
    assert done.returncode == 4
    # Below a full tile no interior node is stored: the root is folded from the leaves, so an altered leaf is a
    # log that no longer has the checkpoint's root.
    assert (
        done.stderr == "error: checkpoint: the store's log of 21 leaves does not have the checkpoint's root hash "
        "[log_rewritten]\n"
    )
    cut_leaves(database_url, 2)
    missing = cli("prove", str(gid), "--checkpoint", str(old))
    assert missing.returncode == 4
    assert "Traceback" not in missing.stderr
    # A tile cut short is a log that has fewer leaves than the checkpoint: refused before any proof is read.
    assert (
        missing.stderr == "error: checkpoint: the store's log has 2 leaves, fewer than the checkpoint's 21 "
        "[rolled_back]\n"
    )


def test_the_notary_signs_once_in_the_directory_the_setting_names(
    chain: ServiceChain, lives: list[UUID], cli: Cli, tmp_path: Path
) -> None:
    nowhere = cli("notary", "--key", str(cli.key_file), "--once")
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == (
        "error: --dir: give the directory to publish checkpoints in, or set GRIEVANCE_CHECKPOINTS_DIR [invalid_value]"
    )
    neither = cli("notary", "--key", str(cli.key_file), "--dir", str(tmp_path / "x"))
    assert neither.returncode == 1
    assert neither.stderr.startswith("error: --every: give --every SECONDS to sign on a schedule, or --once")
    folder = tmp_path / "published"
    cli.env["GRIEVANCE_CHECKPOINTS_DIR"] = str(folder)
    first = cli("notary", "--key", str(cli.key_file), "--once")
    assert first.returncode == 0, first.stderr
    assert "checkpoint of 21 leaves, root " in first.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.21", "latest"]
    again = cli("notary", "--key", str(cli.key_file), "--once")
    assert (again.returncode, again.stdout.strip()) == (0, f"the log has not grown since the checkpoint published "
                                                           f"last in {folder}")  # fmt: skip
    Scenario(chain).answered_then_reopened()
    elsewhere = tmp_path / "given"
    assert cli("notary", "--key", str(cli.key_file), "--once", "--dir", str(elsewhere)).returncode == 0
    assert published_size(elsewhere) == 28, "--dir wins over the setting"
    assert published_size(folder) == 21


def test_the_logs_own_nodes_deleted_or_altered_are_named_as_the_logs_not_the_events(
    lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    alter_leaves(database_url, 3, 1)
    cut_leaves(database_url, 10)
    code, report = cli.verify(old)
    assert code == 4
    assert [(f["kind"], f["leaf_index"], f["reason"]) for f in report["findings"]] == [
        ("log_damaged", 3, "leaf 3 of the store's log was altered; the events still hash to the checkpoint's root: "
                           "the log's stored nodes were changed, not the events"),
        ("log_damaged", 10, "the store's log lacks the leaves of 11 more events (leaf 10 first): rows of its nodes "
                            "were deleted"),
    ]  # fmt: skip
    text = cli("verify", "--all", "--checkpoint", str(old))
    assert "disagree" not in text.stdout
    alter_leaves(database_url, 5, 2)
    code, report = cli.verify(old)
    assert [(f["kind"], f["leaf_index"]) for f in report["findings"]] == [("log_damaged", 3), ("log_damaged", 10),
                                                                           ("log_damaged", 5)]  # fmt: skip
    assert report["findings"][2]["reason"] == ("2 more leaves of the store's log inside the checkpoint were altered "
                                               "(leaf 5 first)")  # fmt: skip


def test_a_store_rolled_back_to_a_copy_taken_before_the_log_grew_is_named_against_a_later_checkpoint(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    Scenario(chain).answered_then_reopened()
    new = cli.checkpoint("new.checkpoint")
    roll_back(database_url, 21)  # exactly the store as it stood at the old checkpoint
    assert cli("verify", "--all").returncode == 0, "the hash chain alone cannot see it"
    assert cli.verify(old)[0] == 0, "the copy is the old checkpoint's store"
    code, report = cli.verify(new)
    assert (code, kinds(report)) == (4, ["rolled_back"])
    assert (
        "the store holds 21 events and its log 21 leaves, fewer than the checkpoint's 28"
        in (report["findings"][0]["reason"])
    )
    assert kinds(cli.verify(new, str(lives[0]))[1])[0] == "rolled_back"
    proof = cli("prove", str(lives[0]), "--checkpoint", str(new))
    assert proof.returncode == 4
    assert proof.stderr.rstrip().endswith("[rolled_back]")


def test_a_checkpoint_of_another_log_is_not_this_stores(lives: list[UUID], cli: Cli, tmp_path: Path) -> None:
    other = new_signing_key(tmp_path / "other.key", "elsewhere.test/log")
    theirs = tmp_path / "theirs.checkpoint"
    theirs.write_text(sign(Checkpoint(other.name, 21, bytes(32)), other).note())
    refused = cli("verify", "--all", "--checkpoint", str(theirs), "--verifier-key", cli.signer.verifier.encoded())
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: checkpoint: not signed by grievances.test/log+")
    # Our log's key over another origin: not a checkpoint of this log, whatever signed it.
    ours_signing_theirs = tmp_path / "misnamed.checkpoint"
    size, root = head_of(cli)
    ours_signing_theirs.write_text(sign(Checkpoint(other.name, size, root), cli.signer).note())
    misnamed = cli("verify", "--all", "--checkpoint", str(ours_signing_theirs), "--verifier-key",
                   cli.signer.verifier.encoded())  # fmt: skip
    assert misnamed.returncode == 1
    assert misnamed.stderr.strip() == ("error: checkpoint: is of the log 'elsewhere.test/log', not "
                                       "'grievances.test/log' whose key signed it [bad_checkpoint]")  # fmt: skip
    # Its own key given: the signature checks, and the store does not bear it out.
    done = cli("verify", "--all", "--checkpoint", str(theirs), "--verifier-key", other.verifier.encoded(), "--json")
    assert done.returncode == 4
    assert kinds(json.loads(done.stdout)) == ["log_rewritten"]


def head_of(cli: Cli) -> tuple[int, bytes]:
    """The store's head, as a checkpoint the notary signs says it."""
    signed = parse_note(cli.checkpoint("head.checkpoint").read_text())
    return signed.checkpoint.size, signed.checkpoint.root


def test_a_wiped_log_is_not_rebuilt_over_the_events_at_open_but_an_old_store_still_gets_its_log(
    chain: ServiceChain, lives: list[UUID], cli: Cli, database_url: str
) -> None:
    old = cli.checkpoint()
    chain.close()
    tamper(database_url, "DELETE FROM log_tiles")
    for verb in (("check",), ("verify", "--all"), ("verify", "--all", "--checkpoint", str(old))):
        done = cli(*verb)
        assert done.returncode == 3, (verb, done.stderr)
        assert done.stderr.startswith("error: log: the store's events were appended to its Merkle log (event_hashes "
                                      "holds their leaf indexes) but log_tiles is empty (and no log_nodes is left to "
                                      "move into it): it was wiped")  # fmt: skip
        assert "Traceback" not in done.stderr
    assert tamper(database_url, "DELETE FROM log_tiles") == 0, "no opening rebuilt it"
    # A store made before the log (no leaf index recorded yet) still gets its leaves at open.
    tamper(database_url, "UPDATE event_hashes SET leaf_index = NULL")
    assert cli("check").returncode == 0
    code, report = cli.verify(old)
    assert (code, report["findings"]) == (0, [])
