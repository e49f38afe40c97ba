"""The roster from the command line: import (CSV and TOML), add, move, leave, list, show and forget, names masked
when shown; and a claim refused for a claimant who is not on the roster of the unit where the grievance waits."""

from __future__ import annotations

import json
from pathlib import Path

from engine.roster import entry_uuid
from tests.e2e.test_cli import Cli, cli
from tests.scenario import BUILDING, COMMUNITY, GRID, HOUSEHOLD

__all__ = ["cli"]  # the fixture, shared with the command line's own tests

JOINT = "jc-chengxi-03"
CSV = f"""entry_id,kind,unit_id,name,workplace_id,households,representatives
emp-1,employer,{JOINT},永济电机厂,,,
grp-1,party_group,{BUILDING},3号楼党小组,,,m-1
m-1,member,{HOUSEHOLD},王秀英,emp-1,,
c-1,neighbour_chief,{BUILDING},赵六,,hh-1;hh-2,
m 2,member,{HOUSEHOLD},李四,,,
m-3,member,{JOINT},张三,,,
m-4,member,nowhere,周五,,,
"""
TOML = f"""
[[entry]]
entry_id = "org-1"
kind = "party_organisation"
unit_id = "{COMMUNITY}"
name = "城西第3社区党委"
representatives = ["m-1"]

[[entry]]
entry_id = "w-1"
kind = "grid_worker"
unit_id = "{GRID}"
name = "孙七"
households = ["hh-9"]
"""


def test_a_roster_is_imported_kept_and_read_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "roster.csv").write_text(CSV, encoding="utf-8")
    imported = cli("roster", "import", str(tmp_path / "roster.csv"), ok=False)
    assert imported.returncode == 5, imported.stderr
    assert "4 stored, 0 already on the roster (repeats), 3 refused, of 7 rows" in imported.stdout
    lines = imported.stderr.splitlines()
    assert lines[0].startswith("error: row 5: entry_id: ")
    assert lines[1] == (f"error: row 6: unit_id: a member registers at a member_household, building_group, grid_branch,"
                        f" community; '{JOINT}' is a joint_committee [wrong_level]")  # fmt: skip
    assert lines[2] == "error: row 7: unit_id: no unit 'nowhere' in the organisation chart [unknown_unit]"
    again = cli("roster", "import", str(tmp_path / "roster.csv"), ok=False)
    assert "0 stored, 4 already on the roster (repeats), 3 refused" in again.stdout

    (tmp_path / "more.toml").write_text(TOML, encoding="utf-8")
    toml = cli("roster", "import", str(tmp_path / "more.toml"), ok=False)
    assert toml.returncode == 5
    assert toml.stderr.strip() == "error: row 2: households: only chiefs cover households; a grid_worker covers none " \
                                  "[invalid_value]"  # fmt: skip
    assert "1 stored" in toml.stdout

    added = cli("roster", "add", "w-1", "--kind", "grid_worker", "--unit", GRID, "--name", "孙七")
    assert added.stdout.strip() == f"join: w-1 is on the roster at {GRID}, version 1"
    listed = cli("roster", "list", "--unit", GRID, "--below", "--json")
    rolls = {r["unit_id"]: r["entries"] for r in json.loads(listed.stdout)}
    assert [e["entry_id"] for e in rolls[HOUSEHOLD]] == ["m-1"]
    assert {e["entry_id"] for e in rolls[BUILDING]} == {"c-1", "grp-1"}
    assert rolls[HOUSEHOLD][0]["name"] == "王**"
    assert "王秀英" not in listed.stdout
    assert "王秀英" not in cli("roster", "list").stdout
    assert "永济电机厂" in cli("roster", "list", "--unit", JOINT).stdout  # a body's name is public

    moved = cli("roster", "move", "m-1", "--to", BUILDING)
    assert moved.stdout.strip() == f"move: m-1 is on the roster at {BUILDING}, version 2"
    shown = cli("roster", "show", "m-1")
    assert f"m-1: 党员 member 王**, on the roster at {BUILDING}" in shown.stdout
    assert f"from {HOUSEHOLD} to {BUILDING}" in shown.stdout
    refused = cli("roster", "move", "m-1", "--to", JOINT, ok=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: to_unit_id: a member registers at")
    left = cli("roster", "leave", "m-1", "--reason", "迁出本市")
    assert left.stdout.strip() == f"leave: m-1 is off the roster (was at {BUILDING}), version 3"
    assert "王秀英" in cli("roster", "show", "m-1", "--reveal", "--reason", "核对党员身份").stdout
    assert cli("roster", "show", "m-1", "--reveal", ok=False).returncode == 1
    cli("roster", "forget", "m-1")
    assert "[erased]" in cli("roster", "show", "m-1", "--reveal", "--reason", "核对").stdout
    missing = cli("roster", "show", "nobody", ok=False)
    assert missing.stderr.strip() == "error: entry_id: nobody and nothing is on the roster as 'nobody' [not_found]"
    actions = json.loads(cli("operator-actions", "--limit", "100", "--json").stdout)
    done = [(a["verb"], a["kind"], a["grievance_id"], a["outcome"]) for a in actions if a["kind"].startswith("roster")]
    m1 = str(entry_uuid("m-1"))
    assert ("roster move", "roster move", m1, "applied") in done
    assert ("roster move", "roster move", m1, "refused: wrong_level") in done
    assert ("roster leave", "roster leave", m1, "applied") in done
    assert ("roster import", "roster join", m1, "duplicate") in done
    # Every row that decoded, stored or refused by the rules (not those malformed): 6 of the CSV twice, 2 of TOML.
    assert sum(1 for d in done if d[0] == "roster import") == 6 + 6 + 2


def test_a_claim_by_someone_not_on_the_roster_is_refused(cli: Cli) -> None:
    cli("roster", "add", "m-1", "--kind", "member", "--unit", HOUSEHOLD, "--name", "王秀英")
    gid = cli("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "车位", "--description", "没车位")
    grievance_id = gid.stdout.strip()
    claim = ["claim", grievance_id, "--unit", HOUSEHOLD]
    stranger = cli(*claim, "--mode", "member", "--claimant", "stranger", ok=False)
    assert stranger.returncode == 1
    assert stranger.stderr.startswith(f"error: claimant: 'stranger' is not on the roster of '{HOUSEHOLD}'")
    assert stranger.stderr.strip().endswith("[not_on_roster]")
    mismatch = cli(*claim, "--mode", "group", "--claimant", "m-1", ok=False)
    assert mismatch.stderr.strip() == ("error: mode: 'm-1' is a member, which claims in member mode, not group "
                                       "[claim_mode_mismatch]")  # fmt: skip
    # At a unit keeping a roster a member claims for themselves: not the grid worker at the terminal for them.
    for_them = cli(*claim, "--mode", "member", "--claimant", "m-1", ok=False)
    assert for_them.stderr.strip() == ("error: actor: 'worker-li' may not claim for 'm-1': a member claims for "
                                       "themselves only [does_not_act_for]")  # fmt: skip
    assert "is claimed at" in cli(*claim, "--mode", "member", "--claimant", "m-1", "--actor", "m-1").stdout
    verified = cli("verify", "--all")
    assert "intact" in verified.stdout
    # Moved away since: the grievance still shows who the claimant was, and where, when they claimed.
    cli("roster", "move", "m-1", "--to", BUILDING)
    shown = json.loads(cli("show", grievance_id, "--json").stdout)
    assert shown["claimant_then"] == {"kind": "member", "unit_id": HOUSEHOLD, "name": "王**", "on_roster": True}
    assert f"王**, member registered at {HOUSEHOLD}" in cli("show", grievance_id).stdout


def test_grid_worker_tokens_and_keys_are_issued_to_people_on_the_roster(cli: Cli, tmp_path: Path) -> None:
    tokens, keys = str(tmp_path / "api-tokens.json"), str(tmp_path / "kafka-keys.json")
    token = ["token", "add", "--file", tokens, "--role", "grid_worker", "--unit", GRID, "--name"]
    key = ["key", "add", "--file", keys, "--role", "grid_worker", "--unit", GRID, "--name"]
    # A store without a roster: a grid worker's token for anyone, as before.
    assert cli(*token, "worker-zhou").stdout.startswith("gct_")
    cli("roster", "add", "w-1", "--kind", "grid_worker", "--unit", GRID, "--name", "孙七")
    cli("roster", "add", "m-1", "--kind", "member", "--unit", HOUSEHOLD, "--name", "王秀英")
    cli("roster", "add", "m-9", "--kind", "member", "--unit", "cm-chengdong-01", "--name", "李四")
    for holder, why in [
        ("stranger", "'stranger' is not on the roster: a grid worker's token or key is issued to a grid worker, "
                     "chief or member on it"),
        ("m-9", f"'m-9' is registered at 'cm-chengdong-01', not at or below {GRID!r}, the unit the token or key "
                "covers"),
    ]:  # fmt: skip
        for verb, extra in ((token, []), (key, ["--private-key", str(tmp_path / f"{holder}.pem")])):
            done = cli(*verb, holder, *extra, ok=False)
            assert (done.returncode, done.stdout) == (1, "")
            assert done.stderr == f"error: name: {why} [not_on_roster]\n"
    assert not (tmp_path / "stranger.pem").exists()
    assert [e["name"] for e in json.loads((tmp_path / "api-tokens.json").read_text())["tokens"]] == ["worker-zhou"]
    assert cli(*token, "w-1").stdout.startswith("gct_")
    assert "key " in cli(*key, "m-1", "--private-key", str(tmp_path / "m-1.pem")).stdout
    # The office's own staff are not on the roster, and need not be.
    cli("token", "add", "--file", tokens, "--role", "supervisor", "--unit", GRID, "--name", "supervisor-wang")
    cli("key", "add", "--file", keys, "--role", "gateway", "--name", "app-gateway", "--private-key",
        str(tmp_path / "gw.pem"))  # fmt: skip
    cli("roster", "leave", "m-1")
    left = cli(*token, "m-1", ok=False)
    assert left.stderr.startswith("error: name: 'm-1' left the roster on ")


def test_who_acts_for_a_body_is_named_again_from_the_command_line(cli: Cli) -> None:
    cli("roster", "add", "m-1", "--kind", "member", "--unit", HOUSEHOLD, "--name", "王秀英")
    cli("roster", "add", "m-2", "--kind", "member", "--unit", HOUSEHOLD, "--name", "李四")
    cli("roster", "add", "grp-1", "--kind", "party_group", "--unit", BUILDING, "--name", "3号楼党小组",
        "--representative", "m-1")  # fmt: skip
    named = cli("roster", "represent", "grp-1", "--representative", "m-2")
    assert named.stdout.strip() == f"represent: grp-1 is on the roster at {BUILDING}, version 2"
    shown = cli("roster", "show", "grp-1").stdout
    assert "acted for by: m-2" in shown
    assert "representatives named by worker-li: m-2" in shown
    neither = cli("roster", "represent", "grp-1", ok=False)
    assert neither.stderr == ("error: representatives: name who acts for the body (--representative, repeated), or "
                              "--nobody [invalid_value]\n")  # fmt: skip
    person = cli("roster", "represent", "m-1", "--representative", "m-2", ok=False)
    assert person.stderr == ("error: representatives: people act for bodies; a member has no representatives "
                             "[invalid_value]\n")  # fmt: skip
    gid = cli("report", "--unit", BUILDING, "--category", "parking", "--title", "车位", "--description", "没车位")
    claim = ["claim", gid.stdout.strip(), "--unit", BUILDING, "--mode", "group", "--claimant", "grp-1", "--actor"]
    old = cli(*claim, "m-1", ok=False)
    assert old.stderr == ("error: actor: 'm-1' does not act for 'grp-1': its representatives are m-2 "
                          "[does_not_act_for]\n")  # fmt: skip
    assert "is claimed at" in cli(*claim, "m-2").stdout
    assert "version 3" in cli("roster", "represent", "grp-1", "--nobody").stdout
