"""A roster file to import (`grievance roster import FILE`): CSV with a header row, or TOML with `[[entry]]`
tables, each row one person or body to put on the roster.

Columns (TOML keys): entry_id, kind, unit_id, name, and optionally workplace_id, households and representatives
(in CSV, ids separated by `;`), occurred_at (RFC 3339; default: the import's time) and command_id (default: one
derived from the entry id, so importing the same file again repeats nothing). Rows are joined bodies that name no
one first, then people, then the bodies their representatives act for, so that what a row names is on the roster
before it; each keeps its row number for what is said about it.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from adapters import wire
from engine.roster_commands import Join, roster_command_decoder

IMPORT_NAMESPACE = UUID("a4c1d7e2-6b3f-4e09-8d25-7f1e3c9b0a64")
COLUMNS = ("entry_id", "kind", "unit_id", "name", "workplace_id", "households", "representatives", "occurred_at",
           "command_id")  # fmt: skip
LISTS = ("households", "representatives")
MISSING = re.compile(r"missing required field `([a-z_]+)`")


@dataclass(frozen=True)
class BadRow:
    """A row that is no roster command: its number, the field at fault and why."""

    row: int
    field: str
    reason: str


def read_roster_file(path: Path, *, actor: str, at: datetime) -> list[tuple[int, Join | BadRow]]:
    """Each row of the file as (row number, the Join it asks for, or why it is none), in the order to apply them;
    a file that cannot be read at all is one BadRow of row 0."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return [(0, BadRow(0, "file", "is not UTF-8 text"))]
    try:
        records = _toml(text) if path.suffix.lower() == ".toml" else _csv(text)
    except (ValueError, csv.Error) as e:
        return [(0, BadRow(0, "file", " ".join(str(e).split())))]
    rows = [(number, _join(number, record, actor=actor, at=at)) for number, record in enumerate(records, start=1)]

    def phase(item: tuple[int, Join | BadRow]) -> int:
        join = item[1]
        if isinstance(join, BadRow):
            return 0
        return 1 if join.kind.is_person else (2 if join.representatives else 0)

    return sorted(rows, key=phase)


def _csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ValueError(f"the header names {', '.join(map(repr, unknown))}, not among {', '.join(COLUMNS)}")
    missing = [name for name in COLUMNS[:4] if name not in header]
    if missing:
        raise ValueError(f"the header lacks {', '.join(missing)}")
    records = []
    for row in reader:
        record: dict[str, Any] = {k: v.strip() for k, v in row.items() if k is not None and v and v.strip()}
        if None in row:
            record["$extra"] = row[None]
        for name in LISTS:
            if name in record:
                record[name] = [part.strip() for part in record[name].split(";") if part.strip()]
        records.append(record)
    return records


def _toml(text: str) -> list[dict[str, Any]]:
    document = tomllib.loads(text)
    entries = document.get("entry", [])
    if not isinstance(entries, list) or set(document) - {"entry"}:
        raise ValueError("a roster file in TOML holds [[entry]] tables and nothing else")
    return [e if isinstance(e, dict) else {"$": e} for e in entries]


def _join(number: int, record: dict[str, Any], *, actor: str, at: datetime) -> Join | BadRow:
    if "$extra" in record:
        return BadRow(number, "$", "has more cells than the header has columns")
    if "$" in record:
        return BadRow(number, "$", "is not a table of an entry's fields")
    entry_id = record.get("entry_id")
    fields = {
        "verb": "join",
        "actor": actor,
        "occurred_at": at.isoformat(),
        "command_id": f"import:{uuid5(IMPORT_NAMESPACE, str(entry_id)).hex}",
        **record,
    }
    try:
        join = roster_command_decoder.convert(fields)
    except wire.UNDECODABLE as e:
        rejected = wire.malformed(e)
        field = rejected.field.removeprefix("$.")
        if field == "$" and (missing := MISSING.search(rejected.reason)):
            field = missing.group(1)  # a row without a column's value: that column is the field at fault
        return BadRow(number, field, rejected.reason)
    if not isinstance(join, Join):
        return BadRow(number, "verb", "a roster file only joins entries")
    return join
