"""Who may do what over the API: tokens (kept only as SHA-256 hashes), roles, and jurisdictions on the chart.

- grid worker: commands for their jurisdiction (the unit named in their token and everything below it);
  reads there too;
- supervisor: reads their subtree of the chart, writes nothing;
- auditor: reads every grievance and every history, writes nothing;
- admin: everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec

from engine.chart import OrgChart


class Role(StrEnum):
    """What a token's holder is in the service chain."""

    GRID_WORKER = "grid_worker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


WRITERS = frozenset({Role.GRID_WORKER, Role.ADMIN})
READS_EVERYTHING = frozenset({Role.AUDITOR, Role.ADMIN})


class TokenFileError(ValueError):
    """The token file or variable is malformed; the message names where and why."""


class TokenEntry(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One token as stored: never the token itself, only its SHA-256."""

    name: str
    role: Role
    unit_id: str | None = None
    sha256: str


class TokenFile(msgspec.Struct, kw_only=True):
    tokens: list[TokenEntry] = []


@dataclass(frozen=True)
class Principal:
    """The holder of a presented token: their name is the actor of every command they send."""

    name: str
    role: Role
    unit_id: str | None

    def may_write(self) -> bool:
        return self.role in WRITERS


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The tokens the service accepts, by hash."""

    def __init__(self, entries: Iterable[TokenEntry], chart: OrgChart) -> None:
        self.by_hash: dict[str, TokenEntry] = {}
        for i, e in enumerate(entries):
            if e.role is Role.GRID_WORKER or e.role is Role.SUPERVISOR:
                if e.unit_id is None:
                    raise TokenFileError(f"tokens[{i}].unit_id: a {e.role.value} token needs a unit")
                if e.unit_id not in chart:
                    raise TokenFileError(f"tokens[{i}].unit_id: {e.unit_id!r} is not a unit of the chart")
            if len(e.sha256) != 64:
                raise TokenFileError(f"tokens[{i}].sha256: expected 64 hex digits")
            self.by_hash[e.sha256.lower()] = e

    @classmethod
    def from_env(cls, chart: OrgChart, environ: Mapping[str, str] | None = None) -> TokenBook:
        """GRIEVANCE_API_TOKENS (the JSON itself) or GRIEVANCE_API_TOKENS_FILE (a path to it); none: no tokens."""
        env = os.environ if environ is None else environ
        if raw := env.get("GRIEVANCE_API_TOKENS"):
            return cls(_parse(raw.encode(), "GRIEVANCE_API_TOKENS").tokens, chart)
        if path := env.get("GRIEVANCE_API_TOKENS_FILE"):
            return cls(read_file(Path(path)).tokens, chart)
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
        raise TokenFileError(f"{where}: {e}") from None


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


class Jurisdiction:
    """Which units and grievances a principal may act on or read, by the chart."""

    def __init__(self, chart: OrgChart) -> None:
        self.chart = chart

    def covers(self, principal: Principal, unit_id: str) -> bool:
        """Whether `unit_id` is the principal's unit or below it (everything, for auditors and admins)."""
        if principal.role in READS_EVERYTHING:
            return True
        if principal.unit_id is None or unit_id not in self.chart:
            return False
        return principal.unit_id in self.chart.lineage(unit_id)

    def covers_any(self, principal: Principal, unit_ids: Iterable[str]) -> bool:
        return any(self.covers(principal, u) for u in unit_ids)

    def may_read_grievance(self, principal: Principal, grievance: Any) -> bool:
        """Readers see a grievance that passed through their subtree (a street sees its residents' grievance
        even after it climbed above the street)."""
        return self.covers_any(principal, [*grievance.path, grievance.unit_id])
