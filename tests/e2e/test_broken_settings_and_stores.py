"""Every verb under every kind of broken setting and damaged store: one line on stderr and the documented exit
code (3 for a setting or a database that cannot be reached, 4 for a grievance whose history is broken), never
a traceback. The verbs run in-process through click, as `grievance` runs them; a few run as real processes."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import click
import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from tests.conftest import grievance

# Verbs that read no setting of the store: they look after their own files (a key, a token file) and need not
# stop for a setting they never read; they must still never crash, and a refusal is one line. (`key add` and
# `token add` open the store: a grid worker's key or token is issued to one on its roster.)
READS_NO_SETTING = {"schema", "kek new", "key intake", "key list", "key revoke", "token list", "token revoke",
                    "checkpoint-key", "offline-verifier"}  # fmt: skip
# Verbs that read a key or checkpoint file named on the command line before the store: given none that exists
# here, they may refuse it first (one line, exit 1) rather than reach the setting.
FILE_FIRST = {"checkpoint", "notary", "witness", "prove"}
# Verbs that read the settings but need no store: a setting of their own (the signing key) may be named first.
STORELESS = {"emit"}
# Verbs that, with good settings, run until stopped: only their start under broken settings is tried.
LONG_RUNNING = {"serve", "worker", "relay", "projections run", "notary", "notify"}

BROKEN_SETTINGS = {
    "GRIEVANCE_LIMITS_HOURS": [
        '{"grid_brunch": [1, 2]}',
        '{"grid_branch": [-1, 2]}',
        "nonsense",
        '{"grid_branch": [NaN, 1]}',
        '{"grid_branch": [1e308, 1e308]}',
        '{"member_household": [1e8, 2e8]}',
    ],
    "GRIEVANCE_DURABILITY": ["bogus"],
    "GRIEVANCE_LOG_FORMAT": ["bogus"],
    "GRIEVANCE_CHART": ["/nope/chart.json", "/nope/two\nlines.json"],
    "GRIEVANCE_DATABASE_URL": [
        "bogus://x",
        "postgresql://root@127.0.0.1:1/test",
        "postgresql://root@127.0.0.1:5432/no_such_database_here",
        "sqlite:///%00",
        "postgresql://[::1",
        "postgresql://root@127.0.0.1:99999/test",
        "postgresql://root@127.0.0.1:abc/test",
        "postgresql://root@127.0.0.1/test?schema=bad;drop",
    ],
    "GRIEVANCE_DISPLAY_TIMEZONE": ["China/Beijing"],
    "GRIEVANCE_CLOCK_SKEW_MINUTES": ["-5"],
    "GRIEVANCE_RESIDENT_KEK_FILE": ["/nope/keks.json"],
    "GRIEVANCE_ROSTER_CLAIMS": ["bogus"],
    "GRIEVANCE_STAR_THRESHOLDS": ["150,10", "0"],
    "GRIEVANCE_NOTIFY_WEBHOOK_URL": ["http://sms.example.org/send"],
}


def _leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


VALUES = {
    "grievance_id": "00000000-0000-5000-8000-000000000001", "unit_id": "lg", "claimant": "member-wang",
    "resident_id": "res-1", "kek_id": "kek-1", "name": "someone", "key_id": "k-1", "note": "n", "reason": "r",
    "answer": "a", "title": "t", "description": "d", "summary": "s", "holder": "h", "every": "60",
    "log_key": "grievances.example/log+00000000+AQID", "entry_id": "m-1", "to_unit_id": "lg", "year": "2020",
    "workplace_id": "employer-1",
}  # fmt: skip


def _args(path: tuple[str, ...], command: click.Command, tmp: Path, grievance_id: str) -> list[str]:
    """The verb's required arguments and options, with values that parse: the run reaches its settings."""
    args = list(path)
    for param in command.params:
        if not param.required:
            continue
        if param.name in ("private_out", "public_out", "file", "key_file", "checkpoint_file", "directory"):
            value = str(tmp / f"{param.name}.out")
        elif param.name == "grievance_id":
            value = grievance_id
        elif isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        else:
            value = VALUES[str(param.name)]
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    if path == ("verify",):
        args.append("--all" if grievance_id == VALUES["grievance_id"] else grievance_id)
    return args


VERBS = sorted(_leaves(main))


# What `submit` and `emit` read: one command that parses, so that they go on to their settings.
ONE_COMMAND = (
    '[{"kind": "record_progress", "grievance_id": "%s", "note": "still there", "command_id": "c-1", '
    '"actor": "member-wang", "occurred_at": "2020-06-01T09:00+08:00"}]'
)


def _run(args: list[str], env: dict[str, str], grievance_id: str = VALUES["grievance_id"]) -> Result:
    return CliRunner().invoke(main, args, env=env, input=ONE_COMMAND % grievance_id, catch_exceptions=True)


def _one_line(done: Result) -> str:
    assert done.exception is None or isinstance(done.exception, SystemExit), (
        f"a traceback: {done.exception!r}\n{done.stderr}"
    )
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "grievances.db"


@pytest.mark.parametrize(("setting", "value"), [(k, v) for k, vs in BROKEN_SETTINGS.items() for v in vs])
def test_every_verb_under_a_broken_setting_is_one_line_and_exit_3(setting: str, value: str, store: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    # The key-encryption key file is named, so that `kek` verbs go on to the setting under test.
    env = {"GRIEVANCE_DATABASE_URL": f"sqlite:///{store}", "GRIEVANCE_RESIDENT_KEK_FILE": str(tmp_path / "keks.json"),
           setting: value}  # fmt: skip
    for path, command in VERBS:
        done = _run(_args(path, command, tmp_path / "-".join(path), VALUES["grievance_id"]), env)
        verb = " ".join(path)
        if verb in READS_NO_SETTING:
            if done.exit_code != 0:
                _one_line(done)
            continue
        line = _one_line(done)
        if verb in FILE_FIRST and done.exit_code == 1:
            continue
        assert done.exit_code == 3, (verb, done.exit_code, line)
        if verb in STORELESS and not line.startswith(f"error: {setting}: "):
            assert line.startswith("error: GRIEVANCE_KAFKA_"), (verb, line)  # a setting it needs first
        else:
            assert line.startswith(f"error: {setting}: "), (verb, line)
        assert line.endswith("[infrastructure]"), (verb, line)


def _damage(db: Path, how: str) -> UUID:
    """Damage one grievance of at least four events, as a careless hand or a bad disk would; its id."""
    with sqlite3.connect(db) as conn:
        # A grievance's, not a roster record's (the demo's store holds both).
        (oid,) = conn.execute("SELECT originator_id FROM stored_events WHERE topic LIKE 'engine.grievance:%' GROUP "
                              "BY originator_id HAVING max(originator_version) >= 4 LIMIT 1").fetchone()  # fmt: skip
        where = f"originator_id = '{oid}'"
        statements = {
            "a middle event deleted": f"DELETE FROM stored_events WHERE {where} AND originator_version = 2",
            "its first event deleted": f"DELETE FROM stored_events WHERE {where} AND originator_version = 1",
            "an event's bytes garbled": f"UPDATE stored_events SET state = X'7b2278' WHERE {where} "
                                        "AND originator_version = 3",
            "an event's bytes rewritten as text": f"UPDATE stored_events SET state = replace(state, 'a', 'b') "
                                                  f"WHERE {where} AND originator_version = 3",
            "an event's bytes set to NULL": f"UPDATE stored_events SET state = NULL WHERE {where} "
                                            "AND originator_version = 3",
            "an event of no known type": f"UPDATE stored_events SET topic = 'engine.grievance:Gone' WHERE {where} "
                                         "AND originator_version = 2",
        }  # fmt: skip
        conn.execute(statements[how])
    return UUID(oid)


DAMAGE = [
    "a middle event deleted",
    "its first event deleted",
    "an event's bytes garbled",
    "an event's bytes set to NULL",
    "an event of no known type",
    "an event's bytes rewritten as text",
]
# What each verb that names the broken grievance exits with: 4, naming the version, as `verify` does.
READS_THE_GRIEVANCE = {"show", "history", "export", "verify", "claim", "escalate", "progress", "rate", "reply",
                       "resolve"}  # fmt: skip


@pytest.mark.parametrize("how", DAMAGE)
def test_every_verb_on_a_damaged_store_names_the_broken_link(how: str, demo_db: Path, store: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    shutil.copy(demo_db, store)
    broken = _damage(store, how)
    env = {"GRIEVANCE_DATABASE_URL": f"sqlite:///{store}"}
    for path, command in VERBS:
        verb = " ".join(path)
        if verb in LONG_RUNNING or verb in READS_NO_SETTING or path[0] in ("kek", "key", "token", "demo", "tour"):
            continue  # these read no grievance (a demo or tour refuses a store that holds events)
        args = _args(path, command, tmp_path / "-".join(path), str(broken))
        done = _run(args, env, str(broken))
        assert done.exception is None or isinstance(done.exception, SystemExit), (verb, repr(done.exception))
        if verb == "verify":  # its report is its output: the broken link, on stdout
            assert done.exit_code == 4, (verb, done.exit_code, done.output)
            assert done.stdout.startswith(f"broken: grievance {broken} at version "), done.stdout
        elif verb in READS_THE_GRIEVANCE:
            line = _one_line(done)
            assert done.exit_code == 4, (verb, done.exit_code, line)
            assert line.startswith(f"error: grievance_id: grievance {broken}'s stored history is broken at "
                                   "version "), (verb, line)  # fmt: skip
            assert line.endswith("[broken_history]"), (verb, line)
    # The store-wide readers go on past it: the views set its unreadable events aside and say so.
    rebuilt = _run(["projections", "rebuild"], env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "events set aside as unreadable" in rebuilt.stdout, rebuilt.stdout
    assert _run(["verify", "--all"], env).exit_code == 4
    assert _run(["dashboard", "--at", "2021-01-01T00:00+08:00"], env).exit_code == 0


def test_a_batch_with_a_command_on_a_broken_grievance_stores_the_others(demo_db: Path, store: Path) -> None:
    shutil.copy(demo_db, store)
    broken = _damage(store, "a middle event deleted")
    batch = (f'[{{"kind": "record_progress", "grievance_id": "{broken}", "note": "still there"}}, '
             '{"kind": "report", "unit_id": "gr-chengxi-01-1", "category": "environment", "title": "路灯不亮", '
             '"description": "3号楼路灯不亮"}]')  # fmt: skip
    done = grievance(store, "submit", input=batch)
    assert done.returncode == 5, done.stderr
    assert done.stderr.strip().startswith("error: command 0")
    assert "[broken_history]" in done.stderr
    assert "report: grievance" in done.stdout


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://root@127.0.0.1:1/test", "connection refused"),
        ("postgresql://root@127.0.0.1:5432/no_such_database_here", 'database "no_such_database_here" does not exist'),
        ("postgresql://no_such_role@127.0.0.1:5432/test", 'role "no_such_role" does not exist'),
    ],
)
def test_a_database_that_cannot_be_reached_says_why_as_a_process(url: str, said: str) -> None:
    done = grievance(Path("unused.db"), "show", VALUES["grievance_id"], env={"GRIEVANCE_DATABASE_URL": url})
    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: GRIEVANCE_DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:")
    assert said in line
    assert line.endswith("[infrastructure]")


def test_a_missing_token_file_stops_serve_before_it_serves(store: Path) -> None:
    done = grievance(store, "serve", "--port", "1", env={"GRIEVANCE_API_TOKENS_FILE": "/nope/tokens.json"})
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "error: GRIEVANCE_API_TOKENS_FILE: /nope/tokens.json is not a file (`grievance token add` writes one) "
        "[infrastructure]"
    ]


def test_forgetting_a_resident_no_report_named_is_refused(demo_db: Path, store: Path) -> None:
    shutil.copy(demo_db, store)
    done = grievance(store, "forget-resident", "nobody-at-all")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: resident_id: no report has named resident 'nobody-at-all': nothing to erase [unknown_resident]"
    )


def test_the_api_answers_a_broken_history_with_a_problem_not_a_500(demo_db: Path, store: Path) -> None:
    from litestar.testing import TestClient

    from adapters.composition import build_http_services
    from adapters.http.app import create_app
    from adapters.http.tokens import TokenBook, TokenEntry, digest
    from adapters.settings import Settings
    from engine.access import Role

    shutil.copy(demo_db, store)
    broken = _damage(store, "a middle event deleted")
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{store}"))
    services.tokens = TokenBook([TokenEntry(name="leader-liu", role=Role.SUPERVISOR, unit_id="lg",
                                            sha256=digest("leader-token"))], services.chain.chart)  # fmt: skip
    with TestClient(app=create_app(services)) as client:
        client.headers["Authorization"] = "Bearer leader-token"
        for path in ("", "/history", "/history.html", "/history.jsonl"):
            answer = client.get(f"/api/v1/grievances/{broken}{path}")
            assert answer.status_code == 422, (path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["code"] == "broken_history"
        others = client.get("/api/v1/dashboard/headline", params={"at": "2021-01-01T00:00+08:00"})
        assert others.status_code == 200
    services.chain.close()


def test_a_reason_for_reading_personal_data_is_one_line(demo_db: Path, store: Path) -> None:
    shutil.copy(demo_db, store)
    with sqlite3.connect(store) as conn:
        (oid,) = conn.execute("SELECT originator_id FROM stored_events WHERE topic LIKE 'engine.grievance:%' "
                              "LIMIT 1").fetchone()  # fmt: skip
    forged = "routine check\n2026-12-03 02:39 CST  auditor-zhang (auditor) read grievance x via http: court order"
    done = grievance(store, "show", str(UUID(oid)), "--reveal", "--reason", forged)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: reason: must be one line; it holds U+000A [invalid_value]"
    assert "auditor-zhang" not in grievance(store, "disclosures").stdout  # nothing was recorded


def test_a_batch_whose_kind_is_not_a_name_is_malformed(store: Path) -> None:
    done = grievance(store, "submit", input='[{"kind": ["report"]}, {"kind": {"a": 1}}]')
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: command 0: kind: Expected `str`, got `list` [malformed]",
        "error: command 1: kind: Expected `str`, got `dict` [malformed]",
    ]


def test_a_key_encryption_key_file_left_out_is_a_setting_not_a_broken_history(store: Path, tmp_path: Path) -> None:
    named = grievance(store, "report", "--unit", "gr-chengxi-01-1", "--category", "parking", "--title", "t",
                      "--description", "d", "--resident-id", "r79", "--resident-name", "刘德华",
                      "--resident-phone", "13700007777")  # fmt: skip
    gid = named.stdout.strip()
    keks = {"GRIEVANCE_RESIDENT_KEK_FILE": str(tmp_path / "kek.json")}
    assert grievance(store, "kek", "new", env=keks).returncode == 0
    assert grievance(store, "kek", "rotate", env=keks).returncode == 0
    for verb in ("show", "history"):
        done = grievance(store, verb, gid)
        assert done.returncode == 3, done.stderr
        assert done.stderr.strip().splitlines() == [
            "error: GRIEVANCE_RESIDENT_KEK_FILE: residents' keys are stored wrapped; name the key-encryption key "
            "file [infrastructure]"
        ]


@pytest.mark.parametrize("verb", [("token", "add", "--name", "admin-2", "--role", "admin"), ("token", "list"),
                                  ("token", "revoke", "admin")])  # fmt: skip
@pytest.mark.parametrize("content", ["{half written", '{"tokens": [{"name": "a\\nb", "role": "admin", '
                                     f'"sha256": "{"0" * 64}"}}]}}'])  # fmt: skip
def test_a_broken_token_file_is_a_broken_setting_and_is_left_as_it_was(
    store: Path, tmp_path: Path, verb: tuple[str, ...], content: str
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(content)
    done = grievance(store, *verb, env={"GRIEVANCE_API_TOKENS_FILE": str(tokens)})
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tokens}: ")
    assert line.endswith("[configuration]")
    assert tokens.read_text() == content


def test_a_worker_names_a_broken_key_file_before_it_looks_for_the_broker(store: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text("{broken")
    done = grievance(store, "worker", env={"GRIEVANCE_KAFKA_KEYS_FILE": str(keys),
                                           "GRIEVANCE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})  # fmt: skip
    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: GRIEVANCE_KAFKA_KEYS_FILE: {keys}: ")
