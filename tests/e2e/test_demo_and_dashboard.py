"""The README's first command and the supervisors' commands, as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import grievance


def test_the_demo_year_ends_with_1115_resolved(demo_db: Path) -> None:
    dashboard = json.loads(grievance(demo_db, "dashboard", "--at", "2021-01-01T00:00:00+08:00", "--json").stdout)
    head = dashboard["headline"]
    assert head["resolved"] == 1115
    assert head["replied"] > 0
    assert head["open"] > 0
    settled = {s["level"]: s["resolved"] + s["replied"] for s in dashboard["settled_by_level"]}
    assert settled["member_household"] > settled["community"] > settled["leading_group"] > 0
    rates = dashboard["rates"][0]
    assert rates["claims_by_organisation"]
    assert rates["claims_by_group"]
    assert rates["claims_by_member"]
    assert 0 < rates["satisfaction_rate"] < 1  # some residents were dissatisfied, and reopened


def test_the_demo_refuses_a_store_that_already_holds_events(demo_db: Path) -> None:
    done = grievance(demo_db, "demo")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: GRIEVANCE_DATABASE_URL: the store at sqlite:///")
    assert len(done.stderr.strip().splitlines()) == 1


def test_rebuild_and_status_from_the_command_line(demo_db: Path) -> None:
    before = grievance(demo_db, "dashboard", "--at", "2021-01-01T00:00:00+08:00", "--json").stdout
    rebuilt = grievance(demo_db, "projections", "rebuild", "--page-size", "500")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "events projected" in rebuilt.stdout
    status = json.loads(grievance(demo_db, "projections", "status", "--json").stdout)
    assert status["backlog"] == 0
    assert grievance(demo_db, "dashboard", "--at", "2021-01-01T00:00:00+08:00", "--json").stdout == before
    wrong = grievance(demo_db, "projections", "rebuild", "nonsense")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "error: name: no projection 'nonsense'; there is: dashboard [invalid_value]"


def test_dashboard_errors_name_the_field(demo_db: Path) -> None:
    done = grievance(demo_db, "dashboard", "--unit", "nowhere", "--at", "2021-01-01T00:00:00+08:00")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: unit_id: no unit 'nowhere' in the organisation chart [unknown_unit]"
    done = grievance(demo_db, "dashboard", "--from-month", "2020-13", "--at", "2021-01-01T00:00:00+08:00")
    assert done.stderr.strip() == "error: from_month: '2020-13' is not a month like 2020-06 [invalid_value]"
    assert done.stdout == ""  # refused before any table is printed


def test_a_supervision_sweep_from_the_command_line(demo_db: Path, tmp_path: Path) -> None:
    # A sweep escalates what runs late: on a copy, so the other tests keep reading the demo's own year-end.
    store = tmp_path / "grievances.db"
    shutil.copy(demo_db, store)
    done = grievance(store, "supervise", "--at", "2021-01-01T00:00:00+08:00")
    assert done.returncode == 0, done.stderr
    assert "escalated" in done.stdout
