"""How the read model's costs grow with the city: the rebuild beside the same run's raw read, and every dashboard
question's p50/p99, at each size asked (20k, 50k, 100k, 200k and 1M grievances by default), on PostgreSQL or SQLite.

Storing a million grievances through the application takes longer than the question needs: the events are decided
by the aggregate's own public methods, mapped by the chain's own mapper and bulk-copied into the store. The first
size's events get their log as a store from before the log does; later sizes' get none (nothing here audits them).
Run: `.venv/bin/python -m bench.views_at_scale --stores postgres`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import psycopg

from adapters.composition import build_chain, build_projection, build_rebuild_parts, rebuild_processes
from adapters.settings import Settings
from bench.engine_throughput import machine_speed, postgres_url, sqlite_url
from bench.projections import dashboard_questions, lifecycle, raw_read_rate, timed
from bench.traffic import CHART
from engine.commands import Claim, Command, Rate, RecordProgress, Reply, Report, Resolve
from engine.grievance import Grievance
from engine.levels import REPORTING_LEVELS
from engine.service_chain import ServiceChain
from projections.dashboard.queries import Dashboard


class _copier:  # noqa: N801 - a context manager read as a verb
    """Appends stored events to the events table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, url: str, table: str) -> None:
        self.url = url
        self.table = table

    def __enter__(self) -> Any:
        if self.url.startswith("sqlite"):
            import sqlite3

            self.conn: Any = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("PRAGMA synchronous=OFF")

            def copy_rows(stored: list[Any]) -> None:
                self.conn.execute("BEGIN")
                self.conn.executemany(
                    f"INSERT INTO {self.table} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
                    [(e.originator_id.hex, e.originator_version, e.topic, e.state) for e in stored],
                )
                self.conn.execute("COMMIT")

            return copy_rows
        self.conn = psycopg.connect(self.url)

        def copy_rows_pg(stored: list[Any]) -> None:
            with self.conn.cursor().copy(
                f"COPY {self.table} (originator_id, originator_version, topic, state) FROM STDIN"
            ) as copy:
                for e in stored:
                    copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
            self.conn.commit()

        return copy_rows_pg

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def measure(label: str, url: str, sizes: list[int], page: int, samples: int) -> list[str]:
    """Grow one store through `sizes`, measuring the rebuild and every question at each."""
    settings = Settings(database_url=url, durability="normal", decided_cache_size=0)  # a bulk load holds nothing
    chain = build_chain(settings)
    lines = []
    stored = 0
    try:
        for size in sizes:
            rate = bulk_store(chain, url, stored, size)
            stored = size
            projection = build_projection(settings, chain, page_size=page)
            raw = raw_read_rate(chain, page)
            started = time.perf_counter()
            events = projection.rebuild(
                elsewhere=build_rebuild_parts(settings, rebuild_processes(), page_size=page)
            )  # as the CLI's
            rebuild = events / (time.perf_counter() - started)
            dash = Dashboard(projection.views, CHART)
            latencies = {name: timed(samples, q) for name, q in dashboard_questions(dash).items()}
            worst = max(latencies.items(), key=lambda kv: kv[1][1])
            lines.append(
                f"| {label} | {size:,} grievances, {events:,} events | loaded {rate:,.0f} events/s | raw read "
                f"{raw:,.0f}/s | rebuild {rebuild:,.0f}/s ({rebuild / raw:.2f}) | slowest p99: {worst[0]} "
                f"{worst[1][1]:.2f} ms |"
            )
            lines += [f"| {label} | {size:,} | {name} | p50 {p50:.2f} ms | p99 {p99:.2f} ms | |"
                      for name, (p50, p99) in latencies.items()]  # fmt: skip
            print("\n".join(lines[-len(latencies) - 1 :]), flush=True)
    finally:
        chain.close()
    return lines


def bulk_store(chain: ServiceChain, url: str, stored: int, size: int) -> float:
    """Grow the store from `stored` grievances to `size`, five events each: events/s from deciding to stored. Each
    grievance's aggregate decides its commands (its rules included) through its public methods, with the chain's
    chart and limits; the chain stores nothing of it. A store grown from empty then has its log built, untimed."""
    started = time.perf_counter()
    mapper: Any = chain.mapper
    events_total = 0
    with _copier(url, chain.recorder.events_table_name) as copy_rows:  # type: ignore[attr-defined]
        for first in range(stored, size, 5000):
            grievances = [decided(chain, lifecycle(i)) for i in range(first, min(first + 5000, size))]
            rows, sealer = mapper.to_stored_events([e for g in grievances for e in g.collect_events()])
            if sealer is not None:
                sealer.store_keys()  # the residents' keys the rows are sealed under, as a batch stores them
            copy_rows(rows)
            events_total += len(rows)
    rate = events_total / max(time.perf_counter() - started, 1e-9)
    if stored == 0:
        # Events copied in without their log make a store from before the log, whose next opening builds it in one
        # transaction (9.6 s at 1M events on SQLite): here, rather than in a rebuild's part process, where it held
        # SQLite's write lock past the main process's lock timeout, and would be timed.
        build_chain(Settings(database_url=url, durability="normal", decided_cache_size=0)).close()
    return rate


def decided(chain: ServiceChain, commands: list[Command]) -> Grievance:
    """A new grievance's lifecycle decided by the aggregate, as an operator's historic import has it decided: each
    command one call of the aggregate's, at the command's own time."""
    report, *rest = commands
    assert isinstance(report, Report)
    resident = report.resident
    g = Grievance.report(
        report.grievance_id, unit=chain.chart.unit_at(report.unit_id, REPORTING_LEVELS), category=report.category,
        channel=report.channel, title=report.title, description=report.description,
        resident_id=resident.resident_id if resident else None, resident_name=resident.name if resident else None,
        resident_phone=resident.phone if resident else None, limits=chain.limits, actor=report.actor,
        at=report.occurred_at, command_id=report.command_id,
    )  # fmt: skip
    for c in rest:
        common: dict[str, Any] = {"actor": c.actor, "at": c.occurred_at, "command_id": c.command_id}
        if isinstance(c, Claim):
            g.claim(unit_id=c.unit_id, mode=c.mode, claimant=c.claimant, limits=chain.limits, **common)
        elif isinstance(c, RecordProgress):
            g.record_progress(note=c.note, **common)
        elif isinstance(c, Resolve):
            g.resolve(summary=c.summary, **common)
        elif isinstance(c, Reply):
            g.reply(reason=c.reason, answer=c.answer, **common)
        elif isinstance(c, Rate):
            g.rate(rating=c.rating, comment=c.comment, limits=chain.limits, given_by=c.given_by, **common)
        else:
            raise TypeError(f"{c.kind} is not in the benchmark's lifecycles")
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20000,50000,100000,200000,1000000", help="grievances, comma-separated")
    parser.add_argument("--page", type=int, default=20_000, help="events a rebuild transaction (the CLI's default)")
    parser.add_argument("--samples", type=int, default=200, help="times each question is asked at each size")
    parser.add_argument("--stores", default="postgres")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(f"command: python -m bench.views_at_scale --sizes {args.sizes} --page {args.page} --samples {args.samples} "
          f"--stores {args.stores}")  # fmt: skip
    print("| store | size | what | | | |\n|---|---|---|---|---|---|", flush=True)
    if "postgres" in args.stores:
        with postgres_url() as url:
            measure("PostgreSQL", url, sizes, args.page, args.samples)
    if "sqlite" in args.stores:
        with sqlite_url() as url:
            measure("SQLite", url, sizes, args.page, args.samples)


if __name__ == "__main__":
    main()
