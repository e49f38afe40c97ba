"""After the demo, every table a supervisor reads adds up to its headline, for every unit of the chart: the units
directly below and the row "at this unit itself" sum to the unit's own figures, and the funnel's closures less
those later reopened are the headline's resolved and replied grievances. The unit's own rows are checked against
tests/brute_force.py's recount from each grievance's own events."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from adapters.composition import build_chain, build_views
from adapters.settings import Settings
from engine.chart import Unit
from engine.service_chain import ServiceChain
from projections.dashboard.queries import Dashboard
from schemas.dashboard import LevelSettled
from tests.brute_force import Figures, recompute
from tests.conftest import grievance
from tests.http_server import served

AT = datetime.fromisoformat("2021-01-01T00:00:00+08:00")
STATUSES = ("waiting", "claimed", "resolved", "replied")
RATE_COUNTERS = ("reported", "claims", "claims_on_time", "missed", "resolved", "replied", "rated", "satisfied")


@pytest.fixture(scope="module")
def opened(demo_db: Path) -> Iterator[tuple[ServiceChain, Dashboard]]:
    settings = Settings(database_url=f"sqlite:///{demo_db}")
    chain = build_chain(settings)
    try:
        yield chain, Dashboard(build_views(settings), chain.chart)
    finally:
        chain.close()


@pytest.fixture(scope="module")
def own(opened: tuple[ServiceChain, Dashboard]) -> Figures:
    """Each unit's own figures, recounted from the events of every grievance the demo reported."""
    chain, dash = opened
    with dash.views.reading() as cursor:
        cursor.execute("SELECT grievance_id FROM dash_grievance")
        ids = [UUID(r["grievance_id"]) for r in cursor.fetchall()]
    return recompute(chain, ids, own=True)


def settled_now(funnel: list[LevelSettled]) -> tuple[int, int]:
    """Resolved and replied grievances by the funnel: its closures less those later reopened."""
    return (sum(s.resolved - s.reopened_resolved for s in funnel), sum(s.replied - s.reopened_replied for s in funnel))


def test_every_table_adds_up_to_its_headline_at_every_unit(
    opened: tuple[ServiceChain, Dashboard], own: Figures
) -> None:
    chain, dash = opened
    units: list[Unit] = list(chain.chart.walk())
    assert len(units) > 1000
    for unit in units:
        below = chain.chart.children_of(unit.id)
        head = dash.headline(unit.id, now=AT)
        counts = dash.counts(unit.id)
        assert (counts[0].unit_id, counts[0].scope) == (unit.id, "unit_and_below")
        assert (counts[0].resolved, counts[0].replied, counts[0].waiting + counts[0].claimed) == (
            head.resolved, head.replied, head.open,
        ), unit.id  # fmt: skip
        assert settled_now(dash.settled_by_level(unit.id)) == (head.resolved, head.replied), unit.id
        rates = dash.rates(unit.id, from_month="2020-01", to_month="2020-12")
        durations = dash.durations(unit.id)
        if not below:
            assert len(counts) == len(rates) == len(durations) == 1, unit.id
            continue
        for table in (counts, rates, durations):
            total, *parts, itself = table
            assert [p.unit_id for p in parts] == [c.id for c in below], unit.id
            assert all(p.scope == "unit_and_below" for p in parts)
            assert (itself.unit_id, itself.scope) == (unit.id, "unit_itself"), unit.id
        total, *parts, itself = counts
        for status in STATUSES:
            assert getattr(itself, status) == own.status[(unit.id, status)], (unit.id, status)
            assert getattr(total, status) == sum(getattr(r, status) for r in (*parts, itself)), (unit.id, status)
        total_rates, *part_rates, own_rates = rates
        months = sum((m for (u, month), m in own.months.items() if u == unit.id and month < "2021"), Counter[str]())
        for counter in RATE_COUNTERS:
            assert getattr(own_rates, counter) == months[counter], (unit.id, counter)
            assert getattr(total_rates, counter) == sum(getattr(r, counter) for r in (*part_rates, own_rates))
        total_time, *part_times, own_time = durations
        assert total_time.claims == own_time.claims + sum(d.claims for d in part_times), unit.id
        assert total_time.closes == own_time.closes + sum(d.closes for d in part_times), unit.id


def test_the_issues_figures_are_explained_by_their_rows(opened: tuple[ServiceChain, Dashboard]) -> None:
    """The three figures the issue could not add up: the funnel's 1,160 and 185, the streets' 1,077 of 1,115, and
    st-chengxi's open column."""
    _chain, dash = opened
    funnel = dash.settled_by_level()
    assert (sum(s.resolved for s in funnel), sum(s.replied for s in funnel)) == (1160, 185)
    assert settled_now(funnel) == (1115, 148)
    total, *streets, itself = dash.counts()
    assert total.resolved == 1115
    assert sum(s.resolved for s in streets) + itself.resolved == 1115
    assert itself.resolved == 38
    street, *below, at_street = dash.counts("st-chengxi")
    assert street.waiting + street.claimed == dash.headline("st-chengxi", now=AT).open
    assert sum(c.waiting + c.claimed for c in (*below, at_street)) == street.waiting + street.claimed
    assert at_street.waiting + at_street.claimed == 2


def test_the_command_line_and_the_api_answer_the_same_rows(demo_db: Path, tmp_path: Path) -> None:
    at = "2021-01-01T00:00:00+08:00"
    for unit in ("lg", "st-chengxi"):
        document = json.loads(grievance(demo_db, "dashboard", "--unit", unit, "--at", at, "--json").stdout)
        head, counts = document["headline"], document["counts"]
        assert counts[-1]["scope"] == "unit_itself"
        assert sum(c["waiting"] + c["claimed"] for c in counts[1:]) == head["open"]
        assert sum(c["resolved"] for c in counts[1:]) == head["resolved"]
        funnel = document["settled_by_level"]
        assert sum(s["resolved"] - s["reopened_resolved"] for s in funnel) == head["resolved"]
        assert sum(s["replied"] - s["reopened_replied"] for s in funnel) == head["replied"]
        assert all(q["unit_name"] for q in document["overdue_queue"])
    shown = grievance(demo_db, "dashboard", "--at", at).stdout
    assert "1,115 / 148" in shown  # the funnel's total row: closures less reopened, the headline's grievances
    assert "itself 本级" in shown

    tokens = {"leader-token": ("leader-liu", "supervisor", "lg")}
    with served(f"sqlite:///{demo_db}", tokens, tmp_path / "serve.log") as base:
        auth = {"Authorization": "Bearer leader-token"}
        for unit in ("lg", "st-chengxi"):
            head = httpx.get(f"{base}/api/v1/dashboard/headline", params={"unit": unit, "at": at}, headers=auth).json()
            counts = httpx.get(f"{base}/api/v1/dashboard/counts", params={"unit": unit}, headers=auth).json()
            assert sum(c["waiting"] + c["claimed"] for c in counts[1:]) == head["open"]
            funnel = httpx.get(f"{base}/api/v1/dashboard/funnel", params={"unit": unit}, headers=auth).json()
            assert sum(s["resolved"] - s["reopened_resolved"] for s in funnel) == head["resolved"]
        # Without an "as of", the latest activity's: the demo's year ended at 2021-01-01 00:00 China time.
        default = httpx.get(f"{base}/api/v1/dashboard/headline", headers=auth).json()
        assert datetime.fromisoformat(default["as_of"]) == AT
        assert default["resolved"] == 1115
        levels = httpx.get(f"{base}/api/v1/chart/levels", headers=auth).json()
        assert [(lv["level"], lv["zh"]) for lv in levels][::6] == [
            ("member_household", "党员示范户"), ("leading_group", "城市基层党建工作领导小组"),
        ]  # fmt: skip
