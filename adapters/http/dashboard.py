"""The supervisors' questions over HTTP: each answers for a unit and everything below it (default: the
reader's own unit), within the reader's jurisdiction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter

from adapters.http.problems import api_get as get
from adapters.http.services import AsOf, Reader, Services, moment, require_reader_of, services
from engine.levels import Level
from projections.dashboard.queries import twelve_months_to
from schemas.dashboard import (
    DayCounts,
    GrievanceItem,
    Headline,
    LevelLabel,
    LevelSettled,
    PointsEntry,
    UnitCounts,
    UnitDurations,
    UnitRates,
)

# The formats of the month and day parameters, for the OpenAPI document (the queries check them).
MONTH = {"pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
DAY = {"format": "date"}
Unit = Annotated[str | None, QueryParameter(description="A unit id; default: your own unit (the leading group for "
                                                    "auditors and admins).")]  # fmt: skip


class UnitNode(msgspec.Struct, kw_only=True, frozen=True):
    """A unit of the chart with its children, for drilling down."""

    id: str
    name: str
    level: str
    parent: str | None
    children: list[dict[str, str]]


def _as_of(svc: Services, at: str | None) -> datetime:
    # Without one, the latest activity's: a store of a past year shows that year, not twelve empty months.
    return moment(svc, at) if at is not None else svc.dashboard.default_as_of(svc.clock())


@get("/dashboard/headline", sync_to_thread=True, summary="Resolved, replied, open and overdue totals")
def headline(state: State, principal: Reader, unit: Unit = None, at: AsOf = None) -> Headline:
    svc = services(state)
    return svc.dashboard.headline(require_reader_of(svc, principal, unit), now=_as_of(svc, at))


@get("/dashboard/rates", sync_to_thread=True, summary="Response, resolution and satisfaction rates of a unit "
     "and each unit directly below, over a span of months")  # fmt: skip
def rates(
    state: State,
    principal: Reader,
    unit: Unit = None,
    from_month: Annotated[str | None, QueryParameter(name="from", description="YYYY-MM", schema_extra=MONTH)] = None,
    to_month: Annotated[str | None, QueryParameter(name="to", description="YYYY-MM", schema_extra=MONTH)] = None,
    at: AsOf = None,
) -> list[UnitRates]:
    svc = services(state)
    # Without `from` and `to`: the twelve months before `at`, as every channel counts them.
    default_from, default_to = twelve_months_to(_as_of(svc, at))
    return svc.dashboard.rates(require_reader_of(svc, principal, unit), from_month=from_month or default_from,
                               to_month=to_month or default_to)  # fmt: skip


@get("/dashboard/counts", sync_to_thread=True, summary="Counts by status, of a unit and each unit directly below")
def counts(state: State, principal: Reader, unit: Unit = None) -> list[UnitCounts]:
    svc = services(state)
    return svc.dashboard.counts(require_reader_of(svc, principal, unit))


@get("/dashboard/daily", sync_to_thread=True, summary="Reports, claims and closures per day")
def daily(
    state: State,
    principal: Reader,
    from_day: Annotated[str, QueryParameter(name="from", description="YYYY-MM-DD", schema_extra=DAY)],
    to_day: Annotated[str, QueryParameter(name="to", description="YYYY-MM-DD", schema_extra=DAY)],
    unit: Unit = None,
) -> list[DayCounts]:
    svc = services(state)
    return svc.dashboard.daily(require_reader_of(svc, principal, unit), from_day=from_day, to_day=to_day)


@get("/dashboard/funnel", sync_to_thread=True, summary="How many grievances each of the seven steps settled")
def funnel(state: State, principal: Reader, unit: Unit = None) -> list[LevelSettled]:
    svc = services(state)
    return svc.dashboard.settled_by_level(require_reader_of(svc, principal, unit))


@get("/dashboard/durations", sync_to_thread=True, summary="Time to claim and to close, p50 and p90")
def durations(
    state: State, principal: Reader, unit: Unit = None, by_level: FromQuery[bool] = False
) -> list[UnitDurations]:
    svc = services(state)
    unit_id = require_reader_of(svc, principal, unit)
    if by_level:
        require_reader_of(svc, principal, svc.chain.chart.root.id)
        return svc.dashboard.durations_by_level()
    return svc.dashboard.durations(unit_id)


@get("/dashboard/overdue", sync_to_thread=True, summary="The overdue queue, most overdue first")
def overdue(
    state: State,
    principal: Reader,
    unit: Unit = None,
    at: AsOf = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> list[GrievanceItem]:
    svc = services(state)
    return svc.dashboard.overdue_queue(require_reader_of(svc, principal, unit), now=_as_of(svc, at), limit=limit)


@get("/dashboard/points", sync_to_thread=True, summary="The volunteer points ledger, most points first")
def points(
    state: State, principal: Reader, unit: Unit = None, limit: Annotated[int, QueryParameter(ge=1, le=500)] = 20
) -> list[PointsEntry]:
    svc = services(state)
    return svc.dashboard.points(require_reader_of(svc, principal, unit), limit=limit)


@get("/chart/units/{unit_id:str}", sync_to_thread=False, summary="A unit and the units directly below it")
def chart_unit(unit_id: FromPath[str], state: State, principal: Reader) -> UnitNode:
    svc = services(state)
    unit = svc.chain.chart.unit(require_reader_of(svc, principal, unit_id))
    return UnitNode(id=unit.id, name=unit.name, level=unit.level.value, parent=unit.parent,
                    children=[{"id": c.id, "name": c.name, "level": c.level.value}
                              for c in svc.chain.chart.children_of(unit.id)])  # fmt: skip


@get("/chart/levels", sync_to_thread=False, summary="The seven steps of the chain, lowest first, with their names")
def chart_levels(principal: Reader) -> list[LevelLabel]:
    return [LevelLabel(level=lv.value, rank=lv.rank, zh=lv.chinese, en=lv.english) for lv in Level]
