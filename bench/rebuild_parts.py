"""A rebuild of the dashboard's views in one process and in several (`projections rebuild --processes`), each
beside the same store's raw read a moment before, alternated on one store of bulk-stored grievances.

Run: `.venv/bin/python -m bench.rebuild_parts --store sqlite` (or `--store postgres`).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from adapters.composition import build_chain, build_projection, build_rebuild_parts, rebuild_processes
from adapters.settings import Settings
from bench.engine_throughput import machine_speed, postgres_url, sqlite_url
from bench.projections import raw_read_rate
from bench.views_at_scale import bulk_store


def measure(url: str, grievances: int, rounds: int, processes: list[int], page: int) -> None:
    settings = Settings(database_url=url, durability="normal", decided_cache_size=0)
    chain = build_chain(settings)
    try:
        bulk_store(chain, url, 0, grievances)
        print(
            "| round | processes | events | raw read rows/s | rebuild events/s | ratio | this process's CPU, us/event |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in range(1, rounds + 1):
            for n in processes:
                projection = build_projection(settings, chain, page_size=page)
                raw = raw_read_rate(chain, page)
                started, cpu = time.perf_counter(), time.process_time()
                events = projection.rebuild(elsewhere=build_rebuild_parts(settings, n, page_size=page))
                rate = events / (time.perf_counter() - started)
                print(f"| {r} | {n} | {events:,} | {raw:,.0f} | {rate:,.0f} | {rate / raw:.2f} | "
                      f"{(time.process_time() - cpu) / events * 1e6:.1f} |", flush=True)  # fmt: skip
    finally:
        chain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--grievances", type=int, default=200_000, help="about 5.3 events each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", default=f"1,{rebuild_processes()}", help="comma-separated, alternated")
    parser.add_argument("--page", type=int, default=20_000, help="events a transaction (the CLI's default)")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{machine_speed()}")  # fmt: skip
    print(f"command: python -m bench.rebuild_parts --store {args.store} --grievances {args.grievances} "
          f"--rounds {args.rounds} --processes {args.processes}")  # fmt: skip
    processes = [int(n) for n in args.processes.split(",")]
    with sqlite_url() if args.store == "sqlite" else postgres_url() as url:
        measure(url, args.grievances, args.rounds, processes, args.page)


if __name__ == "__main__":
    main()
