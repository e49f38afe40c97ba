"""Query results for supervisors' dashboards: headline, counts, rates, durations, queues, points."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from schemas.common import AwareDatetime, LevelName

# A row of a table by unit: the unit and everything below it (the table's first row is the headline's, then one
# for each unit directly below), or what is at the unit itself and not below it, so that the rows below and the
# unit's own row add up to the first.
Scope = Literal["unit_and_below", "unit_itself"]


class Headline(msgspec.Struct, kw_only=True, frozen=True):
    """The figures a leading group reports: resolved, replied, open (waiting or claimed), overdue."""

    unit_id: str
    as_of: AwareDatetime
    resolved: int
    replied: int
    open: int
    waiting: int
    claimed: int
    overdue: int


class UnitCounts(msgspec.Struct, kw_only=True, frozen=True):
    """Grievances (each counted once, where it stands now), at a unit and everything below it, or at the unit
    itself (`scope`)."""

    unit_id: str
    name: str
    level: LevelName
    scope: Scope = "unit_and_below"
    waiting: int
    claimed: int
    resolved: int
    replied: int


class UnitRates(msgspec.Struct, kw_only=True, frozen=True):
    """The three rates 12345 hotlines are ranked by, for a unit and its subtree over a period of months.

    response_rate: claims within the claim limit ÷ (claims + waits that ran out unclaimed);
    resolution_rate: resolved ÷ (resolved + replied), so a reply is not counted as a fix;
    satisfaction_rate: (satisfied + basically satisfied) ÷ rated.
    `resolved` and `replied` count closures in the months (a grievance closed, reopened and closed again counts
    twice), not grievances; `scope` says whether the row is of the unit and below or of the unit itself.
    """

    unit_id: str
    name: str
    level: LevelName
    scope: Scope = "unit_and_below"
    from_month: str
    to_month: str
    reported: int
    claims: int
    claims_on_time: int
    missed: int
    resolved: int
    replied: int
    rated: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    claims_by_organisation: int
    claims_by_group: int
    claims_by_member: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None


class UnitDurations(msgspec.Struct, kw_only=True, frozen=True):
    """Time to claim (from arriving at a unit) and to close (from the report), in hours, within 2 %; `claims`
    and `closes` count claims and closures, of the unit and below or of the unit itself (`scope`)."""

    unit_id: str
    name: str
    level: LevelName
    scope: Scope = "unit_and_below"
    claims: int
    claim_p50_hours: float | None
    claim_p90_hours: float | None
    closes: int
    close_p50_hours: float | None
    close_p90_hours: float | None


class DayCounts(msgspec.Struct, kw_only=True, frozen=True):
    """Reports, claims and closures on one day (China Standard Time)."""

    day: str
    reported: int
    claimed: int
    resolved: int
    replied: int


class LevelSettled(msgspec.Struct, kw_only=True, frozen=True):
    """The closures (resolutions and replies) one of the seven steps made, and how many of them a resident's
    rating later reopened. Closures less the reopened ones, summed over the steps, are the grievances the
    headline counts as resolved and replied."""

    level: LevelName
    resolved: int
    replied: int
    reopened_resolved: int = 0
    reopened_replied: int = 0


class LevelLabel(msgspec.Struct, kw_only=True, frozen=True):
    """One of the seven steps, with its names for a person (Chinese, English)."""

    level: LevelName
    rank: int
    zh: str
    en: str


class GrievanceItem(msgspec.Struct, kw_only=True, frozen=True):
    """A grievance in a list or queue."""

    grievance_id: UUID
    version: int
    status: str
    level: LevelName
    unit_id: str
    unit_name: str
    category: str
    title: str
    claimant: str | None
    claim_mode: str | None
    reported_at: AwareDatetime
    claimed_at: AwareDatetime | None
    closed_at: AwareDatetime | None
    due_at: AwareDatetime | None
    overdue: bool


class GrievancePage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of a filtered list; ask for `offset + limit` next while `more` is true."""

    offset: int
    limit: int
    more: bool
    items: list[GrievanceItem]


class ServiceRequestItem(msgspec.Struct, kw_only=True, frozen=True):
    """A grievance as Open311 reads it: the list's item, the unit where it was reported (the item's unit is
    where it is now), when its last event occurred, and how often it was escalated."""

    item: GrievanceItem
    reported_unit: str
    updated_at: AwareDatetime
    escalations: int


class PointsEntry(msgspec.Struct, kw_only=True, frozen=True):
    """A member's, group's or organisation's volunteer points and what earned them."""

    claimant: str
    mode: str
    claims: int
    resolved: int
    replied: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    points: int


class SetAsideEvent(msgspec.Struct, kw_only=True, frozen=True):
    """An event the views could not read or project: where it is in the log, whose it is, and why."""

    position: int
    grievance_id: str
    version: int
    event: str
    error: str


class ViewsHealth(msgspec.Struct, kw_only=True, frozen=True):
    """How the dashboard views stand: their position, how far behind the log, what they set aside, and
    whether whoever keeps them is running. `healthy` is false while the runner is dead, stuck or far behind;
    `problems` says which."""

    status: Literal["ok", "unhealthy"]
    healthy: bool
    position: int
    backlog: int
    set_aside: int
    latest_set_aside: list[SetAsideEvent]
    runner: Literal["running", "stopped", "elsewhere"]
    problems: list[str]
