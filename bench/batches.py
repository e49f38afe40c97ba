"""Batched writes alone, for comparing two commits: reports naming residents and their claims (bench/traffic.py's
mix), in batches of 1,000 after a warm-up, with this process's CPU time an event beside the rate (the machine's
speed drifts between runs; CPU time drifts less). Run it alternately on each commit, several rounds:
`.venv/bin/python -m bench.batches --store sqlite --events 20000`.
"""

from __future__ import annotations

import argparse
import time

from adapters.composition import build_chain
from adapters.settings import Settings
from bench.engine_throughput import T0, postgres_url, sqlite_url
from bench.operator import OPERATOR
from bench.traffic import Traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000, help="events timed (two a grievance)")
    parser.add_argument("--warm", type=int, default=2_000, help="events stored first, untimed")
    parser.add_argument("--durability", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    with sqlite_url() if args.store == "sqlite" else postgres_url() as url:
        chain = build_chain(Settings(database_url=url, durability=args.durability))
        try:
            traffic = Traffic()
            warm = traffic.report_and_claim(args.warm // 2, T0)
            for i in range(0, len(warm), 1000):
                chain.execute(warm[i : i + 1000], principal=OPERATOR)
            commands = traffic.report_and_claim(args.events // 2, T0)
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(commands), 1000):
                chain.execute(commands[i : i + 1000], principal=OPERATOR)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            chain.close()
    print(f"{args.store} {args.durability}: {len(commands) / wall:,.0f} events/s, "
          f"{cpu / len(commands) * 1e6:.1f} µs of CPU an event")  # fmt: skip


if __name__ == "__main__":
    main()
