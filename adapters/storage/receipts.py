"""Residents' receipts (回执): the short code a report gives the resident, which opens their own page.

A code is derived, never drawn: HMAC-SHA256 of the grievance id under a server secret (the key file
GRIEVANCE_RECEIPT_KEY_FILE names), 60 bits in twelve Crockford base-32 characters, shown as
`ABCD-EFGH-JKMN`. A retried report derives the same code. The table beside the events holds, per
grievance, only an HMAC of the code under the same secret: who can read the database, but not the key
file, can neither read a code nor test a guess offline. Finding a code re-derives it from the grievance
the table points at and compares the two in constant time, so a row moved to another grievance opens
nothing. Replacing the secret retires every code issued under it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.storage.side_table import SideTable
from engine.errors import ConfigurationError

TABLE = "grievance_receipts"
SECRET_BYTES = 32
# Crockford's base 32: no I, L, O or U, which read as 1, 1, 0 or a rude word; case does not matter.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12  # 60 bits: a million receipts leave one guess in a billion a hit, and guesses are rate-limited
_READS_AS = {"O": "0", "I": "1", "L": "1"}


def normalised(text: str) -> str | None:
    """The code `text` spells (dashes, spaces and case ignored; O read as 0, I and L as 1), or None if it spells
    none: the same for every malformed input, so its shape tells nothing."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    code = "".join(_READS_AS.get(ch, ch) for ch in text.upper() if ch not in "- ")
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def shown(code: str) -> str:
    """A code as printed for a person: three groups of four."""
    return "-".join(code[i : i + 4] for i in range(0, LENGTH, 4))


def read_secret(path: Path, *, create: bool) -> bytes:
    """The receipts' secret from `path` (hex), made (mode 0600) if missing and `create`; a file that holds no
    secret is a `ConfigurationError` naming the setting."""
    if not path.exists() and create:
        try:
            _make(path)
        except FileExistsError:
            pass  # another process made it first: read theirs
        except OSError as e:
            raise ConfigurationError(f"GRIEVANCE_RECEIPT_KEY_FILE: cannot make {path}: {e.strerror or e}") from None
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise ConfigurationError(f"GRIEVANCE_RECEIPT_KEY_FILE: {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"GRIEVANCE_RECEIPT_KEY_FILE: {path} cannot be read as a hex secret ({e})") from None
    if len(secret) < 16:
        raise ConfigurationError(f"GRIEVANCE_RECEIPT_KEY_FILE: {path} holds {len(secret)} bytes; at least 16 needed")
    return secret


def _make(path: Path) -> None:
    """Write a new secret to `path` whole, or leave nothing: a half-written file would refuse every later read."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(partial, path)  # fails if another process made it meanwhile: theirs stands
    finally:
        partial.unlink(missing_ok=True)


class Receipts(SideTable):
    """Issues each grievance its receipt code and finds the grievance a code opens."""

    def __init__(self, datastore: Any, secret: bytes) -> None:
        super().__init__(datastore, TABLE, "lookup TEXT PRIMARY KEY, grievance_id TEXT NOT NULL")
        self._secret = secret

    def code_of(self, grievance_id: UUID) -> str:
        """The grievance's code, as derived (undashed)."""
        digest = hmac.new(self._secret, b"receipt:v1:" + grievance_id.bytes, hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big") >> (64 - 5 * LENGTH)
        return "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(LENGTH)))

    def issue(self, grievance_ids: Iterable[UUID]) -> dict[UUID, str]:
        """Each grievance's code, shown, with its lookup stored (once: issuing again changes nothing)."""
        codes = {gid: self.code_of(gid) for gid in grievance_ids}
        if codes:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.executemany(
                    f"INSERT INTO {self.table} VALUES ({self.mark}, {self.mark}) ON CONFLICT (lookup) DO NOTHING",
                    [(self._lookup(code), str(gid)) for gid, code in codes.items()],
                )
        return {gid: shown(code) for gid, code in codes.items()}

    def find(self, text: str) -> UUID | None:
        """The grievance `text`'s code opens, or None: for a malformed code, an unknown one, or a row that points
        elsewhere than the code derives from, alike."""
        code = normalised(text)
        lookup = self._lookup(code or "")
        rows = self._execute(f"SELECT grievance_id FROM {self.table} WHERE lookup = ?", (lookup,))
        if code is None or not rows:
            return None
        try:
            gid = UUID(str(rows[0]["grievance_id"]))
        except ValueError:
            return None
        return gid if hmac.compare_digest(self.code_of(gid), code) else None

    def _lookup(self, code: str) -> str:
        return hmac.new(self._secret, b"lookup:v1:" + code.encode(), hashlib.sha256).hexdigest()
