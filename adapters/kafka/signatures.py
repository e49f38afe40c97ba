"""Proof of who sent a command on Kafka: Ed25519 signatures (RFC 8032, with the `cryptography` package) over the
message exactly as produced, checked by the worker against the keys the engine knows.

A signed message carries headers `signature.key` (the key's id), `signature.at` (when it was signed, RFC 3339)
and `signature` (base64). What is signed is `grievance-command/v1`, the key id, the time, the topic, the
message key and the value, each on a line of its own (the value last, as its bytes): a signature cannot be
moved to another topic, grievance or time. A key belongs to a person (a grid worker or an admin, with their
unit), who is then the principal of what they sign, or to a gateway that authenticated its users itself and
names each one as the command's actor. Keys live in a JSON file beside the API tokens (`grievance key add`),
which holds public keys only; each private key is a PEM file of its holder's own. The worker rereads the key
file when it changes, so revoking a key takes effect without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.errors import ConfigurationError, InvalidValue
from engine.times import parse_time

CONTEXT = b"grievance-command/v1"
DEFAULT_KEYS_FILE = Path("kafka-keys.json")
KEY_HEADER, AT_HEADER, SIGNATURE_HEADER = "signature.key", "signature.at", "signature"


class KeyRole(StrEnum):
    """Whose a signing key is: a person's (signing as themselves), a gateway's (vouching for its users, within
    the time bounds), or an operator's (a migration from an old system: history of any age, as the CLI)."""

    GRID_WORKER = "grid_worker"
    ADMIN = "admin"
    GATEWAY = "gateway"
    OPERATOR = "operator"


class KeyEntry(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A signing key the engine knows: only its public half."""

    key_id: str
    name: str
    role: KeyRole
    unit_id: str | None = None
    public_key: str  # base64 of the 32 raw bytes
    added_at: str
    revoked_at: str | None = None

    def principal(self) -> Principal:
        """Who signs with this key: the person, or a gateway or operator vouching for each command's actor."""
        return Principal(self.name, Role(self.role.value), self.unit_id)


class KeyFile(msgspec.Struct, kw_only=True):
    """The key file's document."""

    keys: list[KeyEntry] = []


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw public bytes."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signed_bytes(key_id: str, at: str, topic: str, key: bytes | None, value: bytes) -> bytes:
    """What a signature covers."""
    return b"\n".join([CONTEXT, key_id.encode(), at.encode(), topic.encode(), key or b"", value])


@dataclass(frozen=True)
class CommandSigner:
    """Signs commands as they are produced, with one private key."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_file(cls, path: Path) -> CommandSigner:
        """The signer whose private key is the PEM file at `path` (as `grievance key add` writes it)."""
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigurationError(f"{path}: not a signing key file ({e})") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigurationError(f"{path}: not an Ed25519 key")
        return cls(key_id_of(loaded.public_key()), loaded)

    def headers(
        self, topic: str, key: bytes | None, value: bytes, at: datetime | None = None
    ) -> list[tuple[str, bytes]]:
        """The signature headers of one message."""
        when = (at or datetime.now(UTC)).isoformat()
        signature = self.private_key.sign(signed_bytes(self.key_id, when, topic, key, value))
        return [(KEY_HEADER, self.key_id.encode()), (AT_HEADER, when.encode()),
                (SIGNATURE_HEADER, base64.b64encode(signature))]  # fmt: skip


class Unverified(Exception):
    """A message whose signature does not prove who sent it; `code` and `reason` say why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class KeyBook:
    """The keys the worker accepts, reread from their file whenever it changes."""

    def __init__(self, path: Path | None, chart: OrgChart, *, max_age: timedelta, skew: timedelta) -> None:
        self.path, self.chart, self.max_age, self.skew = path, chart, max_age, skew
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._keys: dict[str, tuple[KeyEntry, Ed25519PublicKey]] = {}
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        seen = (stat.st_mtime, stat.st_size) if stat else (0.0, 0)
        if seen == self._seen:
            return
        entries = read_keys(self.path).keys
        keys = {}
        for i, entry in enumerate(entries):
            check_entry(entry, self.chart, f"{self.path}: keys[{i}]")
            keys[entry.key_id] = (entry, Ed25519PublicKey.from_public_bytes(base64.b64decode(entry.public_key)))
        self._keys, self._seen = keys, seen

    def verify(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None,
               now: datetime) -> Principal:  # fmt: skip
        """The principal a message is proved to come from, or `Unverified` naming why not."""
        with self._lock, contextlib.suppress(ConfigurationError):
            self._load()  # a key file half-written or broken: the keys last read stand
        found = dict(headers or [])
        if SIGNATURE_HEADER not in found or KEY_HEADER not in found or AT_HEADER not in found:
            raise Unverified("unsigned", "the message carries no signature (headers signature, signature.key, "
                             "signature.at); sign it with `grievance emit --key`")  # fmt: skip
        try:
            key_id, at = found[KEY_HEADER].decode(), found[AT_HEADER].decode()
            signature = base64.b64decode(found[SIGNATURE_HEADER], validate=True)
            signed_at = parse_time("signature.at", at)
        except (UnicodeDecodeError, ValueError, InvalidValue) as e:
            raise Unverified("bad_signature", f"the signature headers do not read: {e}") from None
        known = self._keys.get(key_id)
        if known is None:
            raise Unverified("unknown_key", f"no key {key_id!r} is known to the engine")
        entry, public_key = known
        if entry.revoked_at is not None:
            raise Unverified("revoked_key", f"key {key_id} ({entry.name}) was revoked at {entry.revoked_at}")
        try:
            public_key.verify(signature, signed_bytes(key_id, at, topic, key, value))
        except InvalidSignature:
            raise Unverified("bad_signature", f"the signature does not match the message for key {key_id}") from None
        if signed_at < now - self.max_age:
            raise Unverified("expired", f"signed at {at}, more than {self.max_age} before the server's clock")
        if signed_at > now + self.skew:
            raise Unverified("expired", f"signed at {at}, ahead of the server's clock ({now.isoformat()})")
        return entry.principal()


def check_entry(entry: KeyEntry, chart: OrgChart, where: str) -> None:
    """A key entry's role names a unit where it must, its public key is one, and its times are times."""
    for name, value in (("added_at", entry.added_at), ("revoked_at", entry.revoked_at)):
        try:
            if value is not None:
                parse_time(f"{where}.{name}", value)
        except InvalidValue as e:
            raise ConfigurationError(str(e)) from None
    if entry.role is KeyRole.GRID_WORKER and (entry.unit_id is None or entry.unit_id not in chart):
        raise ConfigurationError(f"{where}.unit_id: a grid worker's key needs a unit of the chart")
    try:
        raw = base64.b64decode(entry.public_key, validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigurationError(f"{where}.public_key: not the base64 of a 32-byte Ed25519 public key") from None


def read_keys(path: Path) -> KeyFile:
    """The key file at `path` (empty if it does not exist yet)."""
    if not path.exists():
        return KeyFile()
    try:
        return msgspec.json.decode(path.read_bytes(), type=KeyFile)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise ConfigurationError(f"{path}: {e}") from None


def _write_keys(path: Path, keys: KeyFile) -> None:
    path.write_bytes(json.dumps(msgspec.to_builtins(keys), ensure_ascii=False, indent=2).encode() + b"\n")


def add_key(
    path: Path, private_out: Path, *, name: str, role: KeyRole, unit_id: str | None, chart: OrgChart
) -> KeyEntry:
    """Make a key pair: the private key to `private_out` (readable by its owner only), the public one appended
    to the key file at `path`."""
    if private_out.exists():
        raise ConfigurationError(f"{private_out}: exists already; a private key is never overwritten")
    private = Ed25519PrivateKey.generate()
    entry = KeyEntry(key_id=key_id_of(private.public_key()), name=name, role=role, unit_id=unit_id,
                     public_key=base64.b64encode(_raw(private.public_key())).decode(),
                     added_at=datetime.now(UTC).isoformat())  # fmt: skip
    check_entry(entry, chart, "key")
    keys = read_keys(path)
    descriptor = os.open(private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))  # fmt: skip
    keys.keys.append(entry)
    _write_keys(path, keys)
    return entry


def revoke_key(path: Path, key_id: str) -> KeyEntry:
    """Mark a key revoked from now on; the worker refuses what it signs from its next look at the file."""
    keys = read_keys(path)
    for i, entry in enumerate(keys.keys):
        if entry.key_id == key_id:
            if entry.revoked_at is None:
                keys.keys[i] = msgspec.structs.replace(entry, revoked_at=datetime.now(UTC).isoformat())
                _write_keys(path, keys)
            return keys.keys[i]
    raise ConfigurationError(f"key_id: no key {key_id!r} in {path}")
