"""Signed checkpoints of the Merkle log: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.

A checkpoint says "the log named ORIGIN had SIZE leaves with this root hash", signed by a key kept off the
database host; whoever holds one can later check that the store is an append-only extension of it. Keys use
the note formats of golang.org/x/mod/sumdb/note (`PRIVATE+KEY+name+hash+key`, `name+hash+key`), so the Go
tools read them too. Only the standard library and `cryptography`, so the offline verifier can use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ED25519 = b"\x01"
# C2SP tlog-cosignature: a witness's timestamped Ed25519 signature, cosignature/v1.
COSIGNATURE = b"\x04"
SIGNATURE_PREFIX = "\u2014 "
PRIVATE_PREFIX = "PRIVATE+KEY+"


class CheckpointError(ValueError):
    """A checkpoint, note or key that cannot be read or does not verify; `field` names what is at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _key_hash(name: str, public: bytes, kind: bytes = ED25519) -> bytes:
    """C2SP signed-note: the first four bytes of SHA-256(name ‖ 0x0A ‖ signature type ‖ public key)."""
    return hashlib.sha256(name.encode() + b"\n" + kind + public).digest()[:4]


def _check_name(field: str, name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise CheckpointError(field, f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    return name


def _key_parts(field: str, parts: Sequence[str]) -> tuple[str, bytes, bytes]:
    """A note key's name, stated key hash and 32 Ed25519 key bytes, from its '+'-separated parts, each checked."""
    name, hash_hex, key = parts
    _check_name(field, name)
    try:
        raw = base64.b64decode(key, validate=True)
        stated = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise CheckpointError(field, "its key hash or key is not hex and base64") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise CheckpointError(field, "not an Ed25519 key (0x01 and 32 bytes)")
    return name, stated, raw[1:]


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signatures of one name."""

    name: str
    public: bytes

    @property
    def key_hash(self) -> bytes:
        return _key_hash(self.name, self.public)

    def encoded(self) -> str:
        """`<name>+<8 hex of key hash>+<base64(0x01 ‖ public key)>`."""
        return f"{self.name}+{self.key_hash.hex()}+{base64.b64encode(ED25519 + self.public).decode()}"

    def verifies(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def parse(cls, encoded: str, field: str = "verifier_key") -> Verifier:
        """A verifier key in the note format, checked against its own key hash."""
        # At most two splits: base64 has '+' in its alphabet.
        parts = encoded.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError(field, "not <name>+<key hash>+<key>")
        name, stated, raw = _key_parts(field, parts)
        verifier = cls(name, raw)
        if stated != verifier.key_hash:
            raise CheckpointError(field, "its key hash does not match its name and key")
        return verifier


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under one name."""

    name: str
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, public)

    def sign(self, text: bytes) -> bytes:
        return self.private.sign(text)

    def encoded(self) -> str:
        """`PRIVATE+KEY+<name>+<8 hex of key hash>+<base64(0x01 ‖ seed)>`."""
        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"{PRIVATE_PREFIX}{self.name}+{self.verifier.key_hash.hex()}+{base64.b64encode(ED25519 + seed).decode()}"

    @classmethod
    def parse(cls, encoded: str, field: str = "key") -> Signer:
        """A private key in the note format, checked against its own key hash."""
        text = encoded.strip()
        if not text.startswith(PRIVATE_PREFIX):
            raise CheckpointError(field, "not a note signing key (PRIVATE+KEY+...)")
        parts = text[len(PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise CheckpointError(field, "not PRIVATE+KEY+<name>+<key hash>+<key>")
        name, stated, raw = _key_parts(field, parts)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw))
        if stated != signer.verifier.key_hash:
            raise CheckpointError(field, "its key hash does not match its name and key")
        return signer


def new_signing_key(path: Path, name: str) -> Signer:
    """A fresh Ed25519 key named `name`, written to a new file only its owner can read (never over one)."""
    signer = Signer(_check_name("name", name), Ed25519PrivateKey.generate())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError("file", f"{path} exists; a signing key is never overwritten") from None
    except OSError as e:
        raise CheckpointError("file", f"{path} cannot be written: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(signer.encoded() + "\n")
    return signer


def load_signing_key(path: Path, field: str = "key") -> Signer:
    """The signing key in `path`."""
    try:
        text = path.read_text()
    except OSError as e:
        raise CheckpointError(field, f"{path} cannot be read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(field, f"{path} is not a note signing key (PRIVATE+KEY+...)") from None
    return Signer.parse(text, field=field)


@dataclass(frozen=True)
class Checkpoint:
    """C2SP tlog-checkpoint: the log's origin, its size and the root hash of its first `size` leaves."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


Signature = tuple[str, bytes, bytes]


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as a signed note: its text, and the signatures (name, key hash, signature) it carries."""

    checkpoint: Checkpoint
    text: str
    signatures: tuple[Signature, ...]

    def note(self) -> str:
        lines = [f"{SIGNATURE_PREFIX}{name} {base64.b64encode(h + s).decode()}\n" for name, h, s in self.signatures]
        return self.text + "\n" + "".join(lines)

    def signed_by(self, verifier: Verifier) -> bool:
        """Whether one of the signatures is this verifier's and checks."""
        return any(
            name == verifier.name and h == verifier.key_hash and verifier.verifies(self.text.encode(), s)
            for name, h, s in self.signatures
        )


def sign(checkpoint: Checkpoint, signer: Signer) -> SignedCheckpoint:
    """The checkpoint as a note signed by `signer`."""
    text = checkpoint.body()
    return SignedCheckpoint(checkpoint, text, ((signer.name, signer.verifier.key_hash, signer.sign(text.encode())),))


def sign_text(text: str, signer: Signer) -> str:
    """Any note text (ending in a newline) as a signed note."""
    signature = base64.b64encode(signer.verifier.key_hash + signer.sign(text.encode())).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{signer.name} {signature}\n"


def open_note(note: str, field: str = "checkpoint") -> tuple[str, tuple[Signature, ...]]:
    """A signed note's text and its signatures (name, key hash, signature), not yet verified."""
    text, sep, tail = note.rpartition("\n\n")
    if not sep or not tail.endswith("\n"):
        raise CheckpointError(field, "not a signed note (text, a blank line, then signature lines)")
    signatures = []
    for line in tail[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(field, f"{line[:40]!r} is not a signature line ('\u2014 name signature')")
        name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise CheckpointError(field, f"the signature of {name} is not base64") from None
        if len(raw) < 5:
            raise CheckpointError(field, f"the signature of {name} is too short")
        signatures.append((name, raw[:4], raw[4:]))
    return text + "\n", tuple(signatures)


def parse_note(note: str, field: str = "checkpoint") -> SignedCheckpoint:
    """A signed checkpoint note, read but not yet verified (see `verified`)."""
    text, signatures = open_note(note, field)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(field, "a checkpoint has an origin, a size and a root hash")
    origin, size_text, root_b64, *extensions = lines
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise CheckpointError(field, f"size {size_text[:40]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise CheckpointError(field, "its root hash is not 32 bytes of base64")
    return SignedCheckpoint(Checkpoint(origin, int(size_text), root, tuple(extensions)), text, signatures)


def verified(note: str, verifiers: list[Verifier], field: str = "checkpoint") -> SignedCheckpoint:
    """A signed checkpoint that one of the verifiers signed, under the log's own name: C2SP tlog-checkpoint's origin
    is the name of the log's key, so a note of another log that the key also signed is not this log's."""
    signed = parse_note(note, field)
    signers = [v for v in verifiers if signed.signed_by(v)]
    if not signers:
        names = ", ".join(v.encoded() for v in verifiers)
        raise CheckpointError(field, f"not signed by {names}")
    if not any(v.name == signed.checkpoint.origin for v in signers):
        raise CheckpointError(field, f"is of the log {signed.checkpoint.origin!r}, not {signers[0].name!r} whose key "
                              "signed it")  # fmt: skip
    return signed


def read_note(path: Path, field: str = "checkpoint") -> str:
    """A note's text from a file, or a CheckpointError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise CheckpointError(field, f"{path} cannot be read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(field, f"{path} is not UTF-8 text") from None


def cosignature_message(text: str, timestamp: int) -> bytes:
    """C2SP tlog-cosignature: what a witness signs, `cosignature/v1`, `time <timestamp>`, then the note's text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class Cosigner:
    """A witness's public key, which checks its cosignatures (signature type 0x04)."""

    name: str
    public: bytes

    @property
    def key_hash(self) -> bytes:
        return _key_hash(self.name, self.public, COSIGNATURE)

    def encoded(self) -> str:
        """`<name>+<8 hex of key hash>+<base64(0x04 ‖ public key)>`."""
        return f"{self.name}+{self.key_hash.hex()}+{base64.b64encode(COSIGNATURE + self.public).decode()}"

    def cosigned_at(self, signed: SignedCheckpoint) -> int | None:
        """The time this witness cosigned the checkpoint at, or None if it did not."""
        for name, h, blob in signed.signatures:
            if name == self.name and h == self.key_hash and len(blob) == 72:
                timestamp = int.from_bytes(blob[:8], "big")
                try:
                    Ed25519PublicKey.from_public_bytes(self.public).verify(
                        blob[8:], cosignature_message(signed.text, timestamp)
                    )
                except InvalidSignature:
                    continue
                return timestamp
        return None

    @classmethod
    def of(cls, signer: Signer) -> Cosigner:
        return cls(signer.name, signer.verifier.public)


def cosign(signed: SignedCheckpoint, signer: Signer, timestamp: int) -> SignedCheckpoint:
    """The checkpoint with this witness's cosignature, as of `timestamp` (seconds since the epoch), in place of any
    it carried already: a note holds one signature per key name and hash, as C2SP signed notes require."""
    cosigner = Cosigner.of(signer)
    blob = timestamp.to_bytes(8, "big") + signer.sign(cosignature_message(signed.text, timestamp))
    others = tuple((n, h, s) for n, h, s in signed.signatures if (n, h) != (signer.name, cosigner.key_hash))
    return SignedCheckpoint(signed.checkpoint, signed.text, (*others, (signer.name, cosigner.key_hash, blob)))
