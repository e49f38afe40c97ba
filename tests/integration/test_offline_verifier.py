"""The offline verifier: a proof `grievance prove --json` gives from a real store checks with nothing but the proof
and the keys; any one byte changed in its hashes, proofs, stored bytes or signatures fails it, with exit 4 naming
where; and it runs importing only the standard library and `cryptography`, as a module or as the one file
`grievance offline-verifier` writes."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.audit.checkpoint import (
    Checkpoint,
    Cosigner,
    SignedCheckpoint,
    Signer,
    cosign,
    new_signing_key,
    parse_note,
)
from adapters.audit.offline_verifier import Broken, check, check_consistency
from adapters.audit.transparency import proof_document
from adapters.composition import build_chain, build_transparency
from adapters.settings import Settings
from engine.service_chain import ServiceChain
from tests.scenario import Scenario

ORIGIN = "grievances.test/log"
LOG = Signer(ORIGIN, Ed25519PrivateKey.generate())
WITNESS = Signer("witness.test/w1", Ed25519PrivateKey.generate())
# What the verifier must never load, even indirectly: the engine's own libraries and the database's driver.
FORBIDDEN = ("msgspec", "eventsourcing", "psycopg", "click", "litestar", "rich", "structlog", "engine", "projections",
             "schemas")  # fmt: skip
BLOCKING = f"""
import runpy, sys
FORBIDDEN = {FORBIDDEN!r}
class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError("the offline verifier imported " + name)
sys.meta_path.insert(0, Forbid())
target, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_path(target, run_name="__main__") if target.endswith(".pyz") else runpy.run_module(
        target, run_name="__main__", alter_sys=True)
finally:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    assert not loaded, loaded
    if target.endswith(".pyz"):
        outside = sorted(m for m, v in sys.modules.items() if m.split(".")[0] == "adapters"
                         and not (getattr(v, "__file__", None) or target).startswith(target))
        assert not outside, outside
"""


def proof_of(chain: ServiceChain, grievance_id: UUID, *witnesses: Signer) -> dict[str, Any]:
    """The proof `prove --json` prints, of the store's head now, cosigned by `witnesses`."""
    transparency = build_transparency(chain)
    signed = transparency.checkpoint(LOG)
    for w in witnesses:
        signed = cosign(signed, w, 1_700_000_000)
    document = proof_document(grievance_id, signed, transparency.prove(grievance_id, signed.checkpoint))
    loaded: dict[str, Any] = json.loads(msgspec.json.encode(document))
    return loaded


@pytest.fixture
def chain(database_url: str) -> Iterator[ServiceChain]:
    app = build_chain(Settings(database_url=database_url))
    yield app
    app.close()


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A proof of the second of three grievances (leaves 7-13 of 21), cosigned by one witness, from SQLite."""
    app = build_chain(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('store')}/grievances.db"))
    try:
        lives = [Scenario(app).answered_then_reopened() for _ in range(3)]
        return proof_of(app, lives[1], WITNESS)
    finally:
        app.close()


def verifies(document: object) -> bool:
    try:
        check(document, LOG.verifier, [Cosigner.of(WITNESS)])
    except Broken:
        return False
    return True


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The verifier in a fresh interpreter isolated from the environment (-I), with the engine's libraries
    forbidden to it."""
    return subprocess.run([sys.executable, "-I", "-c", BLOCKING, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)  # fmt: skip


def test_a_proof_from_each_store_verifies(chain: ServiceChain) -> None:
    lives = [Scenario(chain).answered_then_reopened() for _ in range(3)]
    document = proof_of(chain, lives[1])
    Scenario(chain).answered_then_reopened()
    proved = check(document, LOG.verifier)
    assert (proved.grievance_id, proved.events, proved.first_leaf, proved.last_leaf) == (lives[1], 7, 7, 13)
    assert proved.summary() == (
        f"verified: grievance {lives[1]}: versions 1-7 (leaves 7 to 13) are in checkpoint {ORIGIN} of 21 "
        f"leaves, signed by {ORIGIN}"
    )


def test_the_cli_proof_verifies_in_a_process_that_loads_no_engine_library(database_url: str, tmp_path: Path) -> None:
    env = {"GRIEVANCE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    key = tmp_path / "notary.key"
    signer = new_signing_key(key, ORIGIN)
    app = build_chain(Settings(database_url=database_url))
    try:
        gid = Scenario(app).answered_then_reopened()
    finally:
        app.close()

    def grievance(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    checkpoint = tmp_path / "checkpoint"
    checkpoint.write_text(grievance("checkpoint", "--key", str(key)).stdout)
    (tmp_path / "proof.json").write_text(grievance("prove", str(gid), "--checkpoint", str(checkpoint), "--json").stdout)
    done = run("adapters.audit.offline_verifier", "proof.json", "--verifier-key", signer.verifier.encoded(),
               cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"verified: grievance {gid}: versions 1-7 (leaves 0 to 6) are in checkpoint {ORIGIN} of 7 " \
                          f"leaves, signed by {ORIGIN}\n"  # fmt: skip


def test_the_forbidding_hook_would_catch_an_engine_import(tmp_path: Path) -> None:
    done = run("adapters.storage.hash_chain", cwd=tmp_path)
    assert done.returncode != 0
    assert "the offline verifier imported eventsourcing" in done.stderr


def test_the_one_file_verifier_runs_copied_anywhere(proof: dict[str, Any], tmp_path: Path) -> None:
    made = subprocess.run([sys.executable, "-m", "adapters.cli", "offline-verifier", str(tmp_path / "v.pyz")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "v.pyz", elsewhere / "verifier.pyz")
    (elsewhere / "proof.json").write_text(json.dumps(proof))
    keys = ("--verifier-key", LOG.verifier.encoded(), "--witness-key", Cosigner.of(WITNESS).encoded())
    done = run(str(elsewhere / "verifier.pyz"), "proof.json", *keys, cwd=elsewhere)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"verified: grievance {proof['grievance_id']}: versions 1-7 (leaves 7 to 13) are in ")
    assert done.stdout.rstrip().endswith("cosigned by witness.test/w1 at 1700000000")
    (elsewhere / "proof.json").write_text(json.dumps({**proof, "tree_size": 20}))
    done = run(str(elsewhere / "verifier.pyz"), "proof.json", *keys, cwd=elsewhere)
    assert (done.returncode, done.stderr) == (4, "error: tree_size: not the checkpoint's size 21 [broken]\n")
    again = subprocess.run([sys.executable, "-m", "adapters.cli", "offline-verifier", str(tmp_path / "v.pyz")],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (again.returncode, again.stderr.strip()) == (1, f"error: file: {tmp_path / 'v.pyz'} exists; it is not "
                                                           "overwritten [invalid_value]")  # fmt: skip


def _byte_fields(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where the proof holds bytes: each hash, proof step and stored state, the note's root and each signature."""
    fields: list[tuple[Any, ...]] = [("root_hash",), ("note_root",)]
    fields += [("signature", k) for k in range(len(parse_note(document["checkpoint"]).signatures))]
    for i, e in enumerate(document["events"]):
        fields += [("events", i, "chained_hash"), ("events", i, "state")]
        fields += [("events", i, "inclusion_proof", j) for j in range(len(e["inclusion_proof"]))]
    return fields


def _flipped(document: dict[str, Any], where: tuple[Any, ...], at: int, mask: int) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(document))

    def flip(raw: bytes) -> bytes:
        if not raw:
            return b"\x00"
        i = at % len(raw)
        return raw[:i] + bytes([raw[i] ^ mask]) + raw[i + 1 :]

    if where[0] in ("note_root", "signature"):
        signed = parse_note(changed["checkpoint"])
        cp, text, signatures = signed.checkpoint, signed.text, list(signed.signatures)
        if where[0] == "note_root":
            cp = Checkpoint(cp.origin, cp.size, flip(cp.root), cp.extensions)
            text = cp.body()
        else:
            name, key_id, signature = signatures[where[1]]
            signatures[where[1]] = (name, key_id, flip(signature))
        changed["checkpoint"] = SignedCheckpoint(cp, text, tuple(signatures)).note()
        return changed
    holder: Any = changed
    for step in where[:-1]:
        holder = holder[step]
    value = holder[where[-1]]
    if where[-1] == "state":
        holder[where[-1]] = base64.b64encode(flip(base64.b64decode(value))).decode()
    else:
        holder[where[-1]] = flip(bytes.fromhex(value)).hex()
    return changed


def test_the_untouched_proof_verifies(proof: dict[str, Any]) -> None:
    assert verifies(proof)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), at=st.integers(0, 1 << 16), mask=st.integers(1, 255))
def test_any_byte_flipped_fails(proof: dict[str, Any], data: st.DataObject, at: int, mask: int) -> None:
    where = data.draw(st.sampled_from(_byte_fields(proof)))
    assert not verifies(_flipped(proof, where, at, mask)), where


def _spans(document: dict[str, Any], text: str) -> list[tuple[int, int]]:
    """Where, in the JSON text, the hashes, proofs, states and signatures are spelt."""
    signed = parse_note(document["checkpoint"])
    values = [document["root_hash"], base64.b64encode(signed.checkpoint.root).decode()]
    values += [base64.b64encode(h + s).decode() for _, h, s in signed.signatures]
    for e in document["events"]:
        values += [e["chained_hash"], e["state"], *e["inclusion_proof"]]
    spans = []
    for v in values:
        start = text.index(v)
        spans.append((start, start + len(v)))
    return spans


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_character_of_a_hash_proof_state_or_signature_changed_fails(proof: dict[str, Any],
                                                                         data: st.DataObject) -> None:  # fmt: skip
    text = json.dumps(proof)
    start, end = data.draw(st.sampled_from(_spans(proof, text)))
    at = data.draw(st.integers(start, end - 1))
    other = data.draw(st.sampled_from("0123456789abcdefABCDEFghijxyzXYZ+/=").filter(lambda c: c != text[at]))
    assert not verifies(json.loads(text[:at] + other + text[at + 1 :]))


def test_versions_must_run_from_one_with_none_missing(proof: dict[str, Any]) -> None:
    events = proof["events"]
    for changed, field in [
        (events[1:], "events[0].version"),
        (events[:2] + events[3:], "events[2].version"),
        ([events[1], events[0], *events[2:]], "events[0].version"),
        ([], "events"),
    ]:
        with pytest.raises(Broken) as refused:
            check({**proof, "events": changed}, LOG.verifier)
        assert refused.value.field == field


def test_a_proof_checks_only_against_the_keys_it_was_signed_with(proof: dict[str, Any]) -> None:
    other = Signer(ORIGIN, Ed25519PrivateKey.generate())
    with pytest.raises(Broken, match=r"checkpoint: not signed by grievances\.test/log\+"):
        check(proof, other.verifier)
    with pytest.raises(Broken, match=r"checkpoint: no valid cosignature by witness\.test/w2\+"):
        check(proof, LOG.verifier, [Cosigner.of(Signer("witness.test/w2", Ed25519PrivateKey.generate()))])
    check(proof, LOG.verifier)


def test_what_is_not_a_proof_is_named(proof: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "proof.json"
    for text, code, line in [
        ("{", 4, "error: proof: not JSON (Expecting property name enclosed in double quotes at line 1) [broken]"),
        ("[]", 4, "error: document: not a JSON object [broken]"),
        (json.dumps({**proof, "grievance_id": "x"}), 4, "error: grievance_id: 'x' is not a UUID [broken]"),
        (json.dumps({**proof, "tree_size": True}), 4,
         "error: tree_size: missing, or not a JSON integer [broken]"),
    ]:  # fmt: skip
        path.write_text(text)
        done = run("adapters.audit.offline_verifier", str(path), "--verifier-key", LOG.verifier.encoded(),
                   cwd=tmp_path)  # fmt: skip
        assert (done.returncode, done.stderr.strip()) == (code, line)
    done = run("adapters.audit.offline_verifier", str(path), "--verifier-key", "nope", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (
        1, "error: --verifier-key: not <name>+<key hash>+<key> [invalid_value]"
    )  # fmt: skip
    done = run("adapters.audit.offline_verifier", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: command line: the following arguments are required: --verifier-key")


@pytest.fixture(scope="module")
def consistency(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`prove --consistency --json` between checkpoints of 7 and 21 leaves of a SQLite store."""
    app = build_chain(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('store')}/grievances.db"))
    try:
        transparency = build_transparency(app)
        Scenario(app).answered_then_reopened()
        old = transparency.checkpoint(LOG)
        Scenario(app).answered_then_reopened()
        Scenario(app).answered_then_reopened()
        new = cosign(transparency.checkpoint(LOG), WITNESS, 1_700_000_000)
        proof = transparency.consistency(old.checkpoint, new.checkpoint)
        return {"from": old.note(), "to": new.note(), "old_size": old.checkpoint.size,
                "new_size": new.checkpoint.size, "proof": [h.hex() for h in proof]}  # fmt: skip
    finally:
        app.close()


def test_a_consistency_proof_from_a_real_store_checks_offline(consistency: dict[str, Any]) -> None:
    assert check_consistency(consistency, LOG.verifier, [Cosigner.of(WITNESS)]) == (
        f"consistent: checkpoint {ORIGIN} of {consistency['new_size']} leaves extends the one of 7; cosigned by "
        "witness.test/w1 at 1700000000"
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), mask=st.integers(1, 255))
def test_any_byte_of_a_consistency_proof_flipped_fails(consistency: dict[str, Any], data: st.DataObject,
                                                        mask: int) -> None:  # fmt: skip
    j = data.draw(st.integers(0, len(consistency["proof"]) - 1))
    at = data.draw(st.integers(0, 31))
    step = bytearray(bytes.fromhex(consistency["proof"][j]))
    step[at] ^= mask
    changed = {**consistency, "proof": [*consistency["proof"][:j], step.hex(), *consistency["proof"][j + 1 :]]}
    with pytest.raises(Broken, match=r"^proof: does not show"):
        check_consistency(changed, LOG.verifier)


def test_a_consistency_proof_of_other_checkpoints_fails(consistency: dict[str, Any]) -> None:
    swapped = {**consistency, "from": consistency["to"], "to": consistency["from"]}
    with pytest.raises(Broken, match=r"^old_size: "):
        check_consistency(swapped, LOG.verifier)
    both = {**swapped, "old_size": consistency["new_size"], "new_size": consistency["old_size"]}
    with pytest.raises(Broken, match=r"^from: its 21 leaves are more"):
        check_consistency(both, LOG.verifier)
    with pytest.raises(Broken, match=r"^to: no valid cosignature by witness\.test/w2"):
        check_consistency(consistency, LOG.verifier, [Cosigner.of(Signer("witness.test/w2",
                                                                         Ed25519PrivateKey.generate()))])  # fmt: skip
    with pytest.raises(Broken, match=r"^old_root: not its checkpoint.s root hash"):
        check_consistency({**consistency, "old_root": "00" * 32}, LOG.verifier)
