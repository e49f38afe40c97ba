"""Which index a page of the grievance list walks, chosen from the views' exact counts.

A page is the newest `offset + limit` grievances matching some filters. Walking an index kept in the list's
own order stops once the page is full: cheap when matches are common, a walk over every row when they are
rare. Reading every match through a filter's own index and sorting them is the other way round. The
stores' planners guess between these from sampled statistics, and get rare values and time-dependent
filters (overdue as of now) wrong by hundreds of milliseconds; the views know the counts exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Walk(StrEnum):
    """An index a page can be read through."""

    LIST = "list"  # the unit's rows (or the whole chart's) newest first
    STATUS = "status"  # the whole chart's rows of the asked status, newest first
    LEVEL = "level"  # the whole chart's rows at the asked level, newest first
    CATEGORY = "category"  # the whole chart's rows of the asked category, newest first
    OVERDUE = "overdue"  # the unit's open rows by due time: every overdue one read, then sorted


@dataclass(frozen=True)
class ListCounts:
    """What the views count for a page's question; None where a filter was not asked."""

    in_unit: int  # grievances at the unit and below
    status_in_unit: int | None = None
    status_in_chart: int | None = None
    overdue_in_unit: int | None = None
    # Grievances at the asked level, counted as those at the chart's units of that level: an estimate, since
    # a row's level is the one its events recorded, which a chart edited since may no longer give its unit.
    level_in_unit: int | None = None
    level_in_chart: int | None = None
    category_in_unit: int | None = None
    category_in_chart: int | None = None


def cheapest_walk(counts: ListCounts, wanted: int) -> Walk | None:
    """The walk expected to read the fewest rows to find the first `wanted` matches; None when the exact
    counts show nothing can match."""
    exact = [
        n
        for n in (counts.in_unit, counts.status_in_unit, counts.category_in_unit, counts.overdue_in_unit)
        if n is not None
    ]
    if min(exact) == 0:
        return None
    # Each filter's count bounds the matches of them all; with none counted, every row may match. An
    # estimate of none still leaves the walks to find what there is.
    matches = max(1, min(n for n in (*exact, counts.level_in_unit) if n is not None))

    def walked(rows: int) -> float:
        # Matches are taken to be spread evenly along the walk; it cannot read more than its rows.
        return min(wanted * rows / matches, rows)

    costs: dict[Walk, float] = {Walk.LIST: walked(counts.in_unit)}
    if counts.status_in_chart is not None:
        costs[Walk.STATUS] = walked(counts.status_in_chart)
    if counts.overdue_in_unit is not None:
        costs[Walk.OVERDUE] = 2.0 * counts.overdue_in_unit  # read, then sorted
    if counts.level_in_chart is not None:
        costs[Walk.LEVEL] = walked(counts.level_in_chart)
    if counts.category_in_chart is not None:
        costs[Walk.CATEGORY] = walked(counts.category_in_chart)
    preference = (Walk.STATUS, Walk.OVERDUE, Walk.LEVEL, Walk.CATEGORY, Walk.LIST)
    return min(preference, key=lambda w: (costs.get(w, float("inf")), preference.index(w)))
