"""The office's questions of the resident's loop, asked alike by the CLI and HTTP, from its tables: the
callback queue (回访) and who gave a unit's ratings."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from engine.chart import OrgChart
from projections.resident_loop.changes import Closure
from projections.resident_loop.runner import ResidentLoopProjection
from projections.resident_loop.tables import ResidentLoopTables, utc
from schemas.resident_loop import CallbackItem, CallbackQueue, RatingSources


@dataclass(frozen=True)
class RatingShare:
    """Ratings of one scope: how many, how many satisfied (or basically), how many the residents gave themselves."""

    rated: int
    satisfied: int
    by_residents: int
    by_callback: int

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None

    @property
    def resident_share(self) -> float | None:
        return self.by_residents / self.rated if self.rated else None


def unrated_closures(tables: ResidentLoopTables, closed_before: datetime, units: Collection[str] | None, *,
                     limit: int = 100) -> list[Closure]:  # fmt: skip
    """Closures not rated since before `closed_before`, oldest first: whom the office should call back (回访)."""
    rows = tables.rows("SELECT * FROM {loop_closures} WHERE closed_at < ? ORDER BY closed_at", (utc(closed_before),))
    found = [Closure(UUID(r["grievance_id"]), r["unit_id"], r["status"], datetime.fromisoformat(r["closed_at"]))
             for r in rows if units is None or r["unit_id"] in units]  # fmt: skip
    return found[:limit]


def rating_share(tables: ResidentLoopTables, units: Collection[str] | None) -> RatingShare:
    """How the ratings of these units (all, for None) were given, and how many were satisfied."""
    rows = tables.rows("SELECT unit_id, rating, given_by, COUNT(*) AS n FROM {loop_ratings} "
                       "GROUP BY unit_id, rating, given_by")  # fmt: skip
    counts = {"rated": 0, "satisfied": 0, "resident": 0, "callback": 0}
    for r in rows:
        if units is not None and r["unit_id"] not in units:
            continue
        n = int(r["n"])
        counts["rated"] += n
        counts["satisfied"] += n if r["rating"] in ("satisfied", "basically_satisfied") else 0
        counts[r["given_by"]] = counts.get(r["given_by"], 0) + n
    return RatingShare(counts["rated"], counts["satisfied"], counts["resident"], counts["callback"])


def callback_queue(projection: ResidentLoopProjection, tables: ResidentLoopTables, chart: OrgChart, unit_id: str,
                   *, now: datetime, days: int, limit: int = 100) -> CallbackQueue:  # fmt: skip
    """The closures at `unit_id` and below not rated for `days` days at `now`, with the units' rating sources;
    the loop's views are brought up to date first."""
    projection.catch_up()
    units = {u.id for u in chart.walk(unit_id)}
    closures = unrated_closures(tables, now - timedelta(days=days), units, limit=limit)
    share = rating_share(tables, units)
    return CallbackQueue(
        unit_id=unit_id,
        as_of=now,
        days=days,
        closures=[CallbackItem(grievance_id=c.grievance_id, unit_id=c.unit_id,
                               unit_name=chart.unit(c.unit_id).name if c.unit_id in chart else c.unit_id,
                               status=c.status,  # type: ignore[arg-type]
                               closed_at=c.closed_at, days_waiting=(now - c.closed_at).days) for c in closures],
        ratings=RatingSources(unit_id=unit_id, rated=share.rated, satisfaction_rate=share.satisfaction_rate,
                              by_residents=share.by_residents, by_callback=share.by_callback,
                              resident_share=share.resident_share),
    )  # fmt: skip
