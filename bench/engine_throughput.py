"""Engine benchmark on the traffic the chain meets (bench/traffic.py: most reports name a resident, some residents
report again): batched and mixed command handling with reads beside, single-command latency and commands on long
histories, on SQLite and PostgreSQL, beside the raw insert ceiling of the same database.
Run: `.venv/bin/python -m bench.engine_throughput`.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import timeit
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg

from adapters.composition import build_chain
from adapters.settings import Settings
from bench.operator import OPERATOR
from bench.traffic import CHART, HOUSEHOLDS, Traffic
from engine.commands import Command
from engine.service_chain import ServiceChain

__all__ = ["CHART", "HOUSEHOLDS", "percentile", "postgres_url", "sqlite_url", "store_in_batches"]
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
    """One run in a fresh database, through the composition root (so residents' data is sealed, as in service):
    batched and mixed rates with reads beside, single-command latency, commands on long histories, the ceiling."""
    chain = build_chain(Settings(database_url=url, durability=durability))
    traffic = Traffic()
    try:
        commands = traffic.report_and_claim(grievances, T0)
        started = time.perf_counter()
        for i in range(0, len(commands), batch):
            chain.execute(commands[i : i + batch], principal=OPERATOR)
        batched = len(commands) / (time.perf_counter() - started)

        # The day's mix, with a supervisor's reader loading grievances beside the writer all the while.
        mixed = traffic.mixed(grievances, T0 + timedelta(days=1))
        reads: list[float] = []
        writing = threading.Event()
        writing.set()

        def read_beside() -> None:
            picker = random.Random(1)
            while writing.is_set():
                gid = picker.choice(traffic.claimed)[0]
                t = time.perf_counter()
                chain.grievance(gid)
                reads.append((time.perf_counter() - t) * 1000)

        reader = threading.Thread(target=read_beside)
        reader.start()
        started = time.perf_counter()
        for i in range(0, len(mixed), batch):
            chain.execute(mixed[i : i + batch], principal=OPERATOR)
        mixed_rate = len(mixed) / (time.perf_counter() - started)
        writing.clear()
        reader.join()

        latencies = []
        for command in traffic.report_and_claim(1000, T0 + timedelta(days=2)):
            t = time.perf_counter()
            chain.apply(command, principal=OPERATOR)
            latencies.append((time.perf_counter() - t) * 1000)
        figures = {
            "batched": batched,
            "mixed": mixed_rate,
            "read_p99": percentile(reads, 99),
            "single_p50": percentile(latencies, 50),
            "single_p99": percentile(latencies, 99),
        }
        figures.update(on_long_histories(chain, traffic))
        figures["ceiling"] = raw()
    finally:
        chain.close()
    return figures


HISTORIES = (10, 1000, 5000)


def on_long_histories(chain: ServiceChain, traffic: Traffic) -> dict[str, float]:
    """p50 ms of a note of progress on a grievance of 10, 1,000 and 5,000 events: as the process held it last
    (warm), and read from the store alone (cold: a process just started, or its cache full; it starts from the
    grievance's latest snapshot where the chain takes them)."""
    figures: dict[str, float] = {}
    at = T0 + timedelta(days=3)
    for length in HISTORIES:
        (gid, member), *_ = traffic.claimed
        report = traffic.report(at)
        chain.execute([report, traffic.claim(report.grievance_id, report.unit_id, member, at)], principal=OPERATOR)
        gid = report.grievance_id
        notes = [traffic.progress(gid, member, at) for _ in range(length - 2)]
        for i in range(0, len(notes), 1000):
            chain.execute(notes[i : i + 1000], principal=OPERATOR)
        warm: list[float] = []
        cold: list[float] = []
        for n in range(240):
            held = getattr(chain, "decided", None)
            if n % 6 == 0 and held is not None:
                held.clear()
            note = traffic.progress(gid, member, at)
            t = time.perf_counter()
            chain.apply(note, principal=OPERATOR)
            (cold if n % 6 == 0 else warm).append((time.perf_counter() - t) * 1000)
        figures[f"warm_{length}"] = statistics.median(warm)
        figures[f"cold_{length}"] = statistics.median(cold)
    return figures


def row(label: str, durability: str, runs: list[dict[str, float]]) -> str:
    """A table row of medians over the runs, with the range of the batched rate."""
    m = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    low, high = min(r["batched"] for r in runs), max(r["batched"] for r in runs)
    return (
        f"| {label} | {durability} | {m['batched']:,.0f} ({low:,.0f}–{high:,.0f}) | {m['ceiling']:,.0f} | "
        f"{m['batched'] / m['ceiling']:.2f} | {m['mixed']:,.0f} ({m['mixed'] / m['ceiling']:.2f}) | "
        f"{m['read_p99']:.2f} | {m['single_p50']:.2f} / {m['single_p99']:.2f} |"
    )


def history_row(label: str, durability: str, runs: list[dict[str, float]]) -> str:
    """A table row of the median command latencies by length of history, warm and cold."""
    m = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    warm = " / ".join(f"{m[f'warm_{n}']:.2f}" for n in HISTORIES)
    cold = " / ".join(f"{m[f'cold_{n}']:.2f}" for n in HISTORIES)
    return (
        f"| {label} | {durability} | {warm} | {m['warm_5000'] / m['warm_10']:.2f} | {cold} | "
        f"{m['cold_5000'] / m['cold_10']:.2f} | {m['ceiling']:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grievances", type=int, default=10_000, help="grievances in the batched run (2 events each)")
    parser.add_argument("--batch", type=int, default=1000, help="commands per batch (one transaction)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, each in a fresh database; medians shown")
    parser.add_argument("--stores", default="sqlite,postgres", help="which stores to run, comma-separated")
    args = parser.parse_args()
    events = args.grievances * 2
    rows, histories = [], []
    stores = args.stores.split(",")
    for label, durability, sync in (("SQLite", "full", "FULL"), ("SQLite", "normal", "NORMAL"),
                                    ("PostgreSQL", "full", None), ("PostgreSQL", "normal", None)):  # fmt: skip
        if ("postgres" if sync is None else "sqlite") not in stores:
            continue
        runs = []
        for _ in range(args.repeats):
            if sync is None:
                with postgres_url() as url:
                    runs.append(measure(url, durability, args.grievances, args.batch,
                                        functools.partial(raw_postgres, url, events)))  # fmt: skip
            else:
                with sqlite_url() as url:
                    runs.append(measure(url, durability, args.grievances, args.batch,
                                        functools.partial(raw_sqlite, url, events, sync)))  # fmt: skip
        rows.append(row(label, durability, runs))
        histories.append(history_row(label, durability, runs))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(
        f"command: python -m bench.engine_throughput --grievances {args.grievances} --batch {args.batch} "
        f"--repeats {args.repeats} --stores {args.stores}"
    )
    print(
        "| store | durability | batched events/s, median (range) | raw insert rows/s | ratio "
        "| mixed commands/s, reads beside (ratio) | read p99 ms beside | single command p50 / p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for line in rows:
        print(line)
    print()
    print(
        "| store | durability | warm p50 ms at 10 / 1,000 / 5,000 events | 5,000 ÷ 10 "
        "| cold p50 ms at 10 / 1,000 / 5,000 | 5,000 ÷ 10 | raw insert rows/s, same run |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in histories:
        print(line)


if __name__ == "__main__":
    main()
