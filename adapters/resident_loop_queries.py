"""The office's questions of the resident's loop, asked alike by the CLI and HTTP: the callback queue (回访)
and who gave a unit's ratings."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.storage.resident_loop import ResidentLoopTables
from engine.chart import OrgChart
from projections.resident_loop.runner import ResidentLoopProjection
from schemas.resident_loop import CallbackItem, CallbackQueue, RatingSources


def callback_queue(projection: ResidentLoopProjection, tables: ResidentLoopTables, chart: OrgChart, unit_id: str,
                   *, now: datetime, days: int, limit: int = 100) -> CallbackQueue:  # fmt: skip
    """The closures at `unit_id` and below not rated for `days` days at `now`, with the units' rating sources;
    the loop's views are brought up to date first."""
    projection.catch_up()
    units = {u.id for u in chart.walk(unit_id)}
    closures = tables.unrated_closures(now - timedelta(days=days), units, limit=limit)
    share = tables.rating_share(units)
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
