"""Signed checkpoints: the C2SP signed-note format byte for byte as Go's golang.org/x/mod/sumdb/note writes it
(its documented example key and note), tlog-checkpoint bodies, and refusals that name what is wrong."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Cosigner,
    Signer,
    Verifier,
    cosign,
    load_signing_key,
    new_signing_key,
    open_note,
    parse_note,
    sign,
    sign_text,
    verified,
)

# The example of golang.org/x/mod/sumdb/note's package documentation.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_keys_and_signatures_are_gos_byte_for_byte() -> None:
    signer = Signer.parse(GO_SIGNER)
    assert signer.encoded() == GO_SIGNER
    assert signer.verifier.encoded() == GO_VERIFIER
    assert Verifier.parse(GO_VERIFIER) == signer.verifier
    assert sign_text(GO_TEXT, signer) == GO_NOTE
    text, ((name, key_hash, signature),) = open_note(GO_NOTE)
    assert (text, name, key_hash.hex()) == (GO_TEXT, "PeterNeumann", "c74f20a3")
    assert signer.verifier.verifies(text.encode(), signature)


def test_a_checkpoint_is_a_tlog_checkpoint_body_in_a_signed_note() -> None:
    signer = Signer.parse(GO_SIGNER)
    root = bytes(range(32))
    note = sign(Checkpoint("PeterNeumann", 21, root), signer).note()
    assert note.startswith(f"PeterNeumann\n21\n{base64.b64encode(root).decode()}\n\n\u2014 PeterNeumann ")
    signed = verified(note, [signer.verifier])
    assert signed.checkpoint == Checkpoint("PeterNeumann", 21, root)
    assert signed.note() == note


def test_a_key_file_is_made_once_and_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "notary.key"
    signer = new_signing_key(path, "grievances.example.org/log")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path).verifier == signer.verifier
    with pytest.raises(CheckpointError, match="exists; a signing key is never overwritten"):
        new_signing_key(path, "other")
    with pytest.raises(CheckpointError, match="not a key name"):
        new_signing_key(tmp_path / "b.key", "two words")


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("origin\n1\n", "not a signed note"),
        ("origin\n1\nAAAA\n\n- x y\n", "is not a signature line"),
        ("origin\nx\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 a AAAAAAAAAAAA\n", "is not a decimal"),
        ("origin\n1\nAAAA\n\n\u2014 a AAAAAAAAAAAA\n", "root hash is not 32 bytes"),
        ("origin\n1\n\n\u2014 a AAAAAAAAAAAA\n", "an origin, a size and a root hash"),
    ],
)
def test_a_malformed_note_is_refused_naming_why(note: str, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason):
        parse_note(note)


def test_a_note_signed_by_another_key_or_altered_does_not_verify() -> None:
    signer, other = Signer.parse(GO_SIGNER), Signer("PeterNeumann", Ed25519PrivateKey.generate())
    note = sign(Checkpoint("PeterNeumann", 3, bytes(32)), signer).note()
    with pytest.raises(CheckpointError, match="not signed by"):
        verified(note.replace("\n3\n", "\n4\n"), [signer.verifier])
    with pytest.raises(CheckpointError, match="not signed by"):
        verified(note, [other.verifier])


@pytest.mark.parametrize(
    "key",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpjZWQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_a_verifier_key_that_contradicts_itself_is_refused(key: str) -> None:
    with pytest.raises(CheckpointError):
        Verifier.parse(key)


def test_a_cosignature_is_c2sp_tlog_cosignature_v1() -> None:
    witness = Signer("witness.example.com/w1", Ed25519PrivateKey.generate())
    signed = sign(Checkpoint("PeterNeumann", 3, bytes(32)), Signer.parse(GO_SIGNER))
    cosigned = cosign(signed, witness, 1679315147)
    name, key_hash, blob = cosigned.signatures[-1]
    assert name == "witness.example.com/w1"
    public = witness.verifier.public
    assert key_hash == hashlib.sha256(b"witness.example.com/w1\n\x04" + public).digest()[:4]
    assert blob[:8] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + signed.text.encode()
    assert witness.verifier.verifies(message, blob[8:]), "over exactly the message the specification spells out"
    again = parse_note(cosigned.note())
    assert Cosigner.of(witness).cosigned_at(again) == 1679315147
    assert again.signed_by(Signer.parse(GO_SIGNER).verifier)
    assert Cosigner.of(witness).cosigned_at(parse_note(cosigned.note().replace("\n3\n", "\n4\n"))) is None
    assert Cosigner.of(witness).encoded().startswith(f"witness.example.com/w1+{key_hash.hex()}+B")
