"""A witness (adapters.audit.witness) keeps one history: a checkpoint that does not extend the last one it
cosigned is refused, two runs at once take turns on its state file, and a note carries one cosignature a key."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.audit.checkpoint import Checkpoint, Cosigner, SignedCheckpoint, Signer, cosign, parse_note, sign
from adapters.audit.witness import NotConsistent, ProofSource, Witness
from adapters.storage.merkle_log import MemoryLog, consistency_proof, leaf_hash, tree_head

LOG = Signer("grievances.test/log", Ed25519PrivateKey.generate())
AUDITOR = Signer("audit.test/w1", Ed25519PrivateKey.generate())


def history(*leaves: bytes) -> MemoryLog:
    log = MemoryLog()
    log.append(b"".join(leaf_hash(x) for x in leaves))
    return log


def checkpoint_of(log: MemoryLog, size: int | None = None) -> SignedCheckpoint:
    size = log.size if size is None else size
    return sign(Checkpoint(LOG.name, size, tree_head(size, log)), LOG)


def proofs(*logs: MemoryLog) -> ProofSource:
    """Consistency proofs from whichever history holds the newer checkpoint's root."""

    def proof_of(old: Checkpoint, new: Checkpoint) -> list[bytes]:
        for log in logs:
            if log.size >= new.size and tree_head(new.size, log) == new.root:
                return consistency_proof(old.size, new.size, log)
        return []

    return proof_of


def test_a_checkpoint_that_does_not_extend_the_last_cosigned_is_refused_and_the_state_kept(tmp_path: Path) -> None:
    ours, theirs = history(b"a", b"b", b"c", b"d"), history(b"a", b"b", b"x", b"y")
    keeper = Witness(AUDITOR, tmp_path / "w.state")
    keeper.witness(checkpoint_of(ours), LOG.verifier, proofs(ours, theirs), 1)
    kept = (tmp_path / "w.state").read_text()
    with pytest.raises(NotConsistent) as same_size:
        keeper.witness(checkpoint_of(theirs), LOG.verifier, proofs(ours, theirs), 2)
    assert same_size.value.kind == "not_consistent"
    longer = history(b"a", b"b", b"x", b"y", b"z")
    with pytest.raises(NotConsistent, match="does not extend the one of 4"):
        keeper.witness(checkpoint_of(longer), LOG.verifier, proofs(ours, longer), 3)
    with pytest.raises(NotConsistent) as shorter:
        keeper.witness(checkpoint_of(ours, 3), LOG.verifier, proofs(ours), 4)
    assert shorter.value.kind == "rolled_back"
    assert (tmp_path / "w.state").read_text() == kept, "nothing cosigned"


def test_two_runs_at_once_take_turns_so_only_one_of_two_split_histories_is_cosigned(tmp_path: Path) -> None:
    """Both extend the checkpoint cosigned last, but not each other: without a lock on the state, both runs read
    the same last checkpoint and both are cosigned, a split view witnessed."""
    start = history(b"a", b"b")
    ours, theirs = history(b"a", b"b", b"c"), history(b"a", b"b", b"x")
    Witness(AUDITOR, tmp_path / "w.state").witness(checkpoint_of(start), LOG.verifier, proofs(start), 1)
    inside, other_done = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def slow(old: Checkpoint, new: Checkpoint) -> list[bytes]:
        inside.set()
        other_done.wait(1.0)  # long enough for the other run to finish, were it not made to wait its turn
        return list(proofs(ours)(old, new))

    def run(name: str, signed: SignedCheckpoint, proof_of: ProofSource, done: threading.Event | None) -> None:
        try:
            outcomes[name] = Witness(AUDITOR, tmp_path / "w.state").witness(signed, LOG.verifier, proof_of, 2)
        except NotConsistent as e:
            outcomes[name] = e
        finally:
            if done is not None:
                done.set()

    first = threading.Thread(target=run, args=("ours", checkpoint_of(ours), slow, None))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=run, args=("theirs", checkpoint_of(theirs), proofs(theirs), other_done))
    second.start()
    first.join(10)
    second.join(10)
    assert isinstance(outcomes["ours"], SignedCheckpoint)
    assert isinstance(outcomes["theirs"], NotConsistent), outcomes
    assert parse_note((tmp_path / "w.state").read_text()).checkpoint == checkpoint_of(ours).checkpoint


def test_cosigning_twice_leaves_one_cosignature_of_the_key(tmp_path: Path) -> None:
    signed = checkpoint_of(history(b"a"))
    twice = cosign(cosign(signed, AUDITOR, 1), AUDITOR, 2)
    assert [name for name, _, _ in twice.signatures] == [LOG.name, AUDITOR.name]
    assert Cosigner.of(AUDITOR).cosigned_at(parse_note(twice.note())) == 2
    other = Signer("audit.test/w2", Ed25519PrivateKey.generate())
    assert len(cosign(twice, other, 3).signatures) == 3
    keeper = Witness(AUDITOR, tmp_path / "w.state")
    again = keeper.witness(keeper.witness(signed, LOG.verifier, proofs(), 5), LOG.verifier, proofs(), 6)
    assert [name for name, _, _ in again.signatures] == [LOG.name, AUDITOR.name]
