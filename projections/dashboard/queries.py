"""The questions the dashboard read model answers (supervisors' and supervision's), from its tables, as the
msgspec Structs of `schemas/dashboard.py`."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from engine.chart import OrgChart, Unit
from engine.errors import InvalidValue
from engine.grievance import Status
from engine.levels import Level
from projections.dashboard.changes import (
    DAY,
    DAY_COLUMNS,
    MONTH_COLUMNS,
    POINTS_COLUMNS,
    POINTS_WEIGHTS,
    REPORTING_TZ,
    SETTLED_COLUMNS,
    percentile,
    points_of,
)
from projections.dashboard.list_plan import ListCounts, Walk, cheapest_walk
from projections.dashboard.rates import resolution_rate, response_rate, satisfaction_rate
from projections.dashboard.tables import DashboardViews
from schemas.dashboard import (
    DayCounts,
    GrievanceItem,
    GrievancePage,
    Headline,
    LevelSettled,
    PointsEntry,
    Scope,
    ServiceRequestItem,
    UnitCounts,
    UnitDurations,
    UnitRates,
)

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DAY_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
STATUSES = tuple(s.value for s in Status)
OPEN_STATUSES = tuple(s.value for s in Status.open_ones())
MAX_PAGE = 500
# Deeper than any list a person pages through, and within every store's integer range.
MAX_OFFSET = 10_000_000
LEVEL_NAMES = frozenset(level.value for level in Level)
LINEAGE_COLUMN_OF = {Level.STREET_COMMITTEE: "street_id", Level.COMMUNITY: "community_id", Level.GRID_BRANCH: "grid_id"}


# The read transaction the queries of the question being answered share, in this thread, if one is open.
_ASKING: ContextVar[Any] = ContextVar("dashboard_question", default=None)
_Params = ParamSpec("_Params")
_Answer = TypeVar("_Answer")


def _one_reading(
    question: Callable[Concatenate[Dashboard, _Params], _Answer],
) -> Callable[Concatenate[Dashboard, _Params], _Answer]:
    """Ask all of a question's queries in one read transaction: on PostgreSQL a transaction costs three round
    trips beside its query (begin, the schema's path, rollback), most of a small query's time."""

    def asked(dashboard: Dashboard, /, *args: _Params.args, **kwargs: _Params.kwargs) -> _Answer:
        if _ASKING.get() is not None:
            return question(dashboard, *args, **kwargs)
        with dashboard.views.reading() as cursor:
            token = _ASKING.set(cursor)
            try:
                return question(dashboard, *args, **kwargs)
            finally:
                _ASKING.reset(token)

    return functools.update_wrapper(asked, question)


def twelve_months_to(now: datetime) -> tuple[str, str]:
    """The rates' window as of `now`, the one rule every channel shows: the twelve months (in China time, as the
    views count them) before the instant `now`. An as-of at the very start of a month excludes that month, so
    as of 2021-01-01 00:00 CST the window is 2020-01 to 2020-12, the demo's year; as of 2021-01-15 it is
    2020-02 to 2021-01."""
    last = (now.astimezone(REPORTING_TZ) - timedelta(microseconds=1)).date()
    first = last.year * 12 + last.month - 1 - 11
    return f"{first // 12:04d}-{first % 12 + 1:02d}", f"{last:%Y-%m}"


class Dashboard:
    """Read-only queries over the views; every figure for a unit includes everything below it."""

    def __init__(self, views: DashboardViews, chart: OrgChart) -> None:
        self.views = views
        self.chart = chart
        self.mark = views.mark
        self._by_level: dict[Level, list[str]] = {}

    # ----------------------------------------------------------------------------- helpers

    def _unit(self, unit_id: str | None) -> Unit:
        return self.chart.root if unit_id is None else self.chart.unit(unit_id)

    def _subtree_filter(
        self, unit: Unit, column: str = "unit_id", *, lineage: bool = False, masked: bool = False
    ) -> tuple[str, list[Any]]:
        """A WHERE fragment matching the unit and everything below it; with `lineage`, on dash_grievance's
        indexed street, community and grid columns where the unit is one of those; `masked`, so that no
        index is used for it."""
        if unit.id == self.chart.root.id:
            return "", []
        if lineage and unit.level in LINEAGE_COLUMN_OF:
            column = LINEAGE_COLUMN_OF[unit.level]
            return f" AND {_masked(column) if masked else column} = ?", [unit.id]
        ids = [u.id for u in self.chart.walk(unit.id)]
        return f" AND {_masked(column) if masked else column} IN ({', '.join([self.mark] * len(ids))})", ids

    def _fetch(self, sql: str, params: Sequence[Any] = (), *, in_list_order: bool = False) -> list[Any]:
        shared = _ASKING.get()
        if shared is None:
            with self.views.reading(in_list_order=in_list_order) as cursor:
                cursor.execute(sql.replace("?", self.mark), list(params))
                return list(cursor.fetchall())
        if not in_list_order:
            shared.execute(sql.replace("?", self.mark), list(params))
            return list(shared.fetchall())
        with self.views.in_list_order(shared):
            shared.execute(sql.replace("?", self.mark), list(params))
            return list(shared.fetchall())

    def _totals(
        self,
        shown: list[Unit],
        table: str,
        sums: Sequence[str],
        *,
        by: Sequence[str] = (),
        where: str = "",
        params: Sequence[Any] = (),
    ) -> dict[str, list[Any]]:
        """Each shown unit's rows of `table` (which hold the totals of the unit and everything below it),
        summed over the rows `where` picks and grouped `by` columns."""
        keys = "".join(f", t.{k}" for k in by)
        totals = ", ".join(f"SUM(t.{c}) AS {c}" for c in sums)
        marks = ", ".join("?" * len(shown))
        rows = self._fetch(
            f"SELECT t.unit_id AS shown_id{keys}, {totals} FROM {table} t WHERE t.unit_id IN ({marks}){where} "
            f"GROUP BY t.unit_id{keys}",
            [*(u.id for u in shown), *params],
        )
        grouped: dict[str, list[Any]] = {u.id: [] for u in shown}
        for r in rows:
            grouped[r["shown_id"]].append(r)
        return grouped

    def _with_children(self, unit: Unit) -> list[Unit]:
        return [unit, *self.chart.children_of(unit.id)]

    # ----------------------------------------------------------------------------- queries

    def latest_activity_day(self) -> str | None:
        """The latest day (China time, YYYY-MM-DD) on which anything was reported, claimed or closed, or None."""
        rows = self._fetch("SELECT MAX(day) AS day FROM dash_unit_day WHERE unit_id = ?", [self.chart.root.id])
        return None if not rows or rows[0]["day"] is None else str(rows[0]["day"])

    def default_as_of(self, now: datetime) -> datetime:
        """The moment a dashboard shows when nobody names one: `now`, unless nothing happened in the rates'
        months to `now` (a store of past years, as the demo's), then the end of the latest day with activity,
        so that a supervisor's first look shows figures rather than a blank year."""
        latest = self.latest_activity_day()
        if latest is None or latest[:7] >= twelve_months_to(now)[0]:
            return now
        end = datetime.fromisoformat(latest).replace(tzinfo=REPORTING_TZ) + timedelta(days=1)
        return min(end, now)

    @_one_reading
    def headline(self, unit_id: str | None = None, *, now: datetime) -> Headline:
        """Resolved, replied, open and overdue grievances at a unit and below, as of `now`."""
        unit = self._unit(unit_id)
        counts = self.counts(unit.id)[0]
        overdue = self.overdue_count(unit, now)
        return Headline(
            unit_id=unit.id,
            as_of=now,
            resolved=counts.resolved,
            replied=counts.replied,
            open=counts.waiting + counts.claimed,
            waiting=counts.waiting,
            claimed=counts.claimed,
            overdue=overdue,
        )

    @_one_reading
    def overdue_count(self, unit: Unit, now: datetime) -> int:
        """Open grievances past their limit at `now`, at the unit and below, in one statement: those due before
        today, and today's part from the list's due index.

        Those due before today are counted from what is not yet overdue, which the time limits bound, rather
        than from what is, which nothing bounds: the unit's open grievances less those due from today on (the
        due-day counters of today and later).
        """
        at = _epoch(now)
        today = at // DAY
        where, params = self._subtree_filter(unit, lineage=True)
        rows = self._fetch(
            "SELECT (SELECT COALESCE(SUM(n), 0) FROM dash_status_count WHERE unit_id = ? "
            f"AND status IN ({', '.join('?' * len(OPEN_STATUSES))})) "
            "- (SELECT COALESCE(SUM(n), 0) FROM dash_due_day WHERE unit_id = ? AND due_day >= ?) "
            f"+ (SELECT COUNT(*) FROM dash_grievance WHERE due_at >= ? AND due_at < ?{where}) AS n",
            [unit.id, *OPEN_STATUSES, unit.id, today, today * DAY, at, *params],
        )
        return int(rows[0]["n"])

    def counts(self, unit_id: str | None = None) -> list[UnitCounts]:
        """Where grievances stand, for the unit and then each unit directly below it, rolled up."""
        unit = self._unit(unit_id)
        shown = self._with_children(unit)
        grouped = self._totals(shown, "dash_status_count", ["n"], by=["status"])
        by_unit = {u.id: Counter({r["status"]: int(r["n"]) for r in grouped[u.id]}) for u in shown}
        out = [_unit_counts(u, "unit_and_below", by_unit[u.id]) for u in shown]
        if len(shown) > 1:
            out.append(_unit_counts(unit, "unit_itself", _less(by_unit[unit.id], [by_unit[u.id] for u in shown[1:]])))
        return out

    def rates(self, unit_id: str | None = None, *, from_month: str, to_month: str) -> list[UnitRates]:
        """Response, resolution and satisfaction rates for the unit and each unit below it, over months."""
        for name, value in (("from_month", from_month), ("to_month", to_month)):
            if not MONTH.match(value):
                raise InvalidValue(name, f"{value!r} is not a month like 2020-06")
        unit = self._unit(unit_id)
        shown = self._with_children(unit)
        grouped = self._totals(
            shown,
            "dash_unit_month",
            MONTH_COLUMNS,
            where=" AND t.month >= ? AND t.month <= ?",
            params=[from_month, to_month],
        )
        totals = {
            u.id: Counter({c: int(grouped[u.id][0][c] or 0) for c in MONTH_COLUMNS} if grouped[u.id] else {})
            for u in shown
        }
        rows: list[tuple[Unit, Scope, Counter[str]]] = [(u, "unit_and_below", totals[u.id]) for u in shown]
        if len(shown) > 1:
            rows.append((unit, "unit_itself", _less(totals[unit.id], [totals[u.id] for u in shown[1:]])))
        out = []
        for u, scope, t in rows:
            out.append(
                UnitRates(
                    unit_id=u.id,
                    name=u.name,
                    level=u.level.value,
                    scope=scope,
                    from_month=from_month,
                    to_month=to_month,
                    reported=t["reported"],
                    claims=t["claims"],
                    claims_on_time=t["claims_on_time"],
                    missed=t["missed"],
                    resolved=t["resolved"],
                    replied=t["replied"],
                    rated=t["rated"],
                    satisfied=t["satisfied"],
                    basically_satisfied=t["basically_satisfied"],
                    dissatisfied=t["dissatisfied"],
                    claims_by_organisation=t["claims_organisation"],
                    claims_by_group=t["claims_group"],
                    claims_by_member=t["claims_member"],
                    response_rate=response_rate(t),
                    resolution_rate=resolution_rate(t),
                    satisfaction_rate=satisfaction_rate(t),
                )
            )
        return out

    def durations(self, unit_id: str | None = None) -> list[UnitDurations]:
        """Time to claim and to close, p50 and p90, for the unit and each unit below it."""
        unit = self._unit(unit_id)
        shown = self._with_children(unit)
        grouped = self._totals(shown, "dash_duration", ["n"], by=["measure", "bucket"])
        histograms: dict[str, dict[str, Counter[int]]] = {u.id: {"claim": Counter(), "close": Counter()} for u in shown}
        for u in shown:
            for r in grouped[u.id]:
                histograms[u.id][r["measure"]][int(r["bucket"])] = int(r["n"])
        out = [_durations(u.id, u.name, u.level, histograms[u.id]["claim"], histograms[u.id]["close"]) for u in shown]
        if len(shown) > 1:
            below = shown[1:]
            own = {m: _less(histograms[unit.id][m], [histograms[u.id][m] for u in below]) for m in ("claim", "close")}
            out.append(_durations(unit.id, unit.name, unit.level, own["claim"], own["close"], scope="unit_itself"))
        return out

    def durations_by_level(self) -> list[UnitDurations]:
        """Time to claim and to close, p50 and p90, for each of the seven levels; `unit_id` is "*" (all its units)."""
        histograms: dict[str, dict[str, Counter[int]]] = {
            lv.value: {"claim": Counter(), "close": Counter()} for lv in Level
        }
        for r in self._fetch("SELECT level, measure, bucket, n FROM dash_level_duration WHERE n <> 0"):
            if r["level"] in histograms:
                histograms[r["level"]][r["measure"]][int(r["bucket"])] = int(r["n"])
        return [
            _durations("*", lv.chinese, lv, histograms[lv.value]["claim"], histograms[lv.value]["close"])
            for lv in Level
        ]

    def settled_by_level(self, unit_id: str | None = None) -> list[LevelSettled]:
        """The funnel: the closures each of the seven steps made at a unit and below, and how many of them were
        reopened later."""
        unit = self._unit(unit_id)
        rows = self._fetch(f"SELECT level, {', '.join(SETTLED_COLUMNS)} FROM dash_settled WHERE unit_id = ?",
                           [unit.id])  # fmt: skip
        found = {r["level"]: r for r in rows}
        return [
            LevelSettled(level=lv.value, **{c: int(r[c]) for c in SETTLED_COLUMNS})
            if (r := found.get(lv.value))
            else LevelSettled(level=lv.value, **dict.fromkeys(SETTLED_COLUMNS, 0))
            for lv in Level
        ]

    def daily(self, unit_id: str | None = None, *, from_day: str, to_day: str) -> list[DayCounts]:
        """Reports, claims and closures per day at a unit and below."""
        for name, value in (("from_day", from_day), ("to_day", to_day)):
            if not DAY_PATTERN.match(value):
                raise InvalidValue(name, f"{value!r} is not a day like 2020-06-30")
        unit = self._unit(unit_id)
        rows = self._fetch(
            f"SELECT day, {', '.join(DAY_COLUMNS)} FROM dash_unit_day WHERE unit_id = ? AND day >= ? AND day <= ? "
            "ORDER BY day",
            [unit.id, from_day, to_day],
        )
        return [DayCounts(day=r["day"], **{c: int(r[c]) for c in DAY_COLUMNS}) for r in rows]

    def overdue_queue(self, unit_id: str | None = None, *, now: datetime, limit: int = 50) -> list[GrievanceItem]:
        """Open grievances past their limit at a unit and below, longest overdue first."""
        unit = self._unit(unit_id)
        where, params = self._subtree_filter(unit, lineage=True)
        rows = self._fetch(
            f"SELECT * FROM dash_grievance WHERE due_at < ?{where} ORDER BY due_at, grievance_id LIMIT ?",
            [_epoch(now), *params, _page_limit(limit)],
        )
        return [_item(r, now, self.chart) for r in rows]

    def overdue_below_the_top(self, now: datetime, *, limit: int) -> list[tuple[UUID, int]]:
        """(grievance id, version) of open grievances past their limit at `now` that can still climb (not at the
        leading group, whose overdue ones stay on its own queue), longest overdue first: supervision's question."""
        rows = self._fetch(
            "SELECT grievance_id, version FROM dash_grievance WHERE due_at < ? AND level <> ? "
            "ORDER BY due_at, grievance_id LIMIT ?",
            [_epoch(now), Level.LEADING_GROUP.value, limit],
        )
        return [(UUID(r["grievance_id"]), int(r["version"])) for r in rows]

    def most_overdue_units(self, *, now: datetime, limit: int = 10) -> list[tuple[Unit, int]]:
        """The units where the most overdue grievances wait, most first: each unit's own, that is its total
        less those of the units directly below it, plus today's part from the list (whose rows are own)."""
        limit = _page_limit(limit)
        at = _epoch(now)
        today = at // DAY
        # Ranked by the store, as overdue_count and _own count, over the chart the views are totalled along: done in
        # Python, totalling every unit of the chart took 15-18 ms at every size. A unit's own count is its total
        # less its children's: each total counts for its unit, and against its unit's parent.
        rows = self._fetch(
            f"WITH due_before AS (SELECT unit_id, SUM(n) AS n FROM ("
            f"SELECT unit_id, n FROM dash_status_count WHERE status IN ({', '.join('?' * len(OPEN_STATUSES))}) "
            "UNION ALL SELECT unit_id, -n FROM dash_due_day WHERE due_day >= ?) AS totals GROUP BY unit_id) "
            "SELECT unit_id, SUM(n) AS n FROM ("
            "SELECT k.unit_id, k.n FROM due_before k JOIN dash_chart c ON c.unit_id = k.unit_id "
            "UNION ALL SELECT c.parent_id, -k.n FROM due_before k JOIN dash_chart c ON c.unit_id = k.unit_id "
            "WHERE c.parent_id IS NOT NULL "
            # Today's few rows by the due index, each then looked up in the chart: as `unit_id IN (the chart)`, SQLite
            # searched the index once for each of the chart's 1,636 units.
            "UNION ALL SELECT g.unit_id, COUNT(*) FROM dash_grievance g WHERE g.due_at >= ? AND g.due_at < ? "
            "AND EXISTS (SELECT 1 FROM dash_chart c WHERE c.unit_id = g.unit_id) GROUP BY g.unit_id) AS own "
            f"GROUP BY unit_id HAVING SUM(n) > 0 ORDER BY SUM(n) DESC, unit_id{self.views.by_code_point} LIMIT ?",
            [*OPEN_STATUSES, today, today * DAY, at, limit],
        )
        return [(self.chart.unit(r["unit_id"]), int(r["n"])) for r in rows if r["unit_id"] in self.chart]

    @_one_reading
    def grievances(
        self,
        unit_id: str | None = None,
        *,
        now: datetime,
        status: str | None = None,
        level: str | None = None,
        category: str | None = None,
        overdue: bool | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> GrievancePage:
        """Grievances at a unit and below, newest report first, filtered and paged."""
        unit = self._unit(unit_id)
        if status is not None and status not in STATUSES:
            raise InvalidValue("status", f"{status!r} is not one of {', '.join(STATUSES)}")
        if level is not None and level not in LEVEL_NAMES:
            raise InvalidValue("level", f"{level!r} is not a level of the chain")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidValue("offset", f"must be from 0 to {MAX_OFFSET:,}")
        limit = _page_limit(limit)
        at = _epoch(now)
        walk: Walk | None = Walk.LIST
        if any(f is not None for f in (status, level, category, overdue)):
            walk = cheapest_walk(self._list_counts(unit, status, level, category, overdue, now), offset + limit + 1)
        if walk is None:
            return GrievancePage(offset=offset, limit=limit, more=False, items=[])
        # Every filter but the walk's own is written so that no index serves it, so that both stores read
        # the page the way the counts chose.
        where, params = self._subtree_filter(unit, lineage=True, masked=walk not in (Walk.LIST, Walk.OVERDUE))
        clauses: list[str] = [where]
        for column, value, own in (
            ("status", status, Walk.STATUS),
            ("level", level, Walk.LEVEL),
            ("category", category, Walk.CATEGORY),
        ):
            if value is not None:
                clauses.append(f" AND {column if walk is own else _masked(column)} = ?")
                params.append(value)
        if overdue is not None:
            if overdue:
                clauses.append(" AND due_at < ?" if walk is Walk.OVERDUE else " AND due_at + 0 < ?")
            else:
                clauses.append(" AND (due_at IS NULL OR due_at >= ?)")
            params.append(at)
        rows = self._fetch(
            f"SELECT * FROM dash_grievance WHERE 1=1{''.join(clauses)} "
            "ORDER BY reported_at DESC, grievance_id LIMIT ? OFFSET ?",
            [*params, limit + 1, offset],
            in_list_order=self._in_index_order(walk, unit),
        )
        items = [_item(r, now, self.chart) for r in rows[:limit]]
        return GrievancePage(offset=offset, limit=limit, more=len(rows) > limit, items=items)

    def _in_index_order(self, walk: Walk, unit: Unit) -> bool:
        """Whether the page's walk is an index in the list's own order, to be kept to: the whole chart's, one of its
        statuses, levels or categories, or one unit's (a street, community or grid by its column, or a unit with
        nothing below). The overdue walk reads every overdue row and sorts them; a unit with units below and no
        column of its own (a building group, a joint committee) reads its units' rows and sorts them."""
        if walk is Walk.OVERDUE:
            return False
        if walk is not Walk.LIST or unit.id == self.chart.root.id or unit.level in LINEAGE_COLUMN_OF:
            return True
        return not self.chart.children_of(unit.id)

    def _list_counts(
        self, unit: Unit, status: str | None, level: str | None, category: str | None, overdue: bool | None,
        now: datetime,
    ) -> ListCounts:  # fmt: skip
        """What the views count for a filtered page's question: the unit's and the chart's grievances, of the
        status, at the level and of the category asked; and the unit's overdue ones if asked."""
        root = self.chart.root
        by_status: dict[str, Counter[str]] = {unit.id: Counter(), root.id: Counter()}
        for r in self._fetch(
            "SELECT unit_id, status, n FROM dash_status_count WHERE unit_id IN (?, ?)", [unit.id, root.id]
        ):
            by_status[r["unit_id"]][r["status"]] += int(r["n"])
        level_in_unit, level_in_chart = (None, None) if level is None else self._at_level(unit, Level(level))
        category_in: dict[str, int] = {}
        if category is not None:
            for r in self._fetch("SELECT unit_id, n FROM dash_category_count WHERE unit_id IN (?, ?) AND category = ?",
                                 [unit.id, root.id, category]):  # fmt: skip
                category_in[r["unit_id"]] = int(r["n"])
        return ListCounts(
            in_unit=by_status[unit.id].total(),
            status_in_unit=None if status is None else by_status[unit.id][status],
            status_in_chart=None if status is None else by_status[root.id][status],
            overdue_in_unit=self.overdue_count(unit, now) if overdue else None,
            level_in_unit=level_in_unit,
            level_in_chart=level_in_chart,
            category_in_unit=None if category is None else category_in.get(unit.id, 0),
            category_in_chart=None if category is None else category_in.get(root.id, 0),
        )

    def _at_level(self, unit: Unit, level: Level) -> tuple[int, int]:
        """Grievances at `level` at the unit and below, and in the whole chart: the own counts of the chart's
        units at that level."""
        at_level = self._units_at(level)
        ids = [*at_level, *(c.id for u in at_level for c in self.chart.children_of(u))]
        totals: Counter[str] = Counter()
        for r in self._fetch(f"SELECT unit_id, n FROM dash_status_count WHERE unit_id IN ({', '.join('?' * len(ids))})",
                             ids):  # fmt: skip
            totals[r["unit_id"]] += int(r["n"])
        own = self._own(totals, at_level)
        in_chart = sum(own.values())
        if unit.id == self.chart.root.id:
            return in_chart, in_chart
        in_unit = {u.id for u in self.chart.walk(unit.id) if u.level is level}
        return sum(n for u, n in own.items() if u in in_unit), in_chart

    def _units_at(self, level: Level) -> list[str]:
        """The chart's units at `level` (the chart never changes under a process)."""
        if level not in self._by_level:
            self._by_level[level] = [u.id for u in self.chart.walk() if u.level is level]
        return self._by_level[level]

    def _own(self, totals: Mapping[str, int], units: Iterable[str]) -> dict[str, int]:
        """Each unit's own count, from counts that are totals of a unit and everything below it: its total
        less its children's."""
        return {u: totals.get(u, 0) - sum(totals.get(c.id, 0) for c in self.chart.children_of(u)) for u in units}

    def service_requests(
        self,
        *,
        now: datetime,
        ids: Sequence[UUID] = (),
        categories: Sequence[str] = (),
        statuses: Sequence[str] = (),
        start: datetime,
        end: datetime,
        limit: int = 1000,
    ) -> list[ServiceRequestItem]:
        """Grievances reported from `start` to `end` inclusive (or exactly `ids`), of the given categories and statuses,
        newest first: what the Open311 requests list asks."""
        clauses: list[str] = []
        params: list[Any] = []
        if ids:
            clauses.append(f" AND grievance_id IN ({', '.join('?' * len(ids))})")
            params += [str(i) for i in ids]
        else:
            clauses.append(" AND reported_at >= ? AND reported_at <= ?")
            params += [_epoch(start), _epoch(end)]
        for column, values in (("category", categories), ("status", statuses)):
            if values:
                clauses.append(f" AND {column} IN ({', '.join('?' * len(values))})")
                params += list(values)
        rows = self._fetch(
            f"SELECT * FROM dash_grievance WHERE 1=1{''.join(clauses)} ORDER BY reported_at DESC, grievance_id LIMIT ?",
            [*params, max(1, min(limit, 1000))],
        )
        return [_service_request(r, now, self.chart) for r in rows]

    def points(self, unit_id: str | None = None, *, limit: int = 20) -> list[PointsEntry]:
        """The volunteer points ledger of what was earned at a unit and below, most points first."""
        unit = self._unit(unit_id)
        # Ranked by the store: a unit high in the chart has a row for every member below it, and building an
        # entry of each in Python to keep twenty was most of the question's time (14 ms of 900 members).
        rows = self._fetch(
            f"SELECT *, {POINTS_SQL} AS points FROM dash_points WHERE unit_id = ? "
            f"ORDER BY points DESC, claimant{self.views.by_code_point}, mode{self.views.by_code_point} LIMIT ?",
            [unit.id, _page_limit(limit)],
        )
        return [
            PointsEntry(
                claimant=r["claimant"],
                mode=r["mode"],
                **{c: int(r[c]) for c in POINTS_COLUMNS},
                points=points_of({c: int(r[c]) for c in POINTS_COLUMNS}),
            )
            for r in rows
        ]


def _unit_counts(unit: Unit, scope: Scope, by_status: Counter[str]) -> UnitCounts:
    return UnitCounts(
        unit_id=unit.id, name=unit.name, level=unit.level.value, scope=scope, waiting=by_status["waiting"],
        claimed=by_status["claimed"], resolved=by_status["resolved"], replied=by_status["replied"],
    )  # fmt: skip


def _less(total: Counter[Any], parts: Iterable[Counter[Any]]) -> Counter[Any]:
    """What of a unit's total is its own: the total less its parts (the units directly below it)."""
    own = Counter(total)
    for part in parts:
        own.subtract(part)
    return +own


def _durations(
    unit_id: str, name: str, level: Level, claim: Mapping[int, int], close: Mapping[int, int],
    scope: Scope = "unit_and_below",
) -> UnitDurations:  # fmt: skip
    return UnitDurations(
        unit_id=unit_id,
        name=name,
        level=level.value,
        scope=scope,
        claims=sum(claim.values()),
        claim_p50_hours=_hours(percentile(claim, 50)),
        claim_p90_hours=_hours(percentile(claim, 90)),
        closes=sum(close.values()),
        close_p50_hours=_hours(percentile(close, 50)),
        close_p90_hours=_hours(percentile(close, 90)),
    )


POINTS_SQL = "(" + " + ".join(f"{weight} * {column}" for column, weight in POINTS_WEIGHTS.items()) + ")"


def _masked(column: str) -> str:
    """The text column as an expression, equal in value, that no index of the column serves."""
    return f"{column} || ''"


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidValue("now", "must carry a timezone")
    return int(moment.timestamp())


def _time(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(int(epoch), UTC)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidValue("limit", f"must be between 1 and {MAX_PAGE}")
    return limit


def _service_request(r: Any, now: datetime, chart: OrgChart) -> ServiceRequestItem:
    updated = _time(r["updated_at"])
    assert updated is not None
    return ServiceRequestItem(item=_item(r, now, chart), reported_unit=r["reported_unit"], updated_at=updated,
                              escalations=int(r["escalations"]))  # fmt: skip


def _item(r: Any, now: datetime, chart: OrgChart) -> GrievanceItem:
    due = r["due_at"]
    reported = _time(r["reported_at"])
    assert reported is not None
    return GrievanceItem(
        grievance_id=UUID(r["grievance_id"]),
        version=int(r["version"]),
        status=r["status"],
        level=r["level"],
        unit_id=r["unit_id"],
        unit_name=chart.unit(r["unit_id"]).name if r["unit_id"] in chart else r["unit_id"],
        category=r["category"],
        title=r["title"],
        claimant=r["claimant"],
        claim_mode=r["claim_mode"],
        reported_at=reported,
        claimed_at=_time(r["claimed_at"]),
        closed_at=_time(r["closed_at"]),
        due_at=_time(due),
        overdue=due is not None and int(due) < _epoch(now),
    )
