"""Engine benchmark: batched command handling, single-command latency and aggregate loading, on SQLite and
PostgreSQL, beside the raw insert ceiling of the same database. Run: `.venv/bin/python -m bench.engine_throughput`.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg

from adapters.settings import SHIPPED_CHART, Settings
from adapters.storage.chart_file import load_chart
from bench.operator import OPERATOR
from engine.commands import Claim, Command, RecordProgress, Report
from engine.grievance import Category, Channel, ClaimMode
from engine.service_chain import ServiceChain

CHART = load_chart(SHIPPED_CHART)
HOUSEHOLDS = [u.id for u in CHART if u.level == "member_household"]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("GRIEVANCE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STATE = b'{"timestamp":"2026-01-05T09:00:00Z","actor":"worker-li","occurred_at":"2026-01-05T09:00:00Z",' + b"x" * 250


def store_in_batches(
    chain: ServiceChain, grievances: Iterable[list[Command]], *, size: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> None:  # fmt: skip
    """Execute each grievance's commands in batches of about `size` commands, a grievance's never split; after
    each batch, `on_batch` gets how many grievances are stored."""
    batch: list[Command] = []
    done = 0
    for commands in grievances:
        batch += commands
        done += 1
        if len(batch) >= size:
            chain.execute(batch, principal=OPERATOR)
            batch = []
            if on_batch:
                on_batch(done)
    if batch:
        chain.execute(batch, principal=OPERATOR)
        if on_batch:
            on_batch(done)


def report_and_claim(n: int) -> list[Command]:
    """n grievances reported and claimed: 2n commands, 2n events."""
    commands: list[Command] = []
    for i in range(n):
        gid, unit = uuid4(), HOUSEHOLDS[i % len(HOUSEHOLDS)]
        commands.append(
            Report(
                grievance_id=gid,
                command_id=f"r{i}",
                actor="worker-li",
                occurred_at=T0,
                unit_id=unit,
                category=Category.OTHER,
                title="Broken lamp",
                description="Stairwell 2, since Monday.",
            )
        )
        commands.append(
            Claim(
                grievance_id=gid,
                command_id=f"c{i}",
                actor="member-wang",
                occurred_at=T0,
                unit_id=unit,
                mode=ClaimMode.MEMBER,
                claimant="member-wang",
            )
        )
    return commands


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def machine_speed() -> str:
    """How fast this machine runs plain Python right now: its speed drifts up to 3x between runs here, so a
    run's figures are read beside this (and beside the raw rates the benchmarks measure in the same run)."""
    best = min(timeit.repeat("sum(range(1_000_000))", number=20, repeat=5)) / 20
    return f"sum(range(10**6)) best of 5: {best * 1000:.1f} ms"


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield f"sqlite:///{d}/bench.db"


@contextmanager
def postgres_url() -> Iterator[str]:
    name = f"grievance_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def raw_sqlite(url: str, rows: int, synchronous: str) -> float:
    """Rows/s for sqlite3 executemany of event-sized rows into a fresh table, one transaction a batch."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///") + ".raw", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE e (id TEXT, v INTEGER, topic TEXT, state BLOB, PRIMARY KEY (id, v))")
    data = [(str(uuid4()), 1, "engine.grievance:Grievance.Reported", STATE) for _ in range(rows)]
    started = time.perf_counter()
    for i in range(0, rows, 1000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", data[i : i + 1000])
        conn.execute("COMMIT")
    return rows / (time.perf_counter() - started)


def raw_postgres(url: str, rows: int) -> float:
    """Rows/s for psycopg COPY of event-sized rows into a fresh table, one transaction a batch."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE e (id uuid, v int, topic text, state bytea, PRIMARY KEY (id, v))")
        conn.commit()
        data = [(uuid4(), 1, "engine.grievance:Grievance.Reported", STATE) for _ in range(rows)]
        started = time.perf_counter()
        for i in range(0, rows, 1000):
            with conn.cursor().copy("COPY e (id, v, topic, state) FROM STDIN") as copy:
                for row in data[i : i + 1000]:
                    copy.write_row(row)
            conn.commit()
        return rows / (time.perf_counter() - started)


def measure(url: str, durability: str, grievances: int, batch: int, raw: Callable[[], float]) -> dict[str, float]:
    """One run in a fresh database: batched rate, single-command and load latencies, and the raw ceiling."""
    chain = ServiceChain(Settings(database_url=url, durability=durability).store_env(), chart=CHART)
    try:
        commands = report_and_claim(grievances)
        started = time.perf_counter()
        for i in range(0, len(commands), batch):
            chain.execute(commands[i : i + batch], principal=OPERATOR)
        batched = len(commands) / (time.perf_counter() - started)

        latencies = []
        for command in report_and_claim(1000):
            t = time.perf_counter()
            chain.apply(command, principal=OPERATOR)
            latencies.append((time.perf_counter() - t) * 1000)

        gid, unit = uuid4(), HOUSEHOLDS[0]
        chain.apply(
            Report(
                grievance_id=gid,
                command_id="l0",
                actor="w",
                occurred_at=T0,
                unit_id=unit,
                category=Category.OTHER,
                channel=Channel.APP,
                title="t",
                description="d",
            ),
            principal=OPERATOR,
        )
        chain.apply(
            Claim(
                grievance_id=gid,
                command_id="l1",
                actor="m",
                occurred_at=T0,
                unit_id=unit,
                mode=ClaimMode.MEMBER,
                claimant="m",
            ),
            principal=OPERATOR,
        )
        chain.execute(
            [
                RecordProgress(
                    grievance_id=gid, command_id=f"p{i}", actor="m", occurred_at=T0 + timedelta(minutes=i), note="n"
                )
                for i in range(48)
            ],
            principal=OPERATOR,
        )
        assert chain.grievance(gid).version == 50
        loads = []
        for _ in range(2000):
            t = time.perf_counter()
            chain.grievance(gid)
            loads.append((time.perf_counter() - t) * 1000)
        ceiling = raw()
    finally:
        chain.close()
    return {
        "batched": batched,
        "ceiling": ceiling,
        "single_p50": percentile(latencies, 50),
        "single_p99": percentile(latencies, 99),
        "load_p50": percentile(loads, 50),
        "load_p99": percentile(loads, 99),
    }


def row(label: str, durability: str, runs: list[dict[str, float]]) -> str:
    """A table row of medians over the runs, with the range of the batched rate."""
    m = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    low, high = min(r["batched"] for r in runs), max(r["batched"] for r in runs)
    return (
        f"| {label} | {durability} | {m['batched']:,.0f} ({low:,.0f}–{high:,.0f}) | {m['ceiling']:,.0f} | "
        f"{m['batched'] / m['ceiling']:.2f} | {m['single_p50']:.2f} / {m['single_p99']:.2f} | "
        f"{m['load_p50']:.3f} / {m['load_p99']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grievances", type=int, default=10_000, help="grievances in the batched run (2 events each)")
    parser.add_argument("--batch", type=int, default=1000, help="commands per batch (one transaction)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, each in a fresh database; medians shown")
    args = parser.parse_args()
    events = args.grievances * 2
    rows = []
    for durability, sync in (("full", "FULL"), ("normal", "NORMAL")):
        runs = []
        for _ in range(args.repeats):
            with sqlite_url() as url:
                raw = functools.partial(raw_sqlite, url, events, sync)
                runs.append(measure(url, durability, args.grievances, args.batch, raw))
        rows.append(row("SQLite", durability, runs))
    for durability in ("full", "normal"):
        runs = []
        for _ in range(args.repeats):
            with postgres_url() as url:
                raw = functools.partial(raw_postgres, url, events)
                runs.append(measure(url, durability, args.grievances, args.batch, raw))
        rows.append(row("PostgreSQL", durability, runs))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(
        f"command: python -m bench.engine_throughput --grievances {args.grievances} --batch {args.batch} "
        f"--repeats {args.repeats}"
    )
    print(
        "| store | durability | batched events/s, median (range) | raw insert rows/s | ratio "
        "| single command p50 / p99 ms | load 50-event grievance p50 / p99 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
