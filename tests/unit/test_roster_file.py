"""Reading a roster file to import (adapters/roster_file.py): each bad row named by number and field, the good ones
as Join commands, in an order in which what a row names joins before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.roster_file import BadRow, read_roster_file
from engine.roster import Kind
from engine.roster_commands import Join

AT = datetime(2026, 3, 2, tzinfo=UTC)


def read(tmp_path: Path, name: str, text: str) -> list[tuple[int, Join | BadRow]]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return read_roster_file(tmp_path / name, actor="op", at=AT)


def test_rows_are_read_and_ordered_so_that_what_a_row_names_comes_first(tmp_path: Path) -> None:
    rows = read(tmp_path, "r.csv", "entry_id,kind,unit_id,name,workplace_id,households,representatives\n"
                "org-1,party_organisation,cm-chengdong-01,党委,,,m-1\n"
                "m-1,member,cm-chengdong-01,王五,emp-1,,\n"
                "c-1,building_chief,bg-chengdong-01-1-1,赵六,, hh-1 ; hh-2 ,\n"
                "emp-1,employer,jc-chengdong-01,电机厂,,,\n")  # fmt: skip
    assert [(n, r.entry_id) for n, r in rows if isinstance(r, Join)] == [(4, "emp-1"), (2, "m-1"), (3, "c-1"),
                                                                        (1, "org-1")]  # fmt: skip
    chief = next(r for _, r in rows if isinstance(r, Join) and r.entry_id == "c-1")
    assert (chief.kind, chief.households, chief.occurred_at, chief.actor) == (Kind.BUILDING_CHIEF, ["hh-1", "hh-2"],
                                                                             AT, "op")  # fmt: skip
    again = read(tmp_path, "r.csv", (tmp_path / "r.csv").read_text(encoding="utf-8"))
    # Importing the file again repeats nothing: each row's command id is its entry's.
    assert [r.command_id for _, r in again if isinstance(r, Join)] == [r.command_id for _, r in rows
                                                                       if isinstance(r, Join)]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "row", "field", "reason"),
    [
        ("entry_id,kind,unit_id,name,colour\n", 0, "file", "the header names 'colour'"),
        ("entry_id,kind,name\n", 0, "file", "the header lacks unit_id"),
        ("entry_id,kind,unit_id,name\nm-1,member,u,n,extra\n", 1, "$", "more cells than the header"),
        ("entry_id,kind,unit_id,name\nm-1,chief,u,n\n", 1, "kind", "Invalid enum value 'chief'"),
        ("entry_id,kind,unit_id,name\nm-1,member,u\n", 1, "name", "missing required field"),
    ],
)
def test_each_bad_row_is_named_by_number_and_field(tmp_path: Path, text: str, row: int, field: str,
                                                   reason: str) -> None:  # fmt: skip
    ((number, bad), *_) = read(tmp_path, "r.csv", text)
    assert isinstance(bad, BadRow)
    assert (number, bad.field) == (row, field)
    assert reason.lower() in bad.reason.lower(), bad.reason


def test_a_toml_roster_holds_entry_tables(tmp_path: Path) -> None:
    ((_, join),) = read(tmp_path, "r.toml", '[[entry]]\nentry_id = "m-1"\nkind = "member"\nunit_id = "u"\n'
                        'name = "王五"\noccurred_at = 2026-03-01T08:00:00+08:00\n')  # fmt: skip
    assert isinstance(join, Join)
    assert join.occurred_at.isoformat() == "2026-03-01T08:00:00+08:00"
    ((_, bad),) = read(tmp_path, "bad.toml", 'title = "x"\n')
    assert isinstance(bad, BadRow)
    assert bad.field == "file"
    ((_, broken),) = read(tmp_path, "broken.toml", "[[entry]\n")
    assert isinstance(broken, BadRow)
    ((_, move),) = read(tmp_path, "move.toml", '[[entry]]\nverb = "move"\nentry_id = "m-1"\nto_unit_id = "u"\n')
    assert isinstance(move, BadRow)
    assert move.field == "verb"
