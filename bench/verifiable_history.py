"""The verifiable history's costs (issue 16): batched writes with the Merkle log against the same store with its
log appends skipped, beside the raw insert; `prove` and `checkpoint` at 1M and 5M events; `verify --all
--checkpoint` at 1M. Stores are filled through the event store's own insert path (events, chained hashes, the
log's leaves and subtrees, one transaction a batch) with event-sized rows, as the engine stores them.
Run: `.venv/bin/python -m bench.verifiable_history --sizes 1000000 5000000`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import StoredEvent

from adapters.audit.checkpoint import new_signing_key
from adapters.audit.transparency import Transparency
from adapters.composition import build_chain, build_transparency
from adapters.settings import Settings
from bench.engine_throughput import STATE, T0, machine_speed, percentile, postgres_url, raw_postgres, raw_sqlite
from bench.operator import OPERATOR
from bench.traffic import Traffic
from engine.service_chain import ServiceChain

TOPICS = ("engine.grievance:Grievance.Reported", "engine.grievance:Grievance.Claimed",
          "engine.grievance:Grievance.ProgressRecorded", "engine.grievance:Grievance.Resolved")  # fmt: skip
BATCH = 2000
# Events of one grievance: a report, a claim, a note and a close, as most of the demo's are.
PER_GRIEVANCE = 4


def _batches(events: int, *, interleave: int = 250) -> Iterator[list[StoredEvent]]:
    """Batches of stored events: `interleave` grievances at a time, their events mixed as a day's traffic mixes
    them (a grievance's next event lands in a later batch than its report, most of the time)."""
    made = 0
    batch: list[StoredEvent] = []
    while made < events:
        ids = [uuid4() for _ in range(interleave)]
        for version in range(1, PER_GRIEVANCE + 1):
            for gid in ids:
                if made >= events:
                    break
                batch.append(StoredEvent(gid, version, TOPICS[version - 1], STATE))
                made += 1
                if len(batch) == BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


@contextmanager
def opened(url: str, durability: str = "normal") -> Iterator[ServiceChain]:
    chain = build_chain(Settings(database_url=url, durability=durability))
    try:
        yield chain
    finally:
        chain.close()


def skip_the_log(recorder: Any) -> None:
    """Have the recorder count leaf indexes but read and write no tile: the store as it was before the log."""
    counter = [0]

    def first_index(n: int) -> int:
        counter[0] += n
        return counter[0] - n

    if hasattr(recorder.log, "start_append"):  # PostgreSQL: the frontier is asked for in the pipeline
        recorder.log.start_append = lambda c: c.execute("SELECT 1")
        recorder.log.append = lambda c, hashes: (c.fetchall() and first_index(len(hashes)), {})
        recorder.log.write = lambda c, tiles: None
    else:
        recorder.log.append = lambda c, hashes: first_index(len(hashes))


def fill(chain: ServiceChain, events: int, *, log: bool = True) -> float:
    """Store `events` events through the recorder; events/s. Without `log`, the log's appends are skipped (the
    leaf index still counted), so the difference is what the log costs the batch."""
    recorder: Any = chain.recorder
    if not log:
        skip_the_log(recorder)
    started = time.perf_counter()
    for batch in _batches(events):
        recorder.insert_events(batch)
    return events / (time.perf_counter() - started)


def a_grievance(chain: ServiceChain) -> UUID:
    """A grievance near the middle of the store: its proofs are as long as any."""
    recorder: Any = chain.recorder
    (notification,) = recorder.select_notifications(max(1, recorder.max_notification_id() // 2), 1)
    return UUID(str(notification.originator_id))


def timed(runs: int, f: Any) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        f()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def batched_commands(chain: ServiceChain, grievances: int, *, log: bool) -> float:
    """Events/s of batched commands (bench/traffic.py's reports, most naming a resident, and claims), in batches
    of 1,000, as bench/engine_throughput.py's "batched" figure."""
    if not log:
        skip_the_log(chain.recorder)
    commands = Traffic().report_and_claim(grievances, T0)
    started = time.perf_counter()
    for i in range(0, len(commands), 1000):
        chain.execute(commands[i : i + 1000], principal=OPERATOR)
    return len(commands) / (time.perf_counter() - started)


def writes(url_of: Any, raw: Any, events: int, label: str) -> None:
    """Batched write events/s with the log and without, alternately (three rounds, medians), beside the raw
    insert: through the recorder alone, and as batched commands through the engine."""
    ceiling = raw(events)
    ways: list[tuple[str, Callable[[ServiceChain, bool], float]]] = [
        ("recorder", lambda c, log: fill(c, events, log=log)),
        ("commands", lambda c, log: batched_commands(c, events // 2, log=log)),
    ]
    for path, write in ways:
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _round in range(3):
            for log in (False, True):
                with url_of() as url, opened(url) as chain:
                    rates[log].append(write(chain, log))
        with_log, without = statistics.median(rates[True]), statistics.median(rates[False])
        print(f"| {label} | {path} | {events:,} | {without:,.0f} ({without / ceiling:.2f}) | {with_log:,.0f} "
              f"({with_log / ceiling:.2f}) | {with_log / without - 1:+.1%} | {ceiling:,.0f} |", flush=True)  # fmt: skip


def at_scale(url: str, events: int, label: str, key: Path, verify_all: bool) -> None:
    with opened(url) as chain:
        started = time.perf_counter()
        rate = fill(chain, events)
        filled = time.perf_counter() - started
        if url.startswith("postgresql"):
            # As autovacuum would have by then: without statistics for the tables just grown, the planner's
            # guesses made a proof's p99 ten times slower (41 ms against 4.2 ms at 3M events).
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        transparency: Transparency = build_transparency(chain)
        signer = new_signing_key(key, "bench.example/log")
        checkpoint_ms = timed(20, lambda: transparency.checkpoint(signer))
        signed = transparency.checkpoint(signer)
        gids = [a_grievance(chain)]
        recorder: Any = chain.recorder
        top = recorder.max_notification_id()
        for position in (1, top // 4, top - 10):
            (n,) = recorder.select_notifications(max(1, position), 1)
            gids.append(UUID(str(n.originator_id)))
        prove_ms: list[float] = []
        for gid in gids:
            prove_ms += timed(50, lambda gid=gid: transparency.prove(gid, signed.checkpoint))
        line = (f"| {label} | {events:,} | {filled:.0f} s ({rate:,.0f} events/s) | {percentile(prove_ms, 50):.2f} / "
                f"{percentile(prove_ms, 99):.2f} | {percentile(checkpoint_ms, 50):.2f} / "
                f"{max(checkpoint_ms):.2f} |")  # fmt: skip
        if verify_all:
            started = time.perf_counter()
            verdict = transparency.verify_all(signed.checkpoint)
            seconds = time.perf_counter() - started
            assert not verdict.findings, verdict.findings
            line += f" {seconds:.1f} s ({events / seconds:,.0f} events/s) |"
        else:
            line += " — |"
        print(line, flush=True)


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield f"sqlite:///{d}/bench.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-events", type=int, default=100_000, help="0: no write figures")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000])
    parser.add_argument("--verify-up-to", type=int, default=1_000_000, help="verify --all at sizes up to this")
    parser.add_argument("--stores", nargs="*", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(
        "\n| store | path | events | without the log, events/s (ratio to raw) | with the log (ratio) | difference "
        "| raw rows/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for store in args.stores if args.write_events else ():
        if store == "sqlite":
            with sqlite_url() as raw_url:
                writes(sqlite_url, lambda n, u=raw_url: raw_sqlite(u, n, "NORMAL"), args.write_events, "SQLite")
        else:
            with postgres_url() as raw_url:
                writes(postgres_url, lambda n, u=raw_url: raw_postgres(u, n), args.write_events, "PostgreSQL")
    print("\n| store | events | filled in | prove p50 / p99 ms | checkpoint p50 / max ms | verify --all --checkpoint |")
    print("|---|---|---|---|---|---|")
    for store in args.stores:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as keys:
                url_of = sqlite_url if store == "sqlite" else postgres_url
                with url_of() as url:
                    at_scale(url, size, "SQLite" if store == "sqlite" else "PostgreSQL", Path(keys) / "log.key",
                             size <= args.verify_up_to)  # fmt: skip


if __name__ == "__main__":
    main()
