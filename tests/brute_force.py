"""The dashboard's figures recomputed the slow, obvious way: replaying each grievance's own events.

Independent of projections/dashboard/changes.py: it reads where a grievance stands from the aggregate itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from engine.grievance import Grievance
from engine.service_chain import ServiceChain
from projections.dashboard.changes import bucket_of, day_of


class Figures:
    def __init__(self) -> None:
        self.status: Counter[tuple[str, str]] = Counter()
        self.categories: Counter[tuple[str, str]] = Counter()
        self.months: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.days: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.durations: Counter[tuple[str, str, int]] = Counter()
        self.points: defaultdict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.due_days: Counter[tuple[str, int]] = Counter()
        self.settled: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.level_durations: Counter[tuple[str, str, int]] = Counter()


def recompute(chain: ServiceChain, grievance_ids: Iterable[UUID], *, own: bool = False) -> Figures:
    """The figures of these grievances as the views should hold them: each unit's totals of itself and
    everything below it, or with `own` only what happened at the unit itself."""
    f = Figures()
    for gid in grievance_ids:
        state: Any = None
        arrived = reported = updated = 0
        for e in chain.history(gid):
            before = None if state is None else (state.unit_id, state.status.value, state.claimant, state.claim_mode,
                                                  state.claim_due, state.level.value)  # fmt: skip
            state = e.mutate(state)  # type: ignore[attr-defined]
            at = int(e.occurred_at.timestamp())  # type: ignore[attr-defined]
            updated = max(updated, at)
            day = day_of(e.occurred_at)  # type: ignore[attr-defined]
            month = day[:7]
            kind = type(e).__name__
            if kind == "Reported":
                arrived = reported = at
                f.months[(state.unit_id, month)]["reported"] += 1
                f.days[(state.unit_id, day)]["reported"] += 1
                continue
            assert before is not None
            unit, _status, claimant, mode, claim_due, level = before
            if isinstance(e, Grievance.Claimed):
                m = f.months[(unit, month)]
                m["claims"] += 1
                m[f"claims_{e.mode.value}"] += 1
                m["claims_on_time"] += int(at <= int(claim_due.timestamp()))
                f.days[(unit, day)]["claimed"] += 1
                f.durations[(unit, "claim", bucket_of(at - arrived))] += 1
                f.level_durations[(level, "claim", bucket_of(at - arrived))] += 1
                f.points[(unit, e.claimant, e.mode.value)]["claims"] += 1
            elif isinstance(e, Grievance.Escalated):
                f.months[(unit, month)]["escalated_out"] += 1
                if e.reason.value == "overdue" and _status == "waiting":
                    f.months[(unit, month)]["missed"] += 1
                arrived = at
            elif isinstance(e, Grievance.Resolved | Grievance.Replied):
                outcome = "resolved" if isinstance(e, Grievance.Resolved) else "replied"
                f.months[(unit, month)][outcome] += 1
                f.days[(unit, day)][outcome] += 1
                f.durations[(unit, "close", bucket_of(at - reported))] += 1
                f.level_durations[(level, "close", bucket_of(at - reported))] += 1
                f.settled[(unit, level)][outcome] += 1
                f.points[(unit, claimant, mode.value)][outcome] += 1
            elif isinstance(e, Grievance.Rated):
                f.months[(unit, month)]["rated"] += 1
                f.months[(unit, month)][e.rating.value] += 1
                f.points[(unit, claimant, mode.value)][e.rating.value] += 1
            elif isinstance(e, Grievance.Reopened):
                if _status in ("resolved", "replied"):
                    f.settled[(unit, level)][f"reopened_{_status}"] += 1
                arrived = at
        f.status[(state.unit_id, state.status.value)] += 1
        f.categories[(state.unit_id, state.category.value)] += 1
        if state.due_at() is not None:
            f.due_days[(state.unit_id, int(state.due_at().timestamp()) // 86_400)] += 1
        f.rows[gid] = {
            "version": state.version, "status": state.status.value, "unit_id": state.unit_id,
            "level": state.level.value, "claimant": state.claimant, "rating": state.rating and state.rating.value,
            "reopen_count": state.reopen_count, "due_at": state.due_at() and int(state.due_at().timestamp()),
            "updated_at": updated, **_lineage(chain, state.unit_id),
        }  # fmt: skip
    return f if own else _rolled_up(f, chain)


def _rolled_up(own: Figures, chain: ServiceChain) -> Figures:
    """Each unit's figures added to the unit and to every unit above it in the chart."""
    f = Figures()
    f.rows, f.level_durations = own.rows, own.level_durations
    for name in ("status", "categories", "durations", "due_days"):
        for (unit, *rest), n in getattr(own, name).items():
            for above in chain.chart.lineage(unit):
                getattr(f, name)[(above, *rest)] += n
    for name in ("months", "days", "settled", "points"):
        for (unit, *rest), counts in getattr(own, name).items():
            for above in chain.chart.lineage(unit):
                getattr(f, name)[(above, *rest)].update(counts)
    return f


def _lineage(chain: ServiceChain, unit_id: str) -> dict[str, str | None]:
    levels = {chain.chart.unit(u).level.value: u for u in chain.chart.lineage(unit_id)}
    return {
        "street_id": levels.get("street_committee"),
        "community_id": levels.get("community"),
        "grid_id": levels.get("grid_branch"),
    }


INTEGER_COLUMNS = ("version", "reopen_count", "due_at", "updated_at")


def stored(views: Any) -> Figures:
    """The same figures as the views hold them."""
    f = Figures()
    with views.reading() as c:
        c.execute("SELECT * FROM dash_status_count WHERE n <> 0")
        for r in c.fetchall():
            f.status[(r["unit_id"], r["status"])] = int(r["n"])
        c.execute("SELECT * FROM dash_category_count WHERE n <> 0")
        for r in c.fetchall():
            f.categories[(r["unit_id"], r["category"])] = int(r["n"])
        for table, keys, target in (
            ("dash_unit_month", ("unit_id", "month"), f.months),
            ("dash_unit_day", ("unit_id", "day"), f.days),
            ("dash_points", ("unit_id", "claimant", "mode"), f.points),
            ("dash_settled", ("unit_id", "level"), f.settled),
        ):
            c.execute(f"SELECT * FROM {table}")
            for r in c.fetchall():
                values = {k: int(r[k]) for k in r.keys() if k not in keys and int(r[k])}  # noqa: SIM118
                if values:
                    target[tuple(r[k] for k in keys)].update(values)
        c.execute("SELECT * FROM dash_due_day WHERE n <> 0")
        for r in c.fetchall():
            f.due_days[(r["unit_id"], int(r["due_day"]))] = int(r["n"])
        c.execute("SELECT * FROM dash_duration WHERE n <> 0")
        for r in c.fetchall():
            f.durations[(r["unit_id"], r["measure"], int(r["bucket"]))] = int(r["n"])
        c.execute("SELECT * FROM dash_level_duration WHERE n <> 0")
        for r in c.fetchall():
            f.level_durations[(r["level"], r["measure"], int(r["bucket"]))] = int(r["n"])
        c.execute("SELECT * FROM dash_grievance")
        for r in c.fetchall():
            f.rows[UUID(r["grievance_id"])] = {
                k: (int(r[k]) if k in INTEGER_COLUMNS and r[k] is not None else r[k])
                for k in (
                    "version",
                    "status",
                    "unit_id",
                    "level",
                    "claimant",
                    "rating",
                    "reopen_count",
                    "due_at",
                    "updated_at",
                    "street_id",
                    "community_id",
                    "grid_id",
                )
            }
    return f


def assert_same(expected: Figures, actual: Figures) -> None:
    assert actual.rows == expected.rows
    assert actual.status == +expected.status
    assert actual.categories == +expected.categories
    for name in ("months", "days", "points", "settled"):
        want = {k: +v for k, v in getattr(expected, name).items() if +v}
        got = {k: +v for k, v in getattr(actual, name).items() if +v}
        assert got == want, name
    assert actual.durations == +expected.durations
    assert actual.level_durations == +expected.level_durations
    assert actual.due_days == +expected.due_days
