"""The supervisors' dashboard read model: what each grievance event changes in the views.

This module only reads events and computes changes; `projections.dashboard.tables` stores them, one page of
events and its tracking position in one transaction. Every figure here is additive (a count that goes
up or down by whole events), so a page's changes can be summed in memory and written in a few
statements, and a from-zero rebuild gives exactly what following the log gave.

A unit's counters are its totals: everything at the unit and below it. A supervisor's question is then
one lookup by unit, whatever the size of the chart below; summing a street's thousand households at
query time cost tens of milliseconds with a million grievances stored. A page adds each change to every
unit on the way up once, after summing the page per unit, so the extra writes are per unit a page, not
per event. A unit's own figures are its total less its children's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from uuid import UUID

from engine.chart import OrgChart
from engine.grievance import Grievance, Status
from engine.levels import Level
from schemas.dashboard import SetAsideEvent

# Days and months are counted in China Standard Time, where the grid workers live.
REPORTING_TZ = timezone(timedelta(hours=8), "CST")
# Durations are kept as histograms whose buckets grow by 2 %: percentiles are exact to within 2 %.
BUCKET_GROWTH = 1.02
_LOG_GROWTH = math.log(BUCKET_GROWTH)

MONTH_COLUMNS = (
    "reported",
    "claims",
    "claims_on_time",
    "missed",
    "escalated_out",
    "resolved",
    "replied",
    "rated",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "claims_organisation",
    "claims_group",
    "claims_member",
)
DAY_COLUMNS = ("reported", "claimed", "resolved", "replied")
# Closures by the step that made them, and those of them a resident later reopened (by the closure's outcome):
# closures less reopened ones are the grievances that stand settled, as the headline counts them.
SETTLED_COLUMNS = ("resolved", "replied", "reopened_resolved", "reopened_replied")
POINTS_COLUMNS = ("claims", "resolved", "replied", "satisfied", "basically_satisfied", "dissatisfied")
DAY = 86_400
# Plain strings: a row's status is one, and comparing two plain strings is the cheapest comparison there is.
WAITING, CLAIMED = Status.WAITING.value, Status.CLAIMED.value
RESOLVED, REPLIED = Status.RESOLVED.value, Status.REPLIED.value
_UTC_OFFSET = int(REPORTING_TZ.utcoffset(None).total_seconds())
_DAY_NAMES: dict[int, str] = {}


@dataclass(slots=True)
class GrievanceRow:
    """One grievance in the list view: where it is, who has it, and its clocks (epoch seconds)."""

    grievance_id: UUID
    version: int
    status: str
    level: str
    unit_id: str
    category: str
    channel: str
    title: str
    reported_unit: str
    reported_at: int
    arrived_at: int
    claim_due: int | None
    claimed_at: int | None
    finish_due: int | None
    claim_mode: str | None
    claimant: str | None
    closed_at: int | None
    rating: str | None
    escalations: int
    reopen_count: int
    # When its last event occurred, whatever it was (an escalation, a progress note): Open311's
    # `updated_datetime`.
    updated_at: int
    # Where the current unit sits: its street committee, community and grid (None above them), so a
    # supervisor's subtree is one indexed equality rather than a list of hundreds of units.
    street_id: str | None = None
    community_id: str | None = None
    grid_id: str | None = None

    @property
    def due_at(self) -> int | None:
        """The limit of the current stage; None once closed."""
        if self.status == WAITING:
            return self.claim_due
        if self.status == CLAIMED:
            return self.finish_due
        return None


ROW_COLUMNS = tuple(f.name for f in fields(GrievanceRow))


@dataclass
class PageChanges:
    """What a page of events changes: final rows of the grievances it touched (by the integer of their ids), and
    counter deltas. While the page runs the unit-keyed deltas are each unit's own; `project` ends by rolling them
    up the chart."""

    lineages: Lineages
    rows: dict[int, GrievanceRow] = field(default_factory=dict)
    status_counts: defaultdict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # Grievances by unit and category, so a list filtered by category knows how many it can find.
    category_counts: defaultdict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    months: defaultdict[tuple[str, str], defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    days: defaultdict[tuple[str, str], defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    durations: defaultdict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    # Open grievances by unit and the day (UTC day number) their current limit runs out: an overdue count
    # is then whole past days from here plus today's few from the list.
    due_days: defaultdict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    # The volunteer points ledger by (unit, claimant, mode): where the claimant earned them, rolled up the chart.
    points: defaultdict[tuple[str, str, str], defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    # The funnel: grievances resolved and replied to by unit and the level of the unit that settled them.
    settled: defaultdict[tuple[str, str], defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    # Durations by the level where they were measured, for the whole chart: not per unit, so not rolled up.
    level_durations: defaultdict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    # Events of the page that could not be read or projected (the runner fills it in). Later events of such a
    # grievance are set aside too, since the views' row of it no longer follows its history.
    set_aside: list[SetAsideEvent] = field(default_factory=list)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def day_of(moment: datetime) -> str:
    """The reporting day, YYYY-MM-DD; its first seven characters are the month."""
    return moment.astimezone(REPORTING_TZ).date().isoformat()


def _day_of_second(second: int) -> str:
    """`day_of` for a whole epoch second, named once per day: a page's events fall on a few days."""
    number = (second + _UTC_OFFSET) // DAY
    name = _DAY_NAMES.get(number)
    if name is None:
        name = _DAY_NAMES[number] = day_of(datetime.fromtimestamp(number * DAY - _UTC_OFFSET, REPORTING_TZ))
    return name


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration: bucket b holds durations up to BUCKET_GROWTH**b seconds."""
    return 0 if seconds <= 1 else math.ceil(math.log(seconds) / _LOG_GROWTH)


def bucket_upper(bucket: int) -> float:
    return BUCKET_GROWTH**bucket


def percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """The p-th percentile (0-100) of a bucketed histogram, as its bucket's upper bound in seconds."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(total * p / 100))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_upper(bucket)
    raise AssertionError("unreachable: ranks never exceed the total")


# Volunteer points (002) per counted thing: a fix counts most; a satisfied resident adds, a dissatisfied one costs.
POINTS_WEIGHTS = {
    "claims": 1,
    "resolved": 10,
    "replied": 3,
    "satisfied": 5,
    "basically_satisfied": 2,
    "dissatisfied": -5,
}


def points_of(counts: Mapping[str, int]) -> int:
    """Volunteer points (002) of a claimant's counts, weighted by POINTS_WEIGHTS."""
    return sum(weight * counts.get(column, 0) for column, weight in POINTS_WEIGHTS.items())


class Lineages:
    """Each unit's street committee, community and grid, and the units its figures count towards, looked up
    in the chart once per unit."""

    def __init__(self, chart: OrgChart) -> None:
        self.chart = chart
        self._cache: dict[str, tuple[str | None, str | None, str | None]] = {}
        self._depth: dict[str, int] = {}
        self._parent: dict[str, str] = {}
        self.steps_up(unit.id for unit in chart)

    def steps_up(self, unit_ids: Iterable[str]) -> tuple[dict[str, int], dict[str, str]]:
        """How many steps each unit of the chart (and each of `unit_ids`) is below the root, and the unit
        directly above it. A unit the chart does not know stands alone: 0 steps, counting only for itself."""
        for unit_id in unit_ids:
            if unit_id not in self._depth:
                lineage = self.chart.lineage(unit_id) if unit_id in self.chart else (unit_id,)
                self._depth[unit_id] = len(lineage) - 1
                self._parent[unit_id] = lineage[min(1, len(lineage) - 1)]
        return self._depth, self._parent

    def __call__(self, unit_id: str) -> tuple[str | None, str | None, str | None]:
        found = self._cache.get(unit_id)
        if found is None:
            by_level = (
                {self.chart.unit(u).level: u for u in self.chart.lineage(unit_id)} if unit_id in self.chart else {}
            )
            found = self._cache[unit_id] = (
                by_level.get(Level.STREET_COMMITTEE),
                by_level.get(Level.COMMUNITY),
                by_level.get(Level.GRID_BRANCH),
            )
        return found


class Unprojectable(Exception):
    """The event at `index` of a page cannot be projected; `error` says why."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"event {index} of the page: {type(error).__name__}: {error}")
        self.index = index
        self.error = error


def project(
    events: Sequence[Any], known: Mapping[int, GrievanceRow], lineages: Lineages, *, rolled_up: bool = True
) -> PageChanges:
    """The changes a page of grievance events makes, given the stored rows of the grievances it touches (by the
    integer of their ids); `Unprojectable` names the first event that cannot be projected. Not `rolled_up`, its
    counters are each unit's own, to be added to other pages' (`Tally`) and rolled up once."""
    changes = PageChanges(lineages=lineages)
    # Keyed by the id's integer: a UUID hashes and compares in Python, an int in C.
    rows = changes.rows
    due_days = changes.due_days
    for index, event in enumerate(events):
        try:
            gid = event.originator_id.int
            row = rows.get(gid)
            if row is None and (stored := known.get(gid)) is not None:
                row = replace(stored)  # never mutate what the caller passed in
            unit_before, due_before = ("", None) if row is None else (row.unit_id, row.due_at)
            row = rows[gid] = _apply(event, row, changes)
            due = row.due_at
            if due != due_before or row.unit_id != unit_before:
                if due_before is not None:
                    due_days[(unit_before, due_before // DAY)] -= 1
                if due is not None:
                    due_days[(row.unit_id, due // DAY)] += 1
        # Whatever one event does (a time no calendar holds, a field of the wrong type), the page's caller sets
        # it aside and projects the rest; what this page changed so far is dropped with it.
        except Exception as error:
            raise Unprojectable(index, error) from error
    if rolled_up:
        _roll_up(changes)
    return changes


_SINGLE_COUNTERS = ("status_counts", "category_counts", "durations", "due_days", "level_durations")
_COLUMN_COUNTERS = ("months", "days", "points", "settled")


class Tally:
    """Own counter deltas of several pages added together, to be written as one page's: a rebuild writes each
    counter row once for many pages rather than once a page (its counter rows outnumbered its list rows by
    ten to one), and rolls them up the chart once."""

    def __init__(self, lineages: Lineages) -> None:
        self.lineages = lineages
        self.pages = 0
        self.keys = 0  # units' own counter rows held (rolled up the chart, they are a few times more)
        self._counts = PageChanges(lineages=lineages)

    def add(self, page: PageChanges) -> None:
        """Add a page's own (not rolled up) counter deltas."""
        held = self._counts
        for name in _SINGLE_COUNTERS:
            into: defaultdict[Any, int] = getattr(held, name)
            for key, n in getattr(page, name).items():
                into[key] += n
        for name in _COLUMN_COUNTERS:
            into_columns: defaultdict[Any, defaultdict[str, int]] = getattr(held, name)
            for key, columns in getattr(page, name).items():
                total = into_columns[key]
                for column, n in columns.items():
                    total[column] += n
        self.pages += 1
        self.keys = sum(len(getattr(held, name)) for name in (*_SINGLE_COUNTERS, *_COLUMN_COUNTERS))

    def taken(self, page: PageChanges) -> PageChanges:
        """`page`'s rows and set-aside events with every counter delta held, rolled up; the tally starts empty."""
        counts, self._counts, self.pages, self.keys = self._counts, PageChanges(lineages=self.lineages), 0, 0
        _roll_up(counts)
        counts.rows, counts.set_aside = page.rows, page.set_aside
        return counts


def without_counters(page: PageChanges) -> PageChanges:
    """A page's rows and set-aside events alone: what is written of a page whose counters a `Tally` holds."""
    return PageChanges(lineages=page.lineages, rows=page.rows, set_aside=page.set_aside)


_Key = TypeVar("_Key", bound=tuple[Any, ...])
_Value = TypeVar("_Value")
_Deltas = TypeVar("_Deltas", bound=dict[Any, Any])


def _roll_up(c: PageChanges) -> None:
    """Turn each unit's own deltas into deltas of the totals of the unit and of every unit above it.

    Step by step from the bottom of the chart, each unit's total is added to its parent's once: a page's
    deltas at a thousand households share a few hundred ancestors, so this adds far fewer times than
    adding each household's deltas to all six units above it.
    """
    units = {
        unit
        for table in (c.status_counts, c.category_counts, c.months, c.days, c.due_days, c.settled)
        for unit, _ in table
    }
    units.update(unit for unit, _claimant, _mode in c.points)
    units.update(unit for unit, _measure, _bucket in c.durations)
    depth, parent = c.lineages.steps_up(units)
    c.status_counts = _summed_up(c.status_counts, depth, parent)
    c.category_counts = _summed_up(c.category_counts, depth, parent)
    c.due_days = _summed_up(c.due_days, depth, parent)
    c.durations = _summed_up(c.durations, depth, parent)
    c.months = _summed_up_by_column(c.months, depth, parent)
    c.days = _summed_up_by_column(c.days, depth, parent)
    c.settled = _summed_up_by_column(c.settled, depth, parent)
    c.points = _summed_up_by_column(c.points, depth, parent)


def _by_depth(deltas: Mapping[_Key, _Value], depth: Mapping[str, int]) -> list[dict[_Key, _Value]]:
    by_depth: list[dict[_Key, _Value]] = [{} for _ in Level]
    for key, value in deltas.items():
        by_depth[depth[key[0]]][key] = value
    return by_depth


def _merged(by_depth: list[_Deltas]) -> _Deltas:
    totals = by_depth[0]
    for deeper in by_depth[1:]:
        totals.update(deeper)  # no key is at two depths: its unit is at one
    return totals


def _summed_up(
    deltas: Mapping[tuple[Any, ...], int], depth: Mapping[str, int], parent: Mapping[str, str]
) -> defaultdict[tuple[Any, ...], int]:
    """Deltas keyed by (unit, *rest), each also added to the unit's parent's, from the deepest units up."""
    by_depth = [defaultdict(int, level) for level in _by_depth(deltas, depth)]
    for d in range(len(Level) - 1, 0, -1):
        above = by_depth[d - 1]
        for key, n in by_depth[d].items():
            if n:  # nothing to carry from a grievance that came and went within the page
                above[(parent[key[0]], *key[1:])] += n
    return _merged(by_depth)


def _summed_up_by_column(
    deltas: Mapping[_Key, defaultdict[str, int]], depth: Mapping[str, int], parent: Mapping[str, str]
) -> defaultdict[_Key, defaultdict[str, int]]:
    """`_summed_up` for deltas of several columns, keyed by (unit, *rest); it adds into the given columns."""
    by_depth = [defaultdict(lambda: defaultdict(int), level) for level in _by_depth(deltas, depth)]
    for d in range(len(Level) - 1, 0, -1):
        above = by_depth[d - 1]
        for key, counts in by_depth[d].items():
            total = above[(parent[key[0]], *key[1:])]
            for column, n in counts.items():
                total[column] += n
    return _merged(by_depth)


# Each event's enums are StrEnums, so str() gives a member's value as a plain string: in C, where `.value` is
# a Python-level property, a noticeable part of a rebuild.
def _apply(e: Any, row: GrievanceRow | None, c: PageChanges) -> GrievanceRow:
    kind = type(e).__name__
    moment = e.occurred_at.timestamp()
    at = math.floor(moment)
    day = _DAY_NAMES.get((at + _UTC_OFFSET) // DAY) or _day_of_second(at)
    if kind == "Reported":
        row = GrievanceRow(
            grievance_id=e.originator_id, version=e.originator_version, status=WAITING,
            level=str(e.level), unit_id=e.unit_id, category=str(e.category), channel=str(e.channel),
            title=e.title, reported_unit=e.unit_id, reported_at=at, arrived_at=at,
            claim_due=int(e.claim_due.timestamp()), claimed_at=None, finish_due=None, claim_mode=None,
            claimant=None, closed_at=None, rating=None, escalations=0, reopen_count=0, updated_at=at,
        )  # fmt: skip
        row.street_id, row.community_id, row.grid_id = c.lineages(row.unit_id)
        c.status_counts[(row.unit_id, WAITING)] += 1
        c.category_counts[(row.unit_id, row.category)] += 1
        c.months[(row.unit_id, day[:7])]["reported"] += 1
        c.days[(row.unit_id, day)]["reported"] += 1
        return row
    if row is None:
        raise LookupError(f"event {kind} v{e.originator_version} of {e.originator_id} before its report")
    if e.originator_version != row.version + 1:
        raise LookupError(f"event v{e.originator_version} of {e.originator_id} after v{row.version}: out of order")
    row.version, row.updated_at = e.originator_version, max(row.updated_at, at)
    handler = _HANDLERS.get(kind)
    if handler is not None:  # ProgressRecorded changes nothing a supervisor counts beyond the version
        handler(e, row, c, at, day)
    return row


def _claimed(e: Any, row: GrievanceRow, c: PageChanges, at: int, day: str) -> None:
    _move(c, row, row.unit_id, CLAIMED)
    counts = c.months[(row.unit_id, day[:7])]
    counts["claims"] += 1
    mode = str(e.mode)
    counts[f"claims_{mode}"] += 1
    if row.claim_due is not None and at <= row.claim_due:
        counts["claims_on_time"] += 1
    c.days[(row.unit_id, day)]["claimed"] += 1
    bucket = bucket_of(at - row.arrived_at)
    c.durations[(row.unit_id, "claim", bucket)] += 1
    c.level_durations[(row.level, "claim", bucket)] += 1
    c.points[(row.unit_id, e.claimant, mode)]["claims"] += 1
    row.claimed_at, row.finish_due, row.claim_mode, row.claimant = at, epoch(e.finish_due), mode, e.claimant


def _escalated(e: Any, row: GrievanceRow, c: PageChanges, at: int, day: str) -> None:
    counts = c.months[(row.unit_id, day[:7])]
    counts["escalated_out"] += 1
    if e.reason == "overdue" and row.status == WAITING:
        counts["missed"] += 1
    _move(c, row, e.to_unit, WAITING)
    row.level, row.escalations = str(e.to_level), row.escalations + 1
    _arrive(row, at, epoch(e.claim_due))


def _closed(outcome: str) -> Any:
    def handle(e: Any, row: GrievanceRow, c: PageChanges, at: int, day: str) -> None:
        _move(c, row, row.unit_id, outcome)
        c.months[(row.unit_id, day[:7])][outcome] += 1
        c.days[(row.unit_id, day)][outcome] += 1
        bucket = bucket_of(at - row.reported_at)
        c.durations[(row.unit_id, "close", bucket)] += 1
        c.level_durations[(row.level, "close", bucket)] += 1
        c.settled[(row.unit_id, row.level)][outcome] += 1
        if row.claimant is not None and row.claim_mode is not None:
            c.points[(row.unit_id, row.claimant, row.claim_mode)][outcome] += 1
        row.closed_at, row.finish_due = at, None

    return handle


def _rated(e: Any, row: GrievanceRow, c: PageChanges, at: int, day: str) -> None:
    counts = c.months[(row.unit_id, day[:7])]
    counts["rated"] += 1
    rating = str(e.rating)
    counts[rating] += 1
    if row.claimant is not None and row.claim_mode is not None:
        c.points[(row.unit_id, row.claimant, row.claim_mode)][rating] += 1
    row.rating = rating


def _reopened(e: Any, row: GrievanceRow, c: PageChanges, at: int, day: str) -> None:
    if row.status in (RESOLVED, REPLIED):
        c.settled[(row.unit_id, row.level)][f"reopened_{row.status}"] += 1
    _move(c, row, e.unit_id, WAITING)
    row.reopen_count += 1
    _arrive(row, at, epoch(e.claim_due))


# By event class name: a dict lookup per event instead of a chain of isinstance checks.
_HANDLERS = {
    Grievance.Claimed.__name__: _claimed,
    Grievance.Escalated.__name__: _escalated,
    Grievance.Resolved.__name__: _closed("resolved"),
    Grievance.Replied.__name__: _closed("replied"),
    Grievance.Rated.__name__: _rated,
    Grievance.Reopened.__name__: _reopened,
}


def _move(c: PageChanges, row: GrievanceRow, unit_id: str, status: str) -> None:
    c.status_counts[(row.unit_id, row.status)] -= 1
    c.status_counts[(unit_id, status)] += 1
    if unit_id != row.unit_id:
        row.street_id, row.community_id, row.grid_id = c.lineages(unit_id)
        c.category_counts[(row.unit_id, row.category)] -= 1
        c.category_counts[(unit_id, row.category)] += 1
    row.unit_id, row.status = unit_id, status


def _arrive(row: GrievanceRow, at: int, claim_due: int) -> None:
    row.arrived_at, row.claim_due = at, claim_due
    row.claimed_at = row.finish_due = row.closed_at = None
    row.claim_mode = row.claimant = row.rating = None
