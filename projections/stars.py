"""Star ratings (评星定级, seed 002: lifetime points, star ratings) from a year's volunteer points: what each claimant
earned in the year by the points ledger's own weights, and the stars that reaches.

Read from the events, in log order, whenever asked (a year's report, not a live view): a claim counts in the year
it was made, a resolution or reply and a resident's rating in the year they happened, each credited to whoever
had claimed the grievance then. The default thresholds (1 to 5 stars at 10, 30, 60, 100 and 150 points) are a
design decision of this project: about a claim resolved and rated satisfied a month for a member's fifth star.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from engine.grievance import Grievance
from projections.dashboard.changes import REPORTING_TZ, points_of

DEFAULT_THRESHOLDS = (10, 30, 60, 100, 150)


@dataclass(frozen=True)
class StarThresholds:
    """The points a year's first, second, ... star needs, rising."""

    points: tuple[int, ...] = DEFAULT_THRESHOLDS

    def __post_init__(self) -> None:
        if not self.points or any(p <= 0 for p in self.points) or list(self.points) != sorted(set(self.points)):
            raise ValueError("star thresholds must be rising whole numbers of points above 0")

    def stars(self, points: int) -> int:
        """How many stars `points` reach."""
        return sum(1 for threshold in self.points if points >= threshold)


@dataclass(frozen=True)
class YearOfPoints:
    """One claimant's year: what they did, in the ledger's columns, and the points it earned."""

    claimant: str
    mode: str
    counts: Counter[str]

    @property
    def points(self) -> int:
        """The year's volunteer points, by the points ledger's weights."""
        return points_of(self.counts)


def yearly_points(events: Iterable[Any], year: int) -> list[YearOfPoints]:
    """Each claimant's counts and points for `year` (in the reporting zone), from the chain's events in log order
    (events of other aggregates, the roster's, are passed by)."""
    claimed: dict[UUID, tuple[str, str]] = {}
    counts: dict[tuple[str, str], Counter[str]] = {}

    def credit(grievance_id: UUID, column: str, event: Any) -> None:
        who = claimed.get(grievance_id)
        if who is not None and event.occurred_at.astimezone(REPORTING_TZ).year == year:
            counts.setdefault(who, Counter())[column] += 1

    for event in events:
        gid = event.originator_id
        if isinstance(event, Grievance.Claimed):
            claimed[gid] = (event.claimant, str(event.mode))
            credit(gid, "claims", event)
        elif isinstance(event, Grievance.Resolved):
            credit(gid, "resolved", event)
        elif isinstance(event, Grievance.Replied):
            credit(gid, "replied", event)
        elif isinstance(event, Grievance.Rated):
            credit(gid, str(event.rating), event)
        elif isinstance(event, Grievance.Escalated | Grievance.Reopened):
            claimed.pop(gid, None)  # waiting again: the next claimant is credited from their claim on
    return sorted((YearOfPoints(c, m, n) for (c, m), n in counts.items()), key=lambda y: (-y.points, y.claimant))
