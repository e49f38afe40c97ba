"""The dashboard views: exact against a brute-force recount, rebuildable, rolled up, on both stores."""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.composition import build_chain, build_projection, build_rebuild_parts, keep_views
from adapters.rebuild_parts import ProcessParts
from adapters.settings import SHIPPED_CHART, Settings
from engine.commands import Report
from engine.errors import GrievanceError
from engine.grievance import Category
from engine.levels import Level
from engine.service_chain import ServiceChain
from projections.dashboard import runner
from projections.dashboard.list_plan import Walk, cheapest_walk
from projections.dashboard.queries import STATUSES, Dashboard
from projections.dashboard.runner import DashboardProjection, RecentRows
from projections.dashboard.tables import ChartChanged
from tests.brute_force import assert_same, recompute, stored
from tests.conftest import OPERATOR, PG_ADMIN, T0, command
from tests.scenario import BUILDING, GRID, HOUSEHOLD
from tests.sqlite_lock import short_lock_timeout, write_lock_held

UNITS = [HOUSEHOLD, BUILDING, GRID, "mh-chengdong-01-1-1-1", "cm-chengbei-02"]
PEOPLE = ["member-wang", "member-zhao", "supervision"]
CATEGORIES = ["other", "other", "other", "parking"]
OPS = ["claim", "claim", "escalate", "resolve", "reply", "rate", "progress", "overdue"]


@contextmanager
def opened(database_url: str) -> Iterator[tuple[ServiceChain, DashboardProjection]]:
    """The chain at `database_url`, its clock a year on, and its dashboard's runner, seven events a page."""
    s = Settings(database_url=database_url)
    chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
    try:
        yield chain, build_projection(s, chain, page_size=7)
    finally:
        chain.close()


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[ServiceChain, DashboardProjection]]:
    with opened(database_url) as opened_store:
        yield opened_store


def play(
    chain: ServiceChain, ops: list[tuple[str, int, int, int]], grievances: int, *, apart: timedelta = timedelta(0)
) -> list[UUID]:
    """Report `grievances` problems, `apart` in time, then apply the operations (refusals are part of the
    history too)."""
    ids = [uuid4() for _ in range(grievances)]
    now = T0
    for i, gid in enumerate(ids):
        chain.execute(
            [
                Report(
                    grievance_id=gid,
                    command_id=f"r{i}",
                    actor="worker",
                    occurred_at=now + i * apart,
                    unit_id=UNITS[i % len(UNITS)],
                    category=Category(CATEGORIES[i % len(CATEGORIES)]),
                    title="t",
                    description="d",
                )
            ],
            principal=OPERATOR,
        )
    now += grievances * apart
    for n, (op, which, who, hours) in enumerate(ops):
        now += timedelta(hours=hours)
        gid = ids[which % len(ids)]
        g = chain.grievance(gid)
        # Mostly the claimant acts, so histories get far; sometimes someone else, to be refused.
        actor = g.claimant if who != 3 and g.claimant else PEOPLE[who % len(PEOPLE)]
        params: dict[str, Any] = {
            "claim": {"unit_id": g.unit_id, "mode": ["member", "group", "organisation"][who % 3], "claimant": actor},
            "escalate": {"reason": "requested"},
            "overdue": {"reason": "overdue"},
            "resolve": {"summary": "done"},
            "reply": {"reason": "r", "answer": "a"},
            "rate": {"rating": ["satisfied", "basically_satisfied", "dissatisfied"][hours % 3]},
            "progress": {"note": "n"},
        }[op]
        kind = {"overdue": "escalate", "progress": "record_progress"}.get(op, op)
        chain.execute([command(kind, grievance_id=gid, command_id=f"c{n}", actor=actor, occurred_at=now, **params)],
                      principal=OPERATOR)  # fmt: skip
    return ids


operations = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 5), st.integers(0, 3), st.integers(1, 72)), max_size=60
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, grievances=st.integers(1, 6))
def test_views_equal_a_brute_force_recount_for_any_history(ops: list[Any], grievances: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        s = Settings(database_url=f"sqlite:///{d}/g.db")
        chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
        try:
            ids = play(chain, ops, grievances)
            projection = build_projection(s, chain, page_size=5)
            projection.catch_up()
            assert_same(recompute(chain, ids), stored(projection.views))
        finally:
            chain.close()


# What PostgreSQL's COPY text format escapes (tabs, line ends, backslashes, its null marker written out), and more.
AWKWARD_TITLES = ["tab\there", "two\nlines\r\n", "back\\slash \\N", "\\N", "", "'quoted' \"too\"", "路灯不亮 🏮"]


def test_awkward_titles_reach_the_list_as_written_following_and_rebuilt(
    store: tuple[ServiceChain, DashboardProjection],
) -> None:
    chain, projection = store
    ids: dict[UUID, str] = {}
    for i, title in enumerate(AWKWARD_TITLES):
        gid = uuid4()
        chain.execute([Report(grievance_id=gid, command_id=f"awkward-{i}", actor="worker", occurred_at=T0,
                              unit_id=HOUSEHOLD, category=Category.OTHER, title=title or "-", description="d")],
                      principal=OPERATOR)  # fmt: skip
        ids[gid] = chain.grievance(gid).title  # as the grievance keeps it (trimmed)
    projection.catch_up()
    assert {g: r.title for g, r in projection.views.rows_of(ids).items()} == ids
    projection.rebuild()
    assert {g: r.title for g, r in projection.views.rows_of(ids).items()} == ids


@pytest.fixture
def app_role() -> Iterator[tuple[str, Callable[[], None]]]:
    """A database of its own with an app role (not a superuser) owning its schema, as a GRIEVANCE_DATABASE_URL,
    and what revokes TEMPORARY on that database from PUBLIC, as hardened installations have it; dropped after."""
    suffix = uuid4().hex[:10]
    database, role = f"approle_{suffix}", f"views_app_{suffix}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    with psycopg.connect(f"{base}/{database}", autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA app AUTHORIZATION "{role}"')

    def revoke_temporary() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
            admin.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')

    try:
        yield f"postgresql://{role}@127.0.0.1:5432/{database}?schema=app", revoke_temporary
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
def test_views_are_written_where_the_role_may_not_create_temporary_tables(
    app_role: tuple[str, Callable[[], None]],
) -> None:
    url, revoke_temporary = app_role
    revoke_temporary()
    with opened(url) as (chain, projection):
        ids = play(chain, [(OPS[i % len(OPS)], i % 5, i % 4, 1 + i % 30) for i in range(40)], 6)
        projection.catch_up()
        assert_same(recompute(chain, ids), stored(projection.views))
        projection.rebuild()
        assert_same(recompute(chain, ids), stored(projection.views))


@pytest.mark.postgres
def test_views_go_on_when_temporary_is_revoked_while_they_are_written(
    app_role: tuple[str, Callable[[], None]],
) -> None:
    url, revoke_temporary = app_role
    with opened(url) as (chain, projection):
        ops = [(OPS[i % len(OPS)], i % 5, i % 4, 1 + i % 30) for i in range(40)]
        ids = play(chain, ops[:20], 6)
        projection.catch_up()  # by COPY
        revoke_temporary()
        ids += play(chain, ops[20:], 3)
        projection.catch_up()  # the next page is refused its staging table, and written the other way
        assert_same(recompute(chain, ids), stored(projection.views))


def test_a_page_waits_while_another_process_holds_sqlites_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a page of one part of a rebuild waits while another part writes its tally: past the store's lock timeout
    (a second here, ten in service) the page is tried again, rather than failing the runner or the rebuild."""
    short_lock_timeout(monkeypatch)
    with opened(f"sqlite:///{tmp_path}/g.db") as (chain, projection):
        ids = play(chain, [(OPS[i % len(OPS)], i % 5, i % 4, 1 + i % 30) for i in range(30)], 5)
        with write_lock_held(tmp_path / "g.db", release_after=1.5):
            projection.catch_up()
        assert_same(recompute(chain, ids), stored(projection.views))


# A rebuild writes its counters once it holds so many rows, and at the log's end: at both, often, and at the end only.
@pytest.mark.parametrize("tallied_rows", [5, 200, runner.TALLIED_ROWS])
def test_following_then_rebuilding_gives_the_same_views(
    store: tuple[ServiceChain, DashboardProjection], tallied_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "TALLIED_ROWS", tallied_rows)
    chain, projection = store
    ops = [(OPS[i % len(OPS)], i % 7, i % 4, 1 + i % 50) for i in range(300)]
    ids = play(chain, ops[:150], 12)
    projection.catch_up()  # follow part of the way, then more events arrive
    ids += play(chain, ops[150:], 9)
    assert projection.backlog() > 0
    projection.catch_up()
    assert projection.backlog() == 0
    followed = stored(projection.views)
    assert_same(recompute(chain, ids), followed)
    projection.rebuild()
    assert_same(followed, stored(projection.views))


def test_roll_ups_equal_the_sum_of_their_children(store: tuple[ServiceChain, DashboardProjection]) -> None:
    chain, projection = store
    ids = play(chain, [(OPS[i % len(OPS)], i % 11, i % 4, 1 + i % 30) for i in range(400)], 25)
    projection.catch_up()
    dash = Dashboard(projection.views, chain.chart)
    now = T0 + timedelta(days=400)
    own_figures = recompute(chain, ids, own=True)
    for unit in [chain.chart.root, *chain.chart.children_of("lg"), chain.chart.unit("cm-chengxi-03")]:
        parent, *children, itself = dash.counts(unit.id)
        assert [c.unit_id for c in children] == [c.id for c in chain.chart.children_of(unit.id)]
        assert (itself.unit_id, itself.scope) == (unit.id, "unit_itself")
        own = {s: n for (u, s), n in own_figures.status.items() if u == unit.id}
        for status in ("waiting", "claimed", "resolved", "replied"):
            assert getattr(itself, status) == own.get(status, 0)
            assert getattr(parent, status) == getattr(itself, status) + sum(getattr(c, status) for c in children)
        parent_rates, *child_rates, own_rates = dash.rates(unit.id, from_month="2026-01", to_month="2027-12")
        own_months = sum((m for (u, _), m in own_figures.months.items() if u == unit.id), Counter[str]())
        assert own_rates.claims == own_months["claims"]
        assert parent_rates.claims == own_rates.claims + sum(c.claims for c in child_rates)
    root_durations = dash.durations()[0]
    by_level = dash.durations_by_level()
    assert sum(d.claims for d in by_level) == root_durations.claims
    assert sum(d.closes for d in by_level) == root_durations.closes
    for level_durations in by_level:
        units = {u.id for u in chain.chart if u.level.chinese == level_durations.name}
        claims = sum(n for (u, measure, _b), n in own_figures.durations.items() if u in units and measure == "claim")
        assert level_durations.claims == claims
    for settled in dash.settled_by_level():
        units = {u.id for u in chain.chart if u.level.value == settled.level}
        assert settled.resolved == sum(c["resolved"] for (u, _m), c in own_figures.months.items() if u in units)
        assert settled.replied == sum(c["replied"] for (u, _m), c in own_figures.months.items() if u in units)
    rows = stored(projection.views).rows
    # Every five hours over the first week, so that limits run out on the day asked about, and later on.
    for moment in [*(T0 + timedelta(hours=h) for h in range(0, 24 * 7, 5)), T0 + timedelta(days=40)]:
        due = [r for r in rows.values() if r["due_at"] is not None and r["due_at"] < moment.timestamp()]
        assert dash.headline(now=moment).overdue == len(due)
        street = chain.chart.children_of("lg")[1].id
        assert dash.headline(street, now=moment).overdue == sum(r["street_id"] == street for r in due)
        by_unit = Counter(r["unit_id"] for r in due)
        most = [(u.id, n) for u, n in dash.most_overdue_units(now=moment, limit=500)]
        assert most == sorted(by_unit.items(), key=lambda unit_n: (-unit_n[1], unit_n[0]))
    head = dash.headline(now=now)
    assert head.resolved + head.replied + head.open == 25


def test_views_of_an_older_version_are_projected_again_from_zero(
    store: tuple[ServiceChain, DashboardProjection],
) -> None:
    chain, projection = store
    ids = play(chain, [(OPS[i % len(OPS)], i % 5, i % 4, 3) for i in range(60)], 6)
    projection.catch_up()
    with projection.views._transaction(commit=True) as cursor:  # as a process of the version before left them
        cursor.execute("UPDATE dash_version SET version = 1")
        cursor.execute("CREATE TABLE dash_lineage (ancestor_id TEXT, unit_id TEXT)")
    projection.views.create_views()  # what opening the views does
    assert projection.views.position() == 0
    assert stored(projection.views).rows == {}
    projection.catch_up()
    assert_same(recompute(chain, ids), stored(projection.views))


def test_two_runners_never_count_a_page_twice(database_url: str) -> None:
    s = Settings(database_url=database_url)
    chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
    try:
        ids = play(chain, [(OPS[i % len(OPS)], i % 5, i % 4, 2) for i in range(120)], 10)
        first, second = build_projection(s, chain, page_size=9), build_projection(s, chain, page_size=9)
        while first.step() + second.step():  # interleaved: each page goes to whichever runner gets it first
            pass
        assert_same(recompute(chain, ids), stored(first.views))
    finally:
        chain.close()


def test_two_runners_catching_up_at_once_count_every_event_once(database_url: str) -> None:
    # On PostgreSQL each runner writes a page behind in a thread of its own, so a refused page surfaces one
    # page later; and with room to remember only three rows, most rows come back from the views mid-run.
    s = Settings(database_url=database_url)
    chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
    try:
        ids = play(chain, [(OPS[i % len(OPS)], i % 13, i % 4, 1 + i % 9) for i in range(400)], 30)
        runners = [build_projection(s, chain, page_size=size) for size in (11, 17)]
        runners[1].recent = RecentRows(bound=3)
        with ThreadPoolExecutor(2) as pool:
            projected = list(pool.map(lambda runner: runner.catch_up(), runners))
        assert sum(projected) >= chain.recorder.max_notification_id()
        assert runners[0].backlog() == 0
        assert_same(recompute(chain, ids), stored(runners[0].views))
        runners[0].rebuild()  # and a runner that was overtaken now and then still rebuilds the same
        assert_same(recompute(chain, ids), stored(runners[0].views))
    finally:
        chain.close()


def test_a_question_asks_all_its_queries_in_one_read_transaction(
    store: tuple[ServiceChain, DashboardProjection], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, projection = store
    ids = play(chain, [(OPS[i % len(OPS)], i % 11, i % 4, 1 + i % 30) for i in range(120)], 15)
    projection.catch_up()
    dash = Dashboard(projection.views, chain.chart)
    now = T0 + timedelta(days=5)
    expected = recompute(chain, ids).rows
    opened: list[dict[str, Any]] = []
    reading = type(projection.views).reading

    def counted(views: Any, **kwargs: Any) -> Any:
        opened.append(kwargs)
        return reading(views, **kwargs)

    monkeypatch.setattr(type(projection.views), "reading", counted)
    headline = dash.headline(GRID, now=now)
    assert len(opened) == 1
    overdue_here = {g for g, r in expected.items() if r["due_at"] is not None and r["due_at"] < int(now.timestamp())
                    and GRID in chain.chart.lineage(r["unit_id"])}  # fmt: skip
    assert overdue_here
    assert headline.overdue == len(overdue_here)
    opened.clear()
    page = dash.grievances(GRID, now=now, overdue=True, limit=500)  # counts, then a page read in the list's order
    assert len(opened) == 1
    assert {i.grievance_id for i in page.items} == overdue_here
    # The list's order was kept to for the page alone: the next question's plan is the store's own again.
    assert dash.grievances(GRID, now=now, status="waiting", limit=500).items == [
        i for i in dash.grievances(GRID, now=now, limit=500).items if i.status == "waiting"
    ]


def test_lists_queues_days_and_points_answer_from_the_views(store: tuple[ServiceChain, DashboardProjection]) -> None:
    chain, projection = store
    ids = play(chain, [(OPS[i % len(OPS)], i % 11, i % 4, 1 + i % 30) for i in range(300)], 22)
    projection.catch_up()
    dash = Dashboard(projection.views, chain.chart)
    now = T0 + timedelta(days=5)
    expected = recompute(chain, ids).rows

    first = dash.grievances(now=now, limit=10)
    second = dash.grievances(now=now, offset=10, limit=10)
    assert first.more
    assert {i.grievance_id for i in first.items}.isdisjoint({i.grievance_id for i in second.items})
    resolved = dash.grievances(now=now, status="resolved", limit=500).items
    assert {i.grievance_id for i in resolved} == {g for g, r in expected.items() if r["status"] == "resolved"}
    street = dash.grievances("st-chengxi", now=now, limit=500).items
    assert {i.grievance_id for i in street} == {g for g, r in expected.items() if r["street_id"] == "st-chengxi"}
    late = dash.grievances(now=now, overdue=True, limit=500).items
    queue = dash.overdue_queue(now=now, limit=500)
    assert {i.grievance_id for i in late} == {i.grievance_id for i in queue}
    assert [i.due_at for i in queue] == sorted(i.due_at for i in queue)  # type: ignore[type-var]
    assert all(i.overdue for i in queue)

    days = dash.daily(from_day="2026-03-01", to_day="2026-12-31")
    assert sum(d.reported for d in days) == 22
    entries = dash.points(limit=50)
    assert [e.points for e in entries] == sorted((e.points for e in entries), reverse=True)

    for call, field in (
        (lambda: dash.grievances(now=now, status="lost"), "status"),
        (lambda: dash.grievances(now=now, level="galaxy"), "level"),
        (lambda: dash.grievances(now=now, limit=0), "limit"),
        (lambda: dash.daily(from_day="2026-02-30x", to_day="2026-03-01"), "from_day"),
        (lambda: dash.rates(from_month="2026-3", to_month="2026-04"), "from_month"),
        (lambda: dash.counts("no-such-unit"), "unit_id"),
    ):
        with pytest.raises(GrievanceError) as refused:
            call()
        assert refused.value.field == field


def test_every_walk_of_the_list_reads_the_same_pages_as_a_filter_over_the_aggregates(
    store: tuple[ServiceChain, DashboardProjection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever index the counts choose, a page holds the newest matching grievances: forced down every
    walk, and chosen, each page equals filtering and sorting the grievances themselves."""
    chain, projection = store
    ops = [(OPS[i % len(OPS)], i % 17, i % 4, 1 + i % 20) for i in range(260)]
    ids = play(chain, ops, 40, apart=timedelta(hours=3))
    projection.catch_up()
    dash = Dashboard(projection.views, chain.chart)
    now = T0 + timedelta(days=9)
    at = int(now.timestamp())
    grievances = [chain.grievance(gid) for gid in ids]
    units = [chain.chart.root.id, "st-chengxi", "cm-chengbei-02", GRID, BUILDING, HOUSEHOLD]

    def expected(unit: str, status: str | None, level: str | None, category: str | None,
                 overdue: bool | None) -> list[UUID]:  # fmt: skip
        def due(g: Any) -> int | None:
            return None if g.due_at() is None else int(g.due_at().timestamp())

        kept = [
            g for g in grievances
            if unit in chain.chart.lineage(g.unit_id)
            and status in (None, g.status.value) and level in (None, g.level.value) and category in (None, g.category)
            and (overdue is None or overdue == (due(g) is not None and due(g) < at))  # type: ignore[operator]
        ]  # fmt: skip
        return [g.id for g in sorted(kept, key=lambda g: (-int(g.reported_at.timestamp()), str(g.id)))]

    questions = list(itertools.product(units, [None, *STATUSES], [None, "member_household", "grid_branch"],
                                       [None, "other", "parking"], [None, True, False]))  # fmt: skip
    for unit_id, step in itertools.product(units, Level):
        # The counts that choose a level's walk are the chart's: exact while the chart stands as recorded.
        in_unit, in_chart = dash._at_level(chain.chart.unit(unit_id), step)
        assert in_unit == len(expected(unit_id, None, step.value, None, None)), (unit_id, step)
        assert in_chart == len(expected(chain.chart.root.id, None, step.value, None, None)), step
    answers = {q: expected(*q) for q in random.Random(5).sample(questions, 90)}
    sizes = sorted(len(whole) for whole in answers.values())
    assert sizes[0] == 0, "some questions have no answer"
    assert sizes[-1] > 12, "some answers run past the three pages read"
    for walk in [None, *Walk]:
        forced = cheapest_walk if walk is None else lambda *_, w=walk: w
        monkeypatch.setattr("projections.dashboard.queries.cheapest_walk", forced)
        for (unit, status, level, category, overdue), whole in answers.items():
            filters = {"status": status, "level": level, "category": category, "overdue": overdue}
            pages = [dash.grievances(unit, now=now, offset=o, limit=4, **filters) for o in (0, 4, 8)]  # type: ignore[arg-type]
            assert [i.grievance_id for p in pages for i in p.items] == whole[:12], (walk, unit, filters)
            assert [p.more for p in pages] == [len(whole) > o + 4 for o in (0, 4, 8)], (walk, unit, filters)


def test_views_totalled_along_a_chart_that_has_moved_a_unit_are_projected_again(
    database_url: str, tmp_path: Path
) -> None:
    """Totals are added up the chart as events are projected: once a grid has moved to another community,
    its grievances' totals sit at the wrong ancestors, so the views start again; a new unit changes none."""
    units = json.loads(SHIPPED_CHART.read_text())["units"]
    moved = [dict(u, parent="cm-chengbei-02") if u["id"] == GRID else u for u in units]
    grown = [*moved, NEW_HOUSEHOLD]

    def projection_along(chart: list[dict[str, Any]]) -> tuple[ServiceChain, DashboardProjection]:
        return along(database_url, tmp_path / f"chart-{len(chart)}-{chart is moved}.json", chart)

    chain, projection = projection_along(units)
    try:
        ids = play(chain, [(OPS[i % len(OPS)], i % 11, i % 4, 1 + i % 30) for i in range(200)], 20)
        projection.catch_up()
        before = recompute(chain, ids)
        assert_same(before, stored(projection.views))
        projected = projection.views.position()
    finally:
        chain.close()

    chain, projection = projection_along(moved)
    try:
        assert projection.views.position() == 0, "views totalled along the old chart are started again"
        projection.catch_up()
        assert projection.views.position() == projected
        expected = recompute(chain, ids)
        assert expected.status != before.status, "the move changes some street's and community's totals"
        assert_same(expected, stored(projection.views))
    finally:
        chain.close()

    chain, projection = projection_along(grown)
    try:
        assert projection.views.position() == projected, "a unit added to the chart moves no total"
        assert_same(recompute(chain, ids), stored(projection.views))
    finally:
        chain.close()


def test_processes_opening_new_views_at_the_same_moment_all_open_them(tmp_path: Path) -> None:
    """Several runners starting together on a new SQLite file: each one's opening reads, then writes; none
    may find the write lock taken after it has read, which SQLite refuses at once rather than waiting."""
    for attempt in range(5):
        s = Settings(database_url=f"sqlite:///{tmp_path}/g{attempt}.db")
        chain = build_chain(s)
        try:
            with ThreadPoolExecutor(4) as pool:
                opened = list(pool.map(build_projection, [s] * 4, [chain] * 4))
            assert [p.views.position() for p in opened] == [0, 0, 0, 0]
        finally:
            chain.close()


def test_a_runner_still_totalling_along_the_old_chart_is_refused_its_next_page(
    database_url: str, tmp_path: Path
) -> None:
    """A runner started with a new chart records it; one started before, along the old chart, writes no page
    more (it would count grievances at the new unit nowhere) and stops with a reason."""
    units = json.loads(SHIPPED_CHART.read_text())["units"]
    old_chain, old = along(database_url, tmp_path / "old.json", units)
    new_chain, new = along(database_url, tmp_path / "new.json", [*units, NEW_HOUSEHOLD])
    try:
        ids = play(old_chain, [(OPS[i % len(OPS)], i % 7, i % 4, 1 + i % 9) for i in range(50)], 8)
        with pytest.raises(ChartChanged, match="another chart"):
            old.catch_up()
        assert old.views.position() == 0, "the refused page wrote nothing"
        new.catch_up()
        assert_same(recompute(new_chain, ids), stored(new.views))
    finally:
        old_chain.close()
        new_chain.close()


NEW_HOUSEHOLD = {"id": "mh-new-1", "name": "新户", "level": "member_household", "parent": BUILDING}


def along(database_url: str, chart_file: Path, units: list[dict[str, Any]]) -> tuple[ServiceChain, DashboardProjection]:
    """A chain and its projection on the store, with the chart of these units."""
    chart_file.write_text(json.dumps({"units": units}))
    s = Settings(database_url=database_url, chart_path=chart_file)
    chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
    return chain, build_projection(s, chain, page_size=13)


def test_a_following_runner_rides_out_a_failing_store_and_stops_for_a_changed_chart(
    store: tuple[ServiceChain, DashboardProjection], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, projection = store
    play(chain, [(OPS[i % len(OPS)], i % 5, i % 4, 2) for i in range(40)], 5)
    failures = [OperationalError("server closed the connection unexpectedly"), OperationalError("database is locked")]
    catch_up = projection.catch_up

    def failing_at_first(*args: Any) -> int:
        if failures:
            raise failures.pop(0)
        return catch_up(*args)

    monkeypatch.setattr(projection, "catch_up", failing_at_first)
    stop = threading.Event()
    follower = threading.Thread(
        target=keep_views, args=(projection, stop), kwargs={"idle_wait": 0.01, "retry_wait": 0.01}
    )
    follower.start()
    try:
        deadline = time.monotonic() + 30
        while projection.views.position() < (chain.recorder.max_notification_id() or 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert projection.views.position() == chain.recorder.max_notification_id(), "caught up after two failures"
        assert failures == []
    finally:
        stop.set()
        follower.join(timeout=10)

    def refused(*args: Any) -> int:
        raise ChartChanged("the views are now totalled along another chart")

    monkeypatch.setattr(projection, "catch_up", refused)
    with pytest.raises(ChartChanged):
        keep_views(projection, threading.Event(), retry_wait=0.01)


class _TailArrivesMeanwhile:
    """Other processes' parts (`ProcessParts`), with more events stored while they run: the rebuild's parts stop
    where the log ended when it began, and the rest follows after them."""

    def __init__(self, parts: ProcessParts, arrive: Callable[[], object]) -> None:
        self.inner, self.arrive, self.processes = parts, arrive, parts.processes

    def start(self, parts: Sequence[runner.Part]) -> None:
        self.inner.start(parts)
        self.arrive()

    def join(self) -> int:
        return self.inner.join()

    def stop(self) -> None:
        self.inner.stop()


@pytest.fixture
def small_parted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, ServiceChain, DashboardProjection]]:
    """A store whose rebuilds go in parts however few its events."""
    monkeypatch.setattr(runner, "PARTED_REBUILD_EVENTS", 0)
    s = Settings(database_url=database_url)
    chain = build_chain(s, clock=lambda: T0 + timedelta(days=400))
    yield s, chain, build_projection(s, chain, page_size=7)
    chain.close()


@pytest.mark.parametrize("processes", [2, 3])
def test_a_rebuild_in_parts_gives_the_views_following_gave(
    small_parted: tuple[Settings, ServiceChain, DashboardProjection], processes: int
) -> None:
    s, chain, projection = small_parted
    ops = [(OPS[i % len(OPS)], i % 11, i % 4, 1 + i % 40) for i in range(260)]
    ids = play(chain, ops[:200], 16)
    stop = chain.recorder.max_notification_id() or 0
    parts = ProcessParts(s, processes - 1, page_size=7)
    tail: list[UUID] = []
    projected = projection.rebuild(
        elsewhere=_TailArrivesMeanwhile(parts, lambda: tail.extend(play(chain, ops[200:], 5)))
    )
    assert projected == (chain.recorder.max_notification_id() or 0) > stop  # every event once, the tail's included
    assert projection.backlog() == 0
    rebuilt = stored(projection.views)
    assert_same(recompute(chain, ids + tail), rebuilt)
    projection.rebuild()  # in one process, from zero
    assert_same(stored(projection.views), rebuilt)


def test_a_part_that_fails_leaves_the_live_views_as_they_were_and_says_why(
    small_parted: tuple[Settings, ServiceChain, DashboardProjection], tmp_path: Path
) -> None:
    s, chain, projection = small_parted
    ids = play(chain, [(OPS[i % len(OPS)], i % 7, i % 4, 1 + i % 30) for i in range(80)], 8)
    projection.catch_up()
    before = stored(projection.views)
    # The other process reads another chart than the one this rebuild started along: its first page is refused.
    other = json.loads(SHIPPED_CHART.read_text())
    other["units"] = [u for u in other["units"] if u["id"] != "mh-chengdong-01-1-1-1"]
    chart = tmp_path / "other-chart.json"
    chart.write_text(json.dumps(other))
    parts = ProcessParts(replace(s, chart_path=chart), 1, page_size=7)
    with pytest.raises(ChartChanged):
        projection.rebuild(elsewhere=parts)
    assert_same(before, stored(projection.views))
    assert_same(recompute(chain, ids), stored(projection.views))
    assert projection.rebuild() == chain.recorder.max_notification_id()  # and the next rebuild starts afresh
    assert_same(before, stored(projection.views))


def test_the_cli_rebuilds_in_parts_on_either_store(database_url: str) -> None:
    parts = build_rebuild_parts(Settings(database_url=database_url), 2, page_size=7)
    assert parts is not None
    assert parts.processes == 1
    assert build_rebuild_parts(Settings(database_url=database_url), 1, page_size=7) is None
