"""The auditor's check of a grievance's proof (`grievance prove --json`), with no access to the database.

It checks the checkpoint's signature by the log's key (and each witness's cosignature asked for), recomputes every
event's chained hash from its stored bytes, checks each inclusion proof against the checkpoint's root, and that the
versions run 1..n. Only the standard library and `cryptography` are imported, so it runs where the engine is not
installed: `python -m adapters.audit.offline_verifier PROVE.json --verifier-key KEY`, or as the one file that
`grievance offline-verifier FILE` writes. With `--consistency` it checks instead that one signed checkpoint extends
another (the proof of `prove --consistency --json` or of GET /api/v1/log/consistency). Exit 0 with a one-line
summary, 4 naming the first failure.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from uuid import UUID

from adapters.audit.checkpoint import (
    COSIGNATURE,
    ED25519,
    CheckpointError,
    Cosigner,
    SignedCheckpoint,
    Verifier,
    parse_note,
)
from adapters.storage.chained_hash import GENESIS, chained_hash
from adapters.storage.merkle_log import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_BROKEN = 4


def parse_cosigner(encoded: str, field: str = "--witness-key") -> Cosigner:
    """A witness's verifier key: of C2SP tlog-cosignature's type 0x04, or a plain Ed25519 note key (0x01) used as
    one, as transparency-dev's VKeyToCosignatureV1 allows; each checked against its own key hash."""
    parts = encoded.strip().split("+", 2)
    if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
        raise CheckpointError(field, "not <name>+<key hash>+<key>")
    name, hash_hex, key = parts
    try:
        raw = base64.b64decode(key, validate=True)
        stated = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise CheckpointError(field, "its key hash or key is not hex and base64") from None
    if len(raw) != 33 or raw[:1] not in (ED25519, COSIGNATURE):
        raise CheckpointError(field, "not an Ed25519 key (0x01 or 0x04, and 32 bytes)")
    if stated != hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]:
        raise CheckpointError(field, "its key hash does not match its name and key")
    return Cosigner(name, raw[1:])


class Broken(Exception):
    """The proof does not show what it claims; `field` names where in the document it first fails."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Proved:
    """What a proof that checks shows: a grievance's first `events` events are leaves of the signed checkpoint."""

    grievance_id: UUID
    events: int
    first_leaf: int
    last_leaf: int
    signed: SignedCheckpoint
    log_key: Verifier
    witnesses: tuple[tuple[Cosigner, int], ...]

    def summary(self) -> str:
        cp = self.signed.checkpoint
        cosigned = "".join(f"; cosigned by {k.name} at {t}" for k, t in self.witnesses)
        return (
            f"verified: grievance {self.grievance_id}: versions 1-{self.events} (leaves {self.first_leaf} to "
            f"{self.last_leaf}) are in checkpoint {cp.origin} of {cp.size} leaves, signed by {self.log_key.name}"
            f"{cosigned}"
        )


_JSON_NAMES = {str: "string", int: "integer", list: "array"}


def _member(obj: dict[str, object], key: str, kind: type, field: str) -> object:
    value = obj.get(key)
    # JSON's true and false are Python ints too; a count is never one.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Broken(field, f"missing, or not a JSON {_JSON_NAMES[kind]}")
    return value


def _hex32(value: object, field: str) -> bytes:
    """A 32-byte hash in lower-case hex, as `prove` writes it: any other spelling of it is refused, so that no
    changed character leaves the proof intact."""
    if isinstance(value, str) and len(value) == 2 * HASH_SIZE:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            pass
        else:
            if raw.hex() == value:
                return raw
    raise Broken(field, "not a 32-byte hash in lower-case hex")


def _base64(value: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise Broken(field, "not base64") from None
    if base64.b64encode(raw).decode() != value:
        raise Broken(field, "not base64 in its one canonical spelling")
    return raw


def _signed(note: str, field: str, log_key: Verifier, witness_keys: Sequence[Cosigner]
            ) -> tuple[SignedCheckpoint, tuple[tuple[Cosigner, int], ...]]:  # fmt: skip
    """A checkpoint note in its one spelling, signed by the log's key under its own name and cosigned by each
    witness asked for (with the time each cosigned it)."""
    try:
        signed = parse_note(note, field)
    except CheckpointError as e:
        raise Broken(e.field, e.reason) from None
    if signed.note() != note:
        raise Broken(field, "its signatures are not in their canonical base64 spelling")
    if not signed.signed_by(log_key):
        raise Broken(field, f"not signed by {log_key.encoded()}")
    if signed.checkpoint.origin != log_key.name:
        raise Broken(field, f"its origin {signed.checkpoint.origin!r} is not the log key's name {log_key.name!r}")
    witnesses = []
    for key in witness_keys:
        timestamp = key.cosigned_at(signed)
        if timestamp is None:
            raise Broken(field, f"no valid cosignature by {key.encoded()}")
        witnesses.append((key, timestamp))
    return signed, tuple(witnesses)


def check(document: object, log_key: Verifier, witness_keys: Sequence[Cosigner] = ()) -> Proved:
    """Everything the proof claims, checked in order; the first failure raised as Broken."""
    if not isinstance(document, dict):
        raise Broken("document", "not a JSON object")
    gid_text = str(_member(document, "grievance_id", str, "grievance_id"))
    try:
        grievance_id = UUID(gid_text)
    except ValueError:
        raise Broken("grievance_id", f"{gid_text[:40]!r} is not a UUID") from None
    if str(grievance_id) != gid_text:
        raise Broken("grievance_id", "not a UUID in its canonical spelling")
    signed, witnesses = _signed(str(_member(document, "checkpoint", str, "checkpoint")), "checkpoint", log_key,
                                witness_keys)  # fmt: skip
    cp = signed.checkpoint
    if _member(document, "tree_size", int, "tree_size") != cp.size:
        raise Broken("tree_size", f"not the checkpoint's size {cp.size}")
    if _hex32(document.get("root_hash"), "root_hash") != cp.root:
        raise Broken("root_hash", "not the checkpoint's root hash")
    events = _member(document, "events", list, "events")
    assert isinstance(events, list)
    if not events:
        raise Broken("events", "none: the checkpoint covers none of this grievance's events, so nothing is proved")
    previous, last_leaf = GENESIS, -1
    for i, event in enumerate(events):
        at = f"events[{i}]"
        if not isinstance(event, dict):
            raise Broken(at, "not a JSON object")
        if _member(event, "version", int, f"{at}.version") != i + 1:
            raise Broken(f"{at}.version", f"not {i + 1}: the versions must run 1..n with none missing")
        leaf = _member(event, "leaf_index", int, f"{at}.leaf_index")
        assert isinstance(leaf, int)
        if not last_leaf < leaf < cp.size:
            raise Broken(f"{at}.leaf_index", f"{leaf} is not after leaf {last_leaf} and inside the checkpoint")
        topic = str(_member(event, "topic", str, f"{at}.topic"))
        state = _base64(str(_member(event, "state", str, f"{at}.state")), f"{at}.state")
        previous = chained_hash(previous, grievance_id, i + 1, topic, state)
        if _hex32(event.get("chained_hash"), f"{at}.chained_hash") != previous:
            raise Broken(f"{at}.chained_hash", "not the hash its topic, stored bytes and the event before it chain to")
        proof = _member(event, "inclusion_proof", list, f"{at}.inclusion_proof")
        assert isinstance(proof, list)
        path = [_hex32(h, f"{at}.inclusion_proof[{j}]") for j, h in enumerate(proof)]
        if not verify_inclusion(leaf, cp.size, leaf_hash(previous), path, cp.root):
            raise Broken(f"{at}.inclusion_proof", f"does not prove leaf {leaf} in the checkpoint's root")
        last_leaf = leaf
    first = _member(events[0], "leaf_index", int, "events[0].leaf_index")
    assert isinstance(first, int)
    return Proved(grievance_id, len(events), first, last_leaf, signed, log_key, witnesses)


def check_consistency(document: object, log_key: Verifier, witness_keys: Sequence[Cosigner] = (),
                      old_note: str | None = None, new_note: str | None = None) -> str:  # fmt: skip
    """That the newer checkpoint extends the older (the RFC 9162 proof of `prove --consistency --json` or of
    GET /log/consistency, whose checkpoints are given apart), both signed by the log, the newer cosigned by each
    witness asked for; its one-line summary, or the first failure raised as Broken."""
    if not isinstance(document, dict):
        raise Broken("document", "not a JSON object")
    old, _ = _signed(old_note or str(_member(document, "from", str, "from")), "from", log_key, ())
    new, witnesses = _signed(new_note or str(_member(document, "to", str, "to")), "to", log_key, witness_keys)
    o, n = old.checkpoint, new.checkpoint
    if _member(document, "old_size", int, "old_size") != o.size:
        raise Broken("old_size", f"not the older checkpoint's size {o.size}")
    if _member(document, "new_size", int, "new_size") != n.size:
        raise Broken("new_size", f"not the newer checkpoint's size {n.size}")
    for key, cp in (("old_root", o), ("new_root", n)):
        if key in document and _hex32(document[key], key) != cp.root:
            raise Broken(key, "not its checkpoint's root hash")
    proof = _member(document, "proof", list, "proof")
    assert isinstance(proof, list)
    path = [_hex32(h, f"proof[{j}]") for j, h in enumerate(proof)]
    if o.size > n.size:
        raise Broken("from", f"its {o.size} leaves are more than the newer checkpoint's {n.size}: the log shrank")
    if not verify_consistency(o.size, n.size, path, o.root, n.root):
        raise Broken("proof", f"does not show the checkpoint of {o.size} leaves a prefix of the one of {n.size}")
    cosigned = "".join(f"; cosigned by {k.name} at {t}" for k, t in witnesses)
    return f"consistent: checkpoint {n.origin} of {n.size} leaves extends the one of {o.size}{cosigned}"


def _fail(message: str, code: int, error_code: str) -> NoReturn:
    print(f"error: {message} [{error_code}]", file=sys.stderr)
    sys.exit(code)


class _Arguments(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"command line: {message} (see --help)", EXIT_USAGE, "usage")


def main(argv: Sequence[str] | None = None) -> int:
    """Check one proof file; print the summary and return 0, or print the first failure and exit 4."""
    parser = _Arguments(
        prog="offline_verifier", description="Check a grievance's proof (grievance prove --json) without the database."
    )
    parser.add_argument(
        "proof",
        type=Path,
        help="The proof file: the JSON of grievance prove --json (or of prove "
        "--consistency --json, or GET /api/v1/log/consistency, with --consistency).",
    )
    parser.add_argument(
        "--consistency",
        action="store_true",
        help="The file proves that one checkpoint extends another: check that instead.",
    )
    parser.add_argument(
        "--from",
        dest="old",
        type=Path,
        metavar="OLD",
        help="With --consistency: the older "
        "checkpoint, when the proof does not carry it (GET /api/v1/log/consistency's does not).",
    )
    parser.add_argument("--to", dest="new", type=Path, metavar="NEW", help="With --consistency: the newer one.")
    parser.add_argument("--verifier-key", required=True, metavar="KEY", help="The log's verifier key (name+hash+key).")
    parser.add_argument("--witness-key", action="append", default=[], metavar="KEY",
                        help="A witness's key whose cosignature the checkpoint must carry (repeatable).")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        log_key = Verifier.parse(args.verifier_key, "--verifier-key")
        witness_keys = [parse_cosigner(k) for k in args.witness_key]
    except CheckpointError as e:
        _fail(f"{e.field}: {e.reason}", EXIT_REJECTED, "invalid_value")
    text = _read("proof", args.proof)
    old, new = (_read(f"--{n}", p) if p else None for n, p in (("from", args.old), ("to", args.new)))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(f"proof: not JSON ({e.msg} at line {e.lineno})", EXIT_BROKEN, "broken")
    try:
        if args.consistency:
            print(check_consistency(document, log_key, witness_keys, old, new))
        else:
            print(check(document, log_key, witness_keys).summary())
    except Broken as e:
        _fail(f"{e.field}: {e.reason}", EXIT_BROKEN, "broken")
    return 0


def _read(field: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"{field}: {path} cannot be read: {getattr(e, 'strerror', None) or e}", EXIT_REJECTED, "invalid_value")


if __name__ == "__main__":
    sys.exit(main())
