"""Projection benchmark: rebuild rate beside the store's raw read rate, dashboard query latency with many
grievances stored, and lag from a stored event to the views under a steady command rate.

Run: `.venv/bin/python -m bench.projections --grievances 200000` (each grievance has five events).
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from adapters.composition import build_chain, build_projection, build_rebuild_parts, rebuild_processes
from adapters.settings import Settings
from bench.engine_throughput import (
    CHART,
    HOUSEHOLDS,
    machine_speed,
    percentile,
    postgres_url,
    sqlite_url,
    store_in_batches,
)
from bench.operator import OPERATOR
from engine.commands import Claim, Command, Rate, RecordProgress, Reply, Report, Resident, Resolve
from engine.grievance import Category, ClaimMode, Rating
from projections.dashboard.queries import Dashboard

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=400)


def resident_of(i: int) -> Resident | None:
    """Whom grievance i's report names, as bench/traffic.py's mix does: no one for one in five; for three in ten,
    a resident who reported an earlier grievance; else one new to the chain."""
    if i % 5 == 4:
        return None
    who = i // 3 if i % 10 in (0, 3, 6) else i
    return Resident(resident_id=f"res-{who}", name="王秀英", phone=f"139{who % 10**8:08d}")


def lifecycle(i: int) -> list[Command]:
    """Five events: reported, claimed, progress, resolved (or replied), rated; one grievance in a thousand
    is still claimed, past its limit, with two more notes of progress instead, so lists have a rare status.
    A dissatisfied rating (a third) reopens the grievance, which then waits, overdue."""
    gid, unit, t = uuid4(), HOUSEHOLDS[i % len(HOUSEHOLDS)], T0 + timedelta(seconds=i % 1_000_000 * 30)
    member = f"m{i % 900}"
    started: list[Command] = [
        Report(
            grievance_id=gid,
            command_id=f"a{i}",
            actor="w",
            occurred_at=t,
            unit_id=unit,
            category=Category.OTHER,
            title="t",
            description="d",
            resident=resident_of(i),
        ),
        Claim(
            grievance_id=gid,
            command_id=f"b{i}",
            actor="m",
            occurred_at=t + timedelta(hours=2),
            unit_id=unit,
            mode=ClaimMode.MEMBER,
            claimant=member,
        ),
        RecordProgress(
            grievance_id=gid, command_id=f"c{i}", actor=member, occurred_at=t + timedelta(hours=3), note="n"
        ),
    ]
    if i % 1000 == 999:
        return [
            *started,
            *(
                RecordProgress(
                    grievance_id=gid, command_id=f"{n}{i}", actor=member, occurred_at=t + timedelta(hours=h), note="n"
                )
                for n, h in (("d", 5), ("e", 6))
            ),
        ]
    closed_at = t + timedelta(hours=5 + i % 40)
    close: Command = (
        Resolve(grievance_id=gid, command_id=f"d{i}", actor=member, occurred_at=closed_at, summary="done")
        if i % 7
        else Reply(grievance_id=gid, command_id=f"d{i}", actor=member, occurred_at=closed_at, reason="r", answer="a")
    )
    rating = (Rating.SATISFIED, Rating.BASICALLY_SATISFIED, Rating.DISSATISFIED)[i % 3]
    return [
        *started,
        close,
        Rate(
            grievance_id=gid,
            command_id=f"e{i}",
            actor="office-zhao",
            occurred_at=t + timedelta(hours=50),
            rating=rating,
        ),
    ]


def dashboard_questions(dash: Dashboard) -> dict[str, Callable[[], Any]]:
    """The questions supervisors ask of the views, by name: every query the dashboard and its list make."""
    street = CHART.children_of("lg")[0].id
    return {
        "headline": lambda: dash.headline(now=NOW),
        "counts by unit": lambda: dash.counts(),
        "rates by unit": lambda: dash.rates(from_month="2025-01", to_month="2026-12"),
        "funnel (settled by level)": lambda: dash.settled_by_level(),
        "daily, a street, a month": lambda: dash.daily(street, from_day="2025-03-01", to_day="2025-03-31"),
        "durations": lambda: dash.durations(),
        "durations by level": lambda: dash.durations_by_level(),
        "overdue queue of a street": lambda: dash.overdue_queue(street, now=NOW),
        "most overdue units": lambda: dash.most_overdue_units(now=NOW),
        "grievance list page, filtered": lambda: dash.grievances(street, now=NOW, status="resolved"),
        "grievance list page, whole chart": lambda: dash.grievances(now=NOW),
        "list page, whole chart, a rare status (0.1 %)": lambda: dash.grievances(now=NOW, status="claimed"),
        "list page, a street, overdue (a third)": lambda: dash.grievances(street, now=NOW, overdue=True),
        "list page, whole chart, a level none is at": lambda: dash.grievances(now=NOW, level="leading_group"),
        "points ledger": lambda: dash.points(),
    }


def raw_read_rate(chain: Any, page: int) -> float:
    """Notifications/s read from the store in pages by its own read, the one a rebuild makes, without decoding them: the
    ceiling for a rebuild."""
    started, position, total = time.perf_counter(), 0, 0
    while rows := chain.recorder.select_notifications(start=position + 1, limit=page):
        total += len(rows)
        position = rows[-1].id
    return total / (time.perf_counter() - started)


def timed(samples: int, query: Callable[[], Any]) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        query()
        times.append((time.perf_counter() - t) * 1000)
    return percentile(times, 50), percentile(times, 99)


def lag(settings: Settings, rate: int, seconds: int) -> tuple[float, float]:
    """Commands at `rate`/s for `seconds` while a runner follows: p50/p99 ms from commit to the views."""
    chain = build_chain(settings)
    projection = build_projection(settings, chain, page_size=2000)
    projection.catch_up()
    stored_at: deque[tuple[int, float]] = deque()  # (notification id, when committed), in order
    lags: list[float] = []
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            if projection.step() == 0:
                stop.wait(0.01)
                continue
            done = time.perf_counter()
            position = projection.views.position()
            while stored_at and stored_at[0][0] <= position:
                lags.append((done - stored_at.popleft()[1]) * 1000)

    runner = threading.Thread(target=follow)
    runner.start()
    tick, i = 0.05, 10_000_000
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        commands: list[Command] = []
        while len(commands) < rate * tick:
            commands += lifecycle(i)[:2]
            i += 1
        chain.execute(commands, principal=OPERATOR)
        stored_at.append((chain.recorder.max_notification_id() or 0, time.perf_counter()))
        time.sleep(max(0.0, tick - (time.perf_counter() - started)))
    time.sleep(1)
    stop.set()
    runner.join()
    chain.close()
    return percentile(lags, 50), percentile(lags, 99)


def measure(label: str, url: str, grievances: int, page: int, lag_seconds: int) -> str:
    settings = Settings(database_url=url, durability="normal")
    chain = build_chain(settings)
    try:
        started = time.perf_counter()
        store_in_batches(chain, map(lifecycle, range(grievances)))
        populate_rate = grievances * 5 / (time.perf_counter() - started)
        projection = build_projection(settings, chain, page_size=page)
        raw = raw_read_rate(chain, page)
        started = time.perf_counter()
        events = projection.rebuild(
            elsewhere=build_rebuild_parts(settings, rebuild_processes(), page_size=page)
        )  # as the CLI's
        rebuild = events / (time.perf_counter() - started)
        latencies = {name: timed(200, q) for name, q in dashboard_questions(Dashboard(projection.views, CHART)).items()}
    finally:
        chain.close()
    lag_p50, lag_p99 = lag(settings, 1000, lag_seconds)
    lines = [
        f"| {label} | {events:,} events, {grievances:,} grievances | store {populate_rate:,.0f}/s | "
        f"raw read {raw:,.0f}/s | rebuild {rebuild:,.0f}/s ({rebuild / raw:.2f} of raw) | "
        f"lag at 1,000 commands/s p50 {lag_p50:,.0f} ms, p99 {lag_p99:,.0f} ms |"
    ]
    lines += [f"| {label} | query: {name} | p50 {p50:.2f} ms | p99 {p99:.2f} ms | | |"
              for name, (p50, p99) in latencies.items()]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grievances", type=int, default=200_000, help="grievances stored (five events each)")
    parser.add_argument("--page", type=int, default=20_000, help="events a rebuild transaction (the CLI's default)")
    parser.add_argument("--lag-seconds", type=int, default=30, help="how long the steady-rate lag run lasts")
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    rows = []
    if "sqlite" in args.stores:
        with sqlite_url() as url:
            rows.append(measure("SQLite", url, args.grievances, args.page, args.lag_seconds))
    if "postgres" in args.stores:
        with postgres_url() as url:
            rows.append(measure("PostgreSQL", url, args.grievances, args.page, args.lag_seconds))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(f"command: python -m bench.projections --grievances {args.grievances} --page {args.page} "
          f"--lag-seconds {args.lag_seconds}")  # fmt: skip
    print("| store | what | | | | |\n|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
