"""API tokens: how the HTTP service authenticates a request's principal. Only each token's SHA-256 is kept.
What a principal may then do is engine.access's to decide."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from pathlib import Path

import msgspec

from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.errors import ConfigurationError

# The roles a token can carry: operators and the engine's own processes never come over HTTP.
TOKEN_ROLES = tuple(r for r in Role if r not in (Role.OPERATOR, Role.SYSTEM))


class TokenEntry(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One token as stored: never the token itself, only its SHA-256."""

    name: str
    role: Role
    unit_id: str | None = None
    sha256: str


class TokenFile(msgspec.Struct, kw_only=True):
    """The token file's document: a list of entries."""

    tokens: list[TokenEntry] = []


def digest(token: str) -> str:
    """The SHA-256 of a token, as the token file keeps it."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The tokens the service accepts, by hash."""

    def __init__(self, entries: Iterable[TokenEntry], chart: OrgChart) -> None:
        self.by_hash: dict[str, TokenEntry] = {}
        for i, e in enumerate(entries):
            if e.role not in TOKEN_ROLES:
                raise ConfigurationError(f"tokens[{i}].role: {e.role.value} is not a role a token can carry")
            if e.role.needs_unit:
                if e.unit_id is None:
                    raise ConfigurationError(f"tokens[{i}].unit_id: a {e.role.value} token needs a unit")
                if e.unit_id not in chart:
                    raise ConfigurationError(f"tokens[{i}].unit_id: {e.unit_id!r} is not a unit of the chart")
            if len(e.sha256) != 64:
                raise ConfigurationError(f"tokens[{i}].sha256: expected 64 hex digits")
            self.by_hash[e.sha256.lower()] = e

    @classmethod
    def from_source(cls, chart: OrgChart, *, json_text: str | None, path: Path | None) -> TokenBook:
        """Tokens from the JSON itself, else from the file at `path`; neither: no tokens."""
        if json_text:
            return cls(_parse(json_text.encode(), "GRIEVANCE_API_TOKENS").tokens, chart)
        if path is not None:
            return cls(read_file(path).tokens, chart)
        return cls([], chart)

    def authenticate(self, token: str) -> Principal | None:
        """The holder of `token`, or None if it is not one of ours."""
        entry = self.by_hash.get(digest(token))
        if entry is None:
            return None
        return Principal(entry.name, entry.role, entry.unit_id)


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


def issue(path: Path, name: str, role: Role, unit_id: str | None, chart: OrgChart) -> str:
    """A new token for `name`, its hash appended to the file at `path`; the token is returned, never stored."""
    token = "gct_" + secrets.token_urlsafe(32)
    book = read_file(path)
    entry = TokenEntry(name=name, role=role, unit_id=unit_id, sha256=digest(token))
    TokenBook([*book.tokens, entry], chart)  # validates the new entry against the chart
    book.tokens.append(entry)
    path.write_bytes(json.dumps(msgspec.to_builtins(book), ensure_ascii=False, indent=2).encode() + b"\n")
    return token
