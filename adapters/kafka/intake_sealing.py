"""Residents' personal data on the command topic, sealed by the producer to the engine's intake key before it
leaves the producer, so that no topic, replica or backup of Kafka holds it readable.

The scheme is HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode, with the
`cryptography` package). A sealed field reads `hpke:v1:<base64 of enc ‖ ciphertext>`; the info binds it to
the grievance, the command, the resident's id and the field's name, so a sealed value cannot be moved to
another command, resident or field. The
worker opens it with the intake's private key and the engine seals it again under the resident's own key
(adapters/storage/resident_keys.py) as it stores the event; rejected copies keep it as it came, sealed.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from engine.commands import Command, Report, Resident
from engine.errors import ConfigurationError

PREFIX = "hpke:v1:"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
PERSONAL = ("name", "phone")
WITHHELD = b'{"withheld": "the message may name a resident in clear and did not read as a command"}'


def _info(command: Report, field: str) -> bytes:
    # Bound to the grievance, the command and the resident: a sealed value lifted into another command opens
    # with nothing.
    resident = command.resident.resident_id if command.resident else ""
    parts = [b"grievance-intake/v1", str(command.grievance_id).encode(), command.command_id.encode(),
             resident.encode(), field.encode()]  # fmt: skip
    return b"\n".join(parts)


def is_sealed(value: str) -> bool:
    """Whether a personal field came sealed."""
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class IntakeSealer:
    """Seals commands' personal fields to the engine's intake public key (what producers hold)."""

    public_key: X25519PublicKey

    @classmethod
    def from_file(cls, path: Path) -> IntakeSealer:
        """The sealer for the public key in PEM at `path` (as `grievance key intake` writes it)."""
        try:
            loaded = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"{path}: not an intake public key file ({e})") from None
        if not isinstance(loaded, X25519PublicKey):
            raise ConfigurationError(f"{path}: not an X25519 public key")
        return cls(loaded)

    def sealed(self, command: Command) -> Command:
        """The command with its resident's name and phone sealed (other commands as they are)."""
        if not isinstance(command, Report) or command.resident is None:
            return command
        r = command.resident
        fields = {
            f: PREFIX + base64.b64encode(SUITE.encrypt(v.encode(), self.public_key, info=_info(command, f))).decode()
            for f in PERSONAL
            if (v := getattr(r, f)) and not is_sealed(v)
        }
        return msgspec.structs.replace(command, resident=msgspec.structs.replace(r, **fields)) if fields else command


class Unopened(Exception):
    """A command's personal data came in clear, or sealed so that the intake key does not open it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class IntakeOpener:
    """Opens commands' sealed personal fields with the engine's intake private key (what the worker holds)."""

    private_key: X25519PrivateKey | None

    @classmethod
    def from_file(cls, path: Path | None) -> IntakeOpener:
        """The opener for the private key in PEM at `path`; without one, only commands naming no resident pass."""
        if path is None:
            return cls(None)
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigurationError(f"{path}: not an intake private key file ({e})") from None
        if not isinstance(loaded, X25519PrivateKey):
            raise ConfigurationError(f"{path}: not an X25519 private key")
        return cls(loaded)

    def opened(self, command: Command) -> Command:
        """The command with its resident's sealed fields opened, checked as the schema checks plain ones."""
        if not isinstance(command, Report) or command.resident is None:
            return command
        r = command.resident
        opened: dict[str, str] = {}
        for f in PERSONAL:
            value = getattr(r, f)
            if not value:
                continue
            if not is_sealed(value):
                raise Unopened("unsealed_personal_data", f"resident.{f} came in clear; seal it to the engine's "
                               "intake key (`grievance emit` does)")  # fmt: skip
            if self.private_key is None:
                raise Unopened("unreadable_personal_data", "this worker holds no intake key to open it with")
            try:
                raw = base64.b64decode(value[len(PREFIX) :], validate=True)
                opened[f] = SUITE.decrypt(raw, self.private_key, info=_info(command, f)).decode()
            except Exception:  # not base64, not sealed to our key or this resident, not UTF-8: all alike
                raise Unopened("unreadable_personal_data", f"resident.{f} does not open with the intake key") from None
        plain = msgspec.structs.replace(r, **opened)
        try:
            msgspec.convert(msgspec.to_builtins(plain), PlainResident)  # the plain fields' own constraints
        except msgspec.ValidationError as e:
            raise Unopened("malformed", f"resident, once opened: {e}") from None
        return msgspec.structs.replace(command, resident=plain)


class PlainResident(Resident, frozen=True):
    """A resident's fields as they must read once opened."""

    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    phone: Annotated[str, msgspec.Meta(pattern=r"^$|^\+?[0-9][0-9 -]{2,19}$")] = ""


def withheld(value: bytes) -> bytes:
    """A rejected message's bytes with any personal field in clear replaced, so no copy carries it readable."""
    try:
        document = msgspec.json.decode(value)
    except (msgspec.DecodeError, RecursionError):
        # Unreadable: copied as it came unless it may name a resident, then withheld whole.
        return WITHHELD if b"resident" in value else value
    if not isinstance(document, dict):
        return WITHHELD if b"resident" in value else value
    resident = document.get("resident")
    clear = [f for f in PERSONAL if isinstance(resident, dict) and isinstance(resident.get(f), str)
             and resident[f] and not is_sealed(resident[f])]  # fmt: skip
    if not clear:
        return value  # the copy is the message as it came, byte for byte
    for f in clear:
        resident[f] = "[withheld]"  # type: ignore[index]
    return msgspec.json.encode(document)


def make_intake_key(private_out: Path, public_out: Path) -> None:
    """Make the engine's intake key pair: the private key for the workers (readable by its owner only), the
    public one for every producer."""
    for path in (private_out, public_out):
        if path.exists():
            raise ConfigurationError(f"{path}: exists already; a key is never overwritten")
    private = X25519PrivateKey.generate()
    descriptor = os.open(private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))  # fmt: skip
    public = private.public_key()
    public_out.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
