"""Key-encryption keys: residents' keys are stored wrapped (AES key wrap, RFC 3394, with the `cryptography`
package) under a key held outside the database, in a file of its own. A backup, a replica or a WAL archive of
the database then holds a forgotten resident's key only wrapped; once the key-encryption key it was wrapped
under is rotated out and destroyed, nothing anywhere opens it.

The file: `{"current": ID, "keys": {ID: base64 of 32 bytes, …}}`. `grievance kek new` adds a key and makes it
current; `grievance kek rotate` wraps every stored key again under the current one; `grievance kek retire ID`
destroys a key no stored key is wrapped under any more (once no backup still needs it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from engine.errors import ConfigurationError


@dataclass(frozen=True)
class KeyEncryptionKeys:
    """The key-encryption keys of a file: the current one wraps, any of them unwraps."""

    current: str
    keys: dict[str, bytes]

    @classmethod
    def from_file(cls, path: Path) -> KeyEncryptionKeys:
        """The keys in the file at `path`."""
        try:
            document = json.loads(path.read_text())
            keys = {kid: base64.b64decode(value, validate=True) for kid, value in document["keys"].items()}
            current = document["current"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigurationError(f"GRIEVANCE_RESIDENT_KEK_FILE: {path} does not read as key-encryption keys ({e})"
                                     ) from None  # fmt: skip
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise ConfigurationError(f"GRIEVANCE_RESIDENT_KEK_FILE: {path}: the current key is missing or a key is "
                                     "not 32 bytes")  # fmt: skip
        return cls(current, keys)

    def wrap(self, key: bytes) -> tuple[str, bytes]:
        """(the current key's id, `key` wrapped under it)."""
        return self.current, aes_key_wrap(self.keys[self.current], key)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """The key `wrap` wrapped; a ConfigurationError if the key-encryption key it names is not held."""
        kek = self.keys.get(kek_id)
        if kek is None:
            raise ConfigurationError(f"GRIEVANCE_RESIDENT_KEK_FILE: no key-encryption key {kek_id!r}; a resident's key "
                                     "is wrapped under it")  # fmt: skip
        try:
            return aes_key_unwrap(kek, wrapped)
        except InvalidUnwrap:
            raise ConfigurationError(f"key-encryption key {kek_id!r} does not unwrap a stored key") from None


def new_key_encryption_key(path: Path) -> str:
    """Add a fresh key-encryption key to the file at `path` (made if missing, readable by its owner only) and
    make it current; its id."""
    document = _read(path) if path.exists() else {"keys": {}}
    kid = f"kek-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    document["keys"][kid] = base64.b64encode(os.urandom(32)).decode()
    document["current"] = kid
    _write(path, document)
    return kid


def retire_key_encryption_key(path: Path, kid: str, in_use: set[str]) -> None:
    """Destroy a key-encryption key that no stored key is wrapped under any more."""
    document = _read(path)
    if kid == document.get("current"):
        raise ConfigurationError(f"{kid}: the current key-encryption key cannot be retired; add a new one first")
    if kid in in_use:
        raise ConfigurationError(f"{kid}: stored keys are still wrapped under it; run `grievance kek rotate` first")
    if kid not in document.get("keys", {}):
        raise ConfigurationError(f"{kid}: no such key-encryption key in {path}")
    del document["keys"][kid]
    _write(path, document)


def _read(path: Path) -> dict[str, Any]:
    """The key file's document, or a `ConfigurationError` naming the file if it is not one."""
    try:
        document = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"{path}: not a key-encryption key file ({e})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), dict):
        raise ConfigurationError(f"{path}: not a key-encryption key file (expected an object with 'keys')")
    return document


def _write(path: Path, document: dict[str, object]) -> None:
    temporary = path.with_suffix(path.suffix + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(document, out, indent=2)
    os.replace(temporary, path)
