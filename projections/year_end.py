"""Two year-end readings of the points ledger against the roster (seed 002; issue 17's 双认可 and year-end view):

- a workplace's members' service where they live: a member registered both at work and in their community
  (双报到) is rated there as well as at work, so their workplace organisation reads the claims they made as
  members, what came of them and the points earned, every member it employs listed, those who did nothing too;
- a street's organisations' contributions: each party group, party organisation and stationed unit (驻区单位)
  registered at a unit of the street, with its claims, resolutions, replies and residents' satisfaction.

Both take the year's points (projections.stars.yearly_points) and the roster's entries as they stand; neither
reads a store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from engine.grievance import ClaimMode
from engine.roster import Kind, RosterEntry
from projections.dashboard.changes import points_of
from projections.stars import YearOfPoints

SATISFIED = ("satisfied", "basically_satisfied")
RATINGS = (*SATISFIED, "dissatisfied")


@dataclass(frozen=True)
class Contribution:
    """One roster entry's year: the ledger's counts for what it claimed in its own mode, and the points earned."""

    entry: RosterEntry
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def points(self) -> int:
        """The year's volunteer points, by the points ledger's weights."""
        return points_of(self.counts)

    @property
    def rated(self) -> int:
        """Ratings residents (or the office's callbacks) gave the grievances it held when they were rated."""
        return sum(self.counts[r] for r in RATINGS)

    @property
    def satisfaction_rate(self) -> float | None:
        """Satisfied or basically satisfied among those ratings; None with none."""
        return sum(self.counts[r] for r in SATISFIED) / self.rated if self.rated else None


def _by_claimant(year_of: Iterable[YearOfPoints], mode: ClaimMode | None) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for y in year_of:
        if mode is None or y.mode == mode.value:
            found.setdefault(y.claimant, Counter()).update(y.counts)
    return found


def _ranked(contributions: Iterable[Contribution]) -> list[Contribution]:
    return sorted(contributions, key=lambda c: (-c.points, -c.counts["claims"], c.entry.entry_id))


def workplace_service(year_of: Iterable[YearOfPoints], entries: Iterable[RosterEntry],
                      workplace_id: str) -> list[Contribution]:  # fmt: skip
    """The members registered with `workplace_id` as their workplace, each with what they did as a member that
    year (nothing, for some), most points first."""
    done = _by_claimant(year_of, ClaimMode.MEMBER)
    members = [e for e in entries if e.kind is Kind.MEMBER and e.workplace_id == workplace_id]
    return _ranked(Contribution(m, done.get(m.entry_id, Counter())) for m in members)


def street_year_end(year_of: Iterable[YearOfPoints], entries: Iterable[RosterEntry],
                    units: Collection[str]) -> list[Contribution]:  # fmt: skip
    """The bodies (party groups, organisations, stationed units) registered at `units` (a street and the units
    below it), each with what it claimed that year, most points first; those that claimed nothing are listed too."""
    done = _by_claimant(year_of, None)
    bodies = [e for e in entries if not e.kind.is_person and e.unit_id in units]
    return _ranked(Contribution(b, done.get(b.entry_id, Counter())) for b in bodies)
