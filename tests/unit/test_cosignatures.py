"""Witnesses' cosignatures (adapters.audit.checkpoint) as C2SP tlog-cosignature v1 writes them: key IDs of type
0x04 as transparency-dev's formats compute them (its test keys), the spec's own example line read as key ID and
timestamp, the signed message byte for byte, and refusals of anything that is not one witness's signature of this
very checkpoint."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Cosigner,
    Signer,
    cosign,
    cosignature_message,
    open_note,
    parse_note,
    sign,
)
from adapters.audit.offline_verifier import parse_cosigner

# transparency-dev/formats note/note_cosigv1_test.go: a native 0x04 key and a plain 0x01 note key, both valid.
NATIVE = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
PLAIN = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
# The example of https://c2sp.org/tlog-cosignature.
SPEC_NOTE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+"
    "zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0"
    "xUe+mbIUBkBIfZ+qnA==\n"
)


def log_and_witness() -> tuple[Signer, Signer]:
    return (Signer("grievances.test/log", Ed25519PrivateKey.generate()),
            Signer("witness.test/w1", Ed25519PrivateKey.generate()))  # fmt: skip


def test_key_ids_are_transparency_devs() -> None:
    native = parse_cosigner(NATIVE)
    assert native.encoded() == NATIVE
    plain = parse_cosigner(PLAIN)
    assert plain.name == "TEST"
    assert plain.encoded().startswith("TEST+")
    assert plain.encoded() != PLAIN, "used as a cosigner, its key ID is of type 0x04"
    assert parse_cosigner(plain.encoded()) == plain


def test_the_specs_example_is_a_key_id_a_timestamp_and_a_signature() -> None:
    text, signatures = open_note(SPEC_NOTE)
    name, _, signature = signatures[1]
    assert (name, len(signature)) == ("witness.example.com/w1", 72)
    assert int.from_bytes(signature[:8], "big") == 1679315147, "the spec's message says time 1679315147"
    assert cosignature_message(text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_a_cosignature_checks_and_keeps_the_logs_signature() -> None:
    log, witness = log_and_witness()
    signed = sign(Checkpoint(log.name, 21, bytes(range(32))), log)
    cosigned = cosign(signed, witness, 1_700_000_000)
    reread = parse_note(cosigned.note())
    key = Cosigner.of(witness)
    assert key.cosigned_at(reread) == 1_700_000_000
    assert reread.signed_by(log.verifier)
    assert not reread.signed_by(witness.verifier), "a cosignature is not a plain note signature"


def test_a_cosignature_of_another_checkpoint_key_or_time_does_not_check() -> None:
    log, witness = log_and_witness()
    note = cosign(sign(Checkpoint(log.name, 21, bytes(32)), log), witness, 1_700_000_000).note()
    key = Cosigner.of(witness)
    assert key.cosigned_at(parse_note(note.replace("\n21\n", "\n22\n"))) is None
    assert Cosigner.of(log_and_witness()[1]).cosigned_at(parse_note(note)) is None
    _, key_id, signature = parse_note(note).signatures[1]
    later = (1_700_000_001).to_bytes(8, "big") + signature[8:]
    moved = note.replace(base64.b64encode(key_id + signature).decode(), base64.b64encode(key_id + later).decode())
    assert key.cosigned_at(parse_note(moved)) is None, "the time is signed too"


@pytest.mark.parametrize(
    "key",
    [
        "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "remora.n621.de+da77ade7+A+vN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "remora.n621.de+da77ade7",
        "+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    ],
)
def test_a_witness_key_that_contradicts_itself_is_refused(key: str) -> None:
    with pytest.raises(CheckpointError):
        parse_cosigner(key)
