"""API tokens: how the HTTP service authenticates a request's principal. Only each token's SHA-256 is kept.
What a principal may then do is engine.access's to decide."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import structlog

from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.clock import system_clock
from engine.errors import ConfigurationError, InvalidValue
from engine.grievance import ID_ALPHABET, ID_PATTERN, MAX_ID
from engine.times import parse_time

log = structlog.get_logger("grievance.http")

# The roles a token can carry: operators and the engine's own processes never come over HTTP.
TOKEN_ROLES = tuple(r for r in Role if r not in (Role.OPERATOR, Role.GATEWAY, Role.SYSTEM))


class TokenEntry(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One token as stored: never the token itself, only its SHA-256."""

    name: str
    role: Role
    unit_id: str | None = None
    sha256: str
    # RFC 3339; a token past it, or revoked, is refused (the file is reread when it changes: no restart).
    expires_at: str | None = None
    revoked_at: str | None = None
    # May ask to see residents' names and phones whole (with a reason; each reading is recorded).
    reveals_personal_data: bool = False

    def valid_at(self, now: datetime) -> bool:
        """Whether the token may be used at `now`: not revoked, not expired."""
        return self.revoked_at is None and (self.expires_at is None or parse_time("expires_at", self.expires_at) > now)


class TokenFile(msgspec.Struct, kw_only=True):
    """The token file's document: a list of entries."""

    tokens: list[TokenEntry] = []


def check_holder(i: int, entry: TokenEntry) -> None:
    """Refuse entry `i` of a token file if its holder's name is not one the engine takes as an actor: the name is
    the actor of every command the token sends, and a line break in it would forge a log line."""
    if not ID_PATTERN.match(entry.name):
        raise ConfigurationError(f"tokens[{i}].name: {entry.name!r} must be 1-{MAX_ID} characters of "
                                 f"{ID_ALPHABET}, starting with a letter or digit")  # fmt: skip


def digest(token: str) -> str:
    """The SHA-256 of a token, as the token file keeps it."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The tokens the service accepts, by hash; read again from their file whenever it changes, so that a token
    revoked or removed there is refused from the next request on."""

    def __init__(
        self, entries: Iterable[TokenEntry], chart: OrgChart, *, path: Path | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:  # fmt: skip
        self.chart, self.path, self.clock = chart, path, clock
        self.by_hash = self._checked(entries)
        self._lock = threading.Lock()
        self._seen = _stamp(path) if path else None

    def _checked(self, entries: Iterable[TokenEntry]) -> dict[str, TokenEntry]:
        by_hash: dict[str, TokenEntry] = {}
        chart = self.chart
        for i, e in enumerate(entries):
            check_holder(i, e)
            if e.role not in TOKEN_ROLES:
                raise ConfigurationError(f"tokens[{i}].role: {e.role.value} is not a role a token can carry")
            if e.role.needs_unit:
                if e.unit_id is None:
                    raise ConfigurationError(f"tokens[{i}].unit_id: a {e.role.value} token needs a unit")
                if e.unit_id not in chart:
                    raise ConfigurationError(f"tokens[{i}].unit_id: {e.unit_id!r} is not a unit of the chart")
            if len(e.sha256) != 64:
                raise ConfigurationError(f"tokens[{i}].sha256: expected 64 hex digits")
            for field, value in (("expires_at", e.expires_at), ("revoked_at", e.revoked_at)):
                try:
                    if value:
                        parse_time(f"tokens[{i}].{field}", value)
                except InvalidValue as refused:
                    raise ConfigurationError(str(refused)) from None
            by_hash[e.sha256.lower()] = e
        return by_hash

    @classmethod
    def from_source(cls, chart: OrgChart, *, json_text: str | None, path: Path | None) -> TokenBook:
        """Tokens from the JSON itself, else from the file at `path`; neither: no tokens."""
        if json_text:
            return cls(_parse(json_text.encode(), "GRIEVANCE_API_TOKENS").tokens, chart)
        if path is not None:
            if not path.is_file():
                raise ConfigurationError(f"GRIEVANCE_API_TOKENS_FILE: {path} is not a file (`grievance token add` "
                                         "writes one)")  # fmt: skip
            return cls(read_file(path).tokens, chart, path=path)
        return cls([], chart)

    def authenticate(self, token: str) -> Principal | None:
        """The holder of `token`, or None if it is not one of ours, or revoked, or expired."""
        self._reread()
        entry = self.by_hash.get(digest(token))
        if entry is None or not entry.valid_at(self.clock()):
            return None
        return Principal(entry.name, entry.role, entry.unit_id, reveals_personal_data=entry.reveals_personal_data)

    def _reread(self) -> None:
        if self.path is None or _stamp(self.path) == self._seen:
            return
        with self._lock:
            stamp = _stamp(self.path)
            if stamp == self._seen:
                return
            try:
                self.by_hash = self._checked(read_file(self.path).tokens)
            except ConfigurationError as e:  # half-written or broken: the tokens last read stand, and it is said
                log.error("the token file does not read; the tokens last read stand", error=str(e))
            self._seen = stamp


def _stamp(path: Path) -> tuple[float, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0.0, -1)
    return (stat.st_mtime, stat.st_size)


def _parse(data: bytes, where: str) -> TokenFile:
    try:
        return msgspec.json.decode(data, type=TokenFile)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise ConfigurationError(f"{where}: {e}") from None


def read_file(path: Path) -> TokenFile:
    """The token file at `path` (empty if it does not exist yet)."""
    if not path.exists():
        return TokenFile()
    return _parse(path.read_bytes(), str(path))


def issue(
    path: Path, name: str, role: Role, unit_id: str | None, chart: OrgChart, *, expires_in: timedelta | None = None,
    reveals_personal_data: bool = False,
) -> str:  # fmt: skip
    """A new token for `name`, valid for `expires_in` (None: until revoked), its hash appended to the file at
    `path`; the token is returned, never stored."""
    token = "gct_" + secrets.token_urlsafe(32)
    book = read_file(path)
    expires_at = (system_clock() + expires_in).isoformat() if expires_in else None
    entry = TokenEntry(name=name, role=role, unit_id=unit_id, sha256=digest(token), expires_at=expires_at,
                       reveals_personal_data=reveals_personal_data)  # fmt: skip
    TokenBook([*book.tokens, entry], chart)  # validates the new entry against the chart
    book.tokens.append(entry)
    _write(path, book)
    return token


def revoke(path: Path, holder: str) -> list[TokenEntry]:
    """Revoke every token of the holder named `holder`, or the one whose hash starts with it (8 hex digits or
    more); the service refuses them from its next look at the file. The entries revoked now."""
    book = read_file(path)
    now = system_clock().isoformat()
    revoked = []
    for i, e in enumerate(book.tokens):
        if e.revoked_at is None and (e.name == holder or (len(holder) >= 8 and e.sha256.startswith(holder.lower()))):
            book.tokens[i] = msgspec.structs.replace(e, revoked_at=now)
            revoked.append(book.tokens[i])
    if not revoked:
        raise ConfigurationError(f"holder: no token in use held by {holder!r} or hashed {holder!r}… in {path}")
    _write(path, book)
    return revoked


def _write(path: Path, book: TokenFile) -> None:
    path.write_bytes(json.dumps(msgspec.to_builtins(book), ensure_ascii=False, indent=2).encode() + b"\n")
