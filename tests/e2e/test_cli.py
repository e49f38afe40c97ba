"""The `grievance` command as a grid worker, a supervisor and an auditor use it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.grievance import Grievance
from tests.conftest import grievance
from tests.scenario import BUILDING, HOUSEHOLD


class Cli:
    def __init__(self, database_url: str) -> None:
        self.env = {**os.environ, "GRIEVANCE_DATABASE_URL": database_url, "GRIEVANCE_ACTOR": "worker-li"}

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "adapters.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def test_a_grievance_climbs_and_is_answered_from_the_command_line(cli: Cli) -> None:
    report = (
        "report",
        "--unit",
        HOUSEHOLD,
        "--category",
        "utilities",
        "--title",
        "No hot water",
        "--description",
        "Building 3 since Monday",
        "--command-id",
        "phone-1",
    )
    reported = cli.json(*report)
    gid = reported["grievance_id"]
    assert (reported["result"], reported["status"], reported["version"]) == ("accepted", "waiting", 1)
    again = cli.json(*report)
    assert again["grievance_id"] == gid
    assert again["duplicate"] is True

    cli("claim", gid, "--unit", HOUSEHOLD, "--mode", "member", "--claimant", "member-wang", "--actor", "member-wang")
    escalated = cli("escalate", gid, "--actor", "member-wang")
    assert f"waiting at {BUILDING}" in escalated.stdout

    refused = cli("escalate", gid, "--actor", "member-wang", "--to", "lg", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: to_unit_id: 'lg' is a leading_group; escalating there would skip a step (the next step is "
        "'gr-chengxi-03-2') [escalation_refused]"
    ]

    shown = cli("show", gid)
    assert "楼宇党小组" in shown.stdout
    assert "waiting" in shown.stdout
    assert cli.json("show", gid, "--version", "2")["status"] == "claimed"
    history = cli.json("history", gid)
    assert [e["type"] for e in history["events"]] == ["Reported", "Claimed", "Escalated"]
    assert history["events"][2]["actor"] == "member-wang"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["claim", "not-a-uuid", "--unit", HOUSEHOLD, "--mode", "member", "--claimant", "m"],
            "error: grievance_id: Invalid UUID [malformed]",
        ),
        (
            ["report", "--unit", "st-chengxi", "--category", "other", "--title", "t", "--description", "d"],
            "error: unit_id: unit 'st-chengxi' is a street_committee; expected one of: member_household, "
            "building_group, grid_branch, community [wrong_level]",
        ),
        (
            [
                "report",
                "--unit",
                HOUSEHOLD,
                "--category",
                "other",
                "--title",
                "t",
                "--description",
                "d",
                "--at",
                "2026-03-02T08:30:00",
            ],
            "error: occurred_at: '2026-03-02T08:30:00' carries no timezone offset (add Z or one like +08:00): a time "
            "without one is ambiguous [malformed]",
        ),
        (
            ["show", "6d1f0c1e-0000-4000-8000-000000000000"],
            "error: grievance_id: no grievance 6d1f0c1e-0000-4000-8000-000000000000 [not_found]",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(cli: Cli, args: list[str], line: str) -> None:
    done = cli(*args, ok=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [line]


def test_a_batch_from_stdin_applies_the_good_and_reports_the_bad(cli: Cli, tmp_path: Path) -> None:
    gid = "0b9c7a52-4f0e-4d7a-9d55-3c2f1e0a6b11"
    base = {"grievance_id": gid, "actor": "worker-li", "occurred_at": "2026-03-02T08:30:00+08:00"}
    batch = [
        {
            **base,
            "kind": "report",
            "command_id": "b1",
            "unit_id": HOUSEHOLD,
            "category": "safety",
            "title": "Broken lamp",
            "description": "Stairwell 2",
        },
        {**base, "kind": "rate", "command_id": "b2", "rating": "satisfied"},
    ]
    done = cli("submit", "--json", stdin=json.dumps(batch), ok=False)
    assert done.returncode == 5  # some refused, the rest stored
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["result"] for r in results] == ["accepted", "rejected"]
    assert results[1]["field"] == "status"
    assert cli.json("show", gid)["title"] == "Broken lamp"


def test_a_reader_that_stops_reading_does_not_turn_a_stored_batch_into_a_failure(cli: Cli) -> None:
    # `grievance submit < batch.json | head -1`: every report is stored before the first line is printed.
    batch = [{"kind": "report", "command_id": f"pipe-{i}", "unit_id": HOUSEHOLD, "category": "other",
              "title": f"lamp {i}", "description": "d"} for i in range(400)]  # fmt: skip
    submit = subprocess.Popen([sys.executable, "-m", "adapters.cli", "submit"], env=cli.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert submit.stdin is not None
    assert submit.stdout is not None
    submit.stdin.write(json.dumps(batch))
    submit.stdin.close()
    assert submit.stdout.readline().startswith("command 0 (pipe-0): report: grievance ")
    submit.stdout.close()
    assert submit.wait(timeout=60) == 0
    assert submit.stderr is not None
    assert submit.stderr.read() == ""
    assert cli.json("show", str(Grievance.create_id("pipe-399")))["title"] == "lamp 399"


def test_the_schema_command_prints_json_schema(cli: Cli) -> None:
    schema = json.loads(cli("schema").stdout)
    assert "Report" in schema["$defs"]


def test_a_broken_setting_is_one_line_and_exit_3(tmp_path: Path) -> None:
    cli = Cli("mysql://nowhere/db")
    done = cli("show", "6d1f0c1e-0000-4000-8000-000000000000", ok=False)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "error: GRIEVANCE_DATABASE_URL: scheme 'mysql' is not supported; use sqlite:/// or postgresql:// "
        "[infrastructure]"
    ]


def test_the_tour_plays_a_grievance_to_a_satisfied_resident(cli: Cli) -> None:
    done = cli("tour")
    assert "rate: grievance" in done.stdout
    assert "is resolved at bg-chengdong-01-1-1 (building_group), version 10" in done.stdout


def test_an_auditor_exports_a_history_as_json_lines_and_as_a_report(cli: Cli, tmp_path: Path) -> None:
    (gid,) = {line.split("grievance ")[1].split()[0] for line in cli("tour").stdout.splitlines()
              if line.startswith("report: grievance")}  # fmt: skip
    lines = cli("export", gid, "--format", "jsonl").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["version"] for e in events] == list(range(1, 11))
    assert all(len(e["hash"]) == 64 for e in events)
    report = tmp_path / "report.html"
    cli("export", gid, "--format", "html", "-o", str(report), "--now", "2026-12-01T09:00:00+08:00")
    html = report.read_text()
    assert "The hash chain of all 10 events is intact" in html
    assert "重新办理 reopened" in html
    assert html.count("<tr>") == 11


def test_a_forgotten_resident_reads_erased_and_the_history_still_verifies(cli: Cli) -> None:
    reported = cli.json("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "[urgent] 车位被占",
                        "--description", "d", "--resident-id", "res-9", "--resident-name", "王芳",
                        "--resident-phone", "13800000000")  # fmt: skip
    gid = reported["grievance_id"]

    def payload(*reveal: str) -> Any:
        exported = cli("export", gid, "--format", "jsonl", *reveal).stdout.splitlines()
        (first,) = [json.loads(line) for line in exported]
        return first["payload"]

    assert (payload()["resident_name"], payload()["resident_phone"]) == ("王*", "138****0000"), "masked unless asked"
    whole = payload("--reveal", "--reason", "回访: calling the resident back")
    assert (whole["resident_name"], whole["resident_phone"]) == ("王芳", "13800000000")
    (record,) = cli.json("disclosures", gid)
    assert (record["channel"], record["reason"]) == ("cli: export", "回访: calling the resident back")
    assert cli("export", gid, "--reveal", ok=False).returncode == 1  # no reason, no reading
    assert "[urgent] 车位被占" in cli("show", gid).stdout, "words in brackets are printed as written"
    done = cli("forget-resident", "res-9")
    assert done.stdout.strip() == "resident res-9: key destroyed; their name and phone now read [erased]"
    assert (payload()["resident_name"], payload()["resident_phone"]) == ("[erased]", "[erased]")
    assert "intact" in cli("verify", gid).stdout
    again = cli("forget-resident", "res-9")
    assert again.stdout.strip() == "resident res-9: already erased; their name and phone read [erased]"
    unknown = cli("forget-resident", "res-never", ok=False)
    assert unknown.returncode == 1
    assert "[unknown_resident]" in unknown.stderr


def test_signing_keys_are_made_listed_and_revoked_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    keys, private = tmp_path / "kafka-keys.json", tmp_path / "li.pem"
    made = cli("key", "add", "--file", str(keys), "--name", "worker-li", "--role", "grid_worker", "--unit",
               "gr-chengxi-03-2", "--private-key", str(private))  # fmt: skip
    key_id = made.stdout.split()[1]
    assert private.exists()
    assert "PRIVATE KEY" not in keys.read_text()
    (listed,) = cli.json("key", "list", "--file", str(keys))
    assert (listed["key_id"], listed["name"], listed["revoked_at"]) == (key_id, "worker-li", None)
    again = cli("key", "add", "--file", str(keys), "--name", "x", "--role", "admin", "--private-key", str(private),
                ok=False)  # fmt: skip
    assert (again.returncode, again.stderr.count("\n")) == (1, 1)
    assert "revoked" in cli("key", "revoke", key_id, "--file", str(keys)).stdout
    assert cli.json("key", "list", "--file", str(keys))[0]["revoked_at"]
    command = tmp_path / "claim.json"
    command.write_text(json.dumps({"kind": "rate", "command_id": "c", "grievance_id": str(uuid4()), "actor": "a",
                                   "occurred_at": "2026-12-01T10:00:00+08:00", "rating": "satisfied"}))  # fmt: skip
    unsigned = cli("emit", str(command), ok=False)
    assert (unsigned.returncode, unsigned.stderr.count("\n")) == (3, 1)
    assert "must be signed" in unsigned.stderr


def test_the_cli_records_the_operator_of_every_command_it_applies(cli: Cli) -> None:
    reported = cli.json("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "t", "--description", "d")
    gid = reported["grievance_id"]
    cli("claim", gid, "--unit", HOUSEHOLD, "--mode", "member", "--claimant", "member-wang", "--actor", "member-wang")
    actions = cli.json("operator-actions", gid)
    assert [(a["operator"], a["kind"], a["actor"], a["outcome"]) for a in reversed(actions)] == [
        ("worker-li", "report", "worker-li", "applied"),
        ("worker-li", "claim", "member-wang", "applied"),
    ]


def test_report_prints_the_grievance_id_alone_and_rate_repeats_the_rating(cli: Cli) -> None:
    done = cli("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "t", "--description", "d")
    gid = done.stdout.strip()
    assert str(UUID(gid)) == gid  # what `ID=$(grievance report ...)` captures
    line = f"report: grievance {gid} is waiting at {HOUSEHOLD} (member_household), version 1; the resident's receipt: "
    assert re.fullmatch(re.escape(line) + r"(\w{4}-\w{4}-\w{4}) \(their page: /r/\1\)", done.stderr.strip())
    cli("claim", gid, "--unit", HOUSEHOLD, "--mode", "member", "--claimant", "member-wang", "--actor", "member-wang")
    cli("resolve", gid, "--summary", "done", "--actor", "member-wang")
    # The reporter may not rate their own work; the office's caller records the callback (回访).
    own = cli("rate", gid, "--rating", "satisfied", ok=False)
    assert own.stderr.strip().endswith("[own_work]")
    rated = cli("rate", gid, "--rating", "basically_satisfied", "--actor", "office-zhao")
    assert rated.stdout.strip() == (
        f"rate: grievance {gid} rated basically_satisfied, is resolved at {HOUSEHOLD} (member_household), version 4"
    )


ERROR_LINE = re.compile(r"^error: [\w$.\[\]()@:+ -]+?: .+ \[[a-z_]+\]$")


@pytest.mark.parametrize(
    "args",
    [
        ["show", "{gid}", "--version", "99"],
        ["show", "{gid}", "--version", "1", "--at", "2026-03-02T09:00:00+08:00"],
        ["show", "{gid}", "--at", "yesterday"],
        ["show", "{gid}", "--reveal"],
        ["show", "not-a-uuid"],
        ["history", "6d1f0c1e-0000-4000-8000-000000000000"],
        ["verify"],
        ["dashboard", "--unit", "st-chengxii"],
        ["supervise", "--at", "2026-03-02T09:00:00+08:00", "--every", "60"],
        ["projections", "rebuild", "nonsense"],
    ],
)
def test_every_refusal_of_the_command_line_is_field_reason_and_code(cli: Cli, args: list[str]) -> None:
    gid = cli("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "t", "--description", "d").stdout
    done = cli(*[a.format(gid=gid.strip()) for a in args], ok=False)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert ERROR_LINE.match(line), line


def test_a_malformed_batch_names_every_malformed_command_and_stores_nothing(cli: Cli) -> None:
    gid = str(uuid4())
    batch = [
        {"kind": "report", "command_id": "r-1", "grievance_id": gid, "unit_id": HOUSEHOLD, "category": "neighbours",
         "title": "t", "description": "d"},
        {"kind": "claim", "command_id": "c-1", "grievance_id": gid},
        {"kind": "rate", "grievance_id": gid, "rating": "meh"},
        "claim",
    ]  # fmt: skip
    done = cli("submit", stdin=json.dumps(batch), ok=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: command 1 (c-1): unit_id: Object missing required field `unit_id` [malformed]",
        "error: command 1 (c-1): mode: Object missing required field `mode` [malformed]",
        "error: command 1 (c-1): claimant: Object missing required field `claimant` [malformed]",
        "error: command 2: rating: Invalid enum value 'meh' [malformed]",
        "error: command 3: $: a command is a JSON object with a kind [malformed]",
    ]
    assert cli("show", gid, ok=False).returncode == 1  # not even the good report was stored


def test_a_batch_fills_in_what_the_verbs_do_and_says_which_commands_were_refused(cli: Cli) -> None:
    """Actor from GRIEVANCE_ACTOR, occurred_at now, a command id, a report's id from its command id; exit 5 when
    some were refused and the rest stored, 1 when all were."""
    report = {"kind": "report", "command_id": "phone-1", "unit_id": HOUSEHOLD, "category": "neighbours", "title": "t",
              "description": "d"}  # fmt: skip
    done = cli("submit", stdin=json.dumps(report))
    gid = done.stdout.split()[5]
    assert done.stdout.startswith(f"command 0 (phone-1): report: grievance {gid} is waiting")
    assert cli.json("history", gid)["events"][0]["actor"] == "worker-li"
    resolve = {"kind": "resolve", "grievance_id": gid, "summary": "done"}
    claim = {"kind": "claim", "grievance_id": gid, "unit_id": HOUSEHOLD, "mode": "member", "claimant": "member-wang"}
    done = cli("submit", stdin=json.dumps([resolve, claim]), ok=False)
    assert done.returncode == 5
    assert done.stderr.startswith("error: command 0: status: ")
    assert done.stderr.strip().endswith("[invalid_transition]")
    assert done.stdout.startswith(f"command 1: claim: grievance {gid} is claimed")
    done = cli("submit", stdin=json.dumps([claim]), ok=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: command 0: status: ")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["claim"], "error: grievance_id: Missing argument 'GRIEVANCE_ID' (see grievance claim --help) [usage]"),
        (["show", "x", "--version", "0"],
         "error: --version: Invalid value for '--version': 0 is not in the range x>=1 (see grievance show --help) "
         "[usage]"),
        (["nope"], "error: command line: No such command 'nope' (see grievance --help) [usage]"),
        (["projections", "rebuild", "--pages"],
         "error: --pages: No such option '--pages'. Did you mean '--page-size'? (see grievance projections "
         "rebuild --help) [usage]"),
    ],
)  # fmt: skip
def test_a_command_line_click_cannot_parse_is_one_line_too(args: list[str], line: str) -> None:
    env = {**os.environ, "GRIEVANCE_DATABASE_URL": "sqlite:///unused.db"}
    installed = str(Path(sys.executable).parent / "grievance")  # as a user runs it: the help it names is theirs
    done = subprocess.run([installed, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [line]


def test_the_webhooks_secret_is_made_once_and_the_sender_starts_only_with_it(tmp_path: Path) -> None:
    db, secret = tmp_path / "g.db", tmp_path / "webhook.secret"
    env = {"GRIEVANCE_NOTIFY_WEBHOOK_URL": "https://sms.example.org/send"}
    without = grievance(db, "notify", "--once", env=env)
    assert without.returncode == 3
    assert "GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE" in without.stderr
    assert "--new-secret" in without.stderr
    env["GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE"] = str(secret)
    made = grievance(db, "notify", "--new-secret", env=env)
    assert made.returncode == 0, made.stderr
    assert secret.read_text().startswith("whsec_")
    assert secret.read_text().strip() not in made.stderr
    again = grievance(db, "notify", "--new-secret", env=env)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert grievance(db, "notify", "--once", env=env).returncode == 0
