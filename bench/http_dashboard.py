"""HTTP benchmark: dashboard queries over HTTP with many grievances stored and many concurrent clients,
beside a static endpoint of the same server in the same run.

The store is filled through the engine (a fifth of the grievances with a whole life, the rest reported
and claimed) and projected; then `grievance serve --no-project` answers `wrk` (Debian's package:
`apt-get install wrk`): most connections cycle through the dashboard's queries for the leading group,
streets, communities and grids, the others ask `/api/v1/health`, at the same time, for a bounded time.

Run: `.venv/bin/python -m bench.http_dashboard --grievances 1000000 --connections 50 --seconds 30`
(the filled store is kept at --db and reused by the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from adapters.composition import build_chain, build_projection
from adapters.settings import Settings
from bench.engine_throughput import HOUSEHOLDS, store_in_batches
from bench.projections import resident_of
from engine.commands import Claim, Command, Rate, Report, Resolve
from engine.grievance import Category, ClaimMode, Rating
from engine.levels import Level
from tests.http_server import served

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
AT = "2026-01-01T00:00:00%2B08:00"
TOKEN = "bench-admin-token"


def commands_of(i: int) -> list[Command]:
    gid = UUID(int=i + 1)
    unit = HOUSEHOLDS[i % len(HOUSEHOLDS)]
    t = T0 + timedelta(seconds=i * 25)
    out: list[Command] = [
        Report(grievance_id=gid, command_id=f"a{i}", actor="w", occurred_at=t, unit_id=unit, category=Category.OTHER,
               title="t", description="d", resident=resident_of(i)),
        Claim(grievance_id=gid, command_id=f"b{i}", actor="m", occurred_at=t + timedelta(hours=2), unit_id=unit,
              mode=ClaimMode.MEMBER, claimant=f"m{i % 900}"),
    ]  # fmt: skip
    if i % 5 == 0:
        out += [
            Resolve(
                grievance_id=gid,
                command_id=f"c{i}",
                actor=f"m{i % 900}",
                occurred_at=t + timedelta(hours=9),
                summary="done",
            ),
            Rate(
                grievance_id=gid,
                command_id=f"d{i}",
                actor="office-zhao",  # the office's callback: the reporter may not rate their own work
                occurred_at=t + timedelta(hours=30),
                rating=Rating.SATISFIED,
            ),
        ]
    return out


def fill(url: str, grievances: int) -> float:
    """Store and project the grievances; seconds taken (0 if the store already holds them)."""
    settings = Settings(database_url=url, durability="off")
    chain = build_chain(settings)
    try:
        have = chain.recorder.max_notification_id() or 0
        started = time.perf_counter()
        if have == 0:
            before = [0]

            def progress(stored: int, every: int = 100_000) -> None:
                if stored // every > before[0] // every:
                    print(f"  stored {stored:,} grievances", flush=True)
                before[0] = stored

            store_in_batches(chain, map(commands_of, range(grievances)), on_batch=progress)
        projection = build_projection(settings, chain, page_size=5000)
        projection.catch_up(
            lambda n, pos: print(f"  projected to {pos:,}", flush=True) if pos % 500_000 < 5000 else None
        )
        return time.perf_counter() - started if have == 0 else 0.0
    finally:
        chain.close()


def query_paths(chart_units: dict[str, list[str]], rng: random.Random, count: int) -> list[str]:
    """Dashboard requests as supervisors' pages make them, for units at every reporting level."""
    paths = []
    for _ in range(count):
        level = rng.choice(["lg", "street", "community", "grid"])
        unit = "lg" if level == "lg" else rng.choice(chart_units[level])
        q = f"unit={unit}"
        paths.append(rng.choice([
            f"/api/v1/dashboard/headline?{q}&at={AT}",
            f"/api/v1/dashboard/rates?{q}&from=2025-01&to=2025-12",
            f"/api/v1/dashboard/counts?{q}",
            f"/api/v1/dashboard/funnel?{q}",
            f"/api/v1/dashboard/daily?{q}&from=2025-10-01&to=2025-12-31",
            f"/api/v1/dashboard/overdue?{q}&at={AT}&limit=20",
            f"/api/v1/grievances?{q}&limit=20",
            f"/api/v1/grievances?{q}&overdue=true&limit=20",
            f"/api/v1/grievances?{q}&status=resolved&limit=20",
            f"/api/v1/dashboard/durations?{q}",
        ]))  # fmt: skip
    return paths


LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer %s"})
end
"""


def wrk(base: str, script: Path | None, path: str, connections: int, seconds: int, out: Path) -> subprocess.Popen[str]:
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        args += ["-s", str(script)]
    return subprocess.Popen([*args, base + path], stdout=out.open("w"), stderr=subprocess.STDOUT, text=True)


def parse(report: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from wrk's --latency report."""

    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    found = {f"p{p}": ms(m.group(1)) for p in (50, 90, 99) if (m := re.search(rf"\s{p}%\s+(\S+)", report))}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
    found["rps"] = float(rate.group(1)) if rate else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    found["errors"] = float(errors.group(1)) if errors else 0.0
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grievances", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients in all")
    parser.add_argument("--static-connections", type=int, default=5, help="of those, how many ask /api/v1/health")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--no-cache", action="store_true", help="serve with GRIEVANCE_DASHBOARD_CACHE=off")
    parser.add_argument("--workers", type=int, default=1, help="server processes (grievance serve --workers)")
    parser.add_argument("--threads", type=int, default=40, help="threads a server process (grievance serve --threads)")
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "grievance-bench-http.db"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    url = f"sqlite:///{args.db}"
    fill_seconds = fill(url, args.grievances)
    chain = build_chain(Settings(database_url=url))
    levels = (("street", Level.STREET_COMMITTEE), ("community", Level.COMMUNITY), ("grid", Level.GRID_BRANCH))
    units = {name: [u.id for u in chain.chart if u.level is level] for name, level in levels}
    chain.close()
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    (work / "paths.txt").write_text("\n".join(query_paths(units, random.Random(7), 5000)) + "\n")
    (work / "queries.lua").write_text(LUA % (work / "paths.txt", TOKEN))
    tokens = {TOKEN: ("bench-admin", "admin", None)}
    if args.no_cache:
        os.environ["GRIEVANCE_DASHBOARD_CACHE"] = "off"
    with served(
        url, tokens, work / "serve.log", "--workers", str(args.workers), "--threads", str(args.threads), "--no-project"
    ) as base:
        # Warm the store's pages into memory once, as a long-running service has them.
        warm = wrk(base, work / "queries.lua", "/", 4, 10, work / "warm.txt")
        warm.wait()
        dynamic = wrk(base, work / "queries.lua", "/", args.connections - args.static_connections, args.seconds,
                      work / "dynamic.txt")  # fmt: skip
        static = wrk(base, None, "/api/v1/health", args.static_connections, args.seconds, work / "static.txt")
        dynamic.wait()
        static.wait()
    d, s = parse((work / "dynamic.txt").read_text()), parse((work / "static.txt").read_text())
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; files in {work}"
    )
    print(f"command: python -m bench.http_dashboard --grievances {args.grievances} --connections {args.connections} "
          f"--static-connections {args.static_connections} --seconds {args.seconds} --workers {args.workers} "
          f"--threads {args.threads}{' --no-cache' if args.no_cache else ''}"
          + (f" (store filled and projected in {fill_seconds:,.0f} s)" if fill_seconds else ""))  # fmt: skip
    print("| endpoint | connections | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |\n|---|---|---|---|---|---|---|")
    for name, n, r in (("dashboard queries", args.connections - args.static_connections, d),
                       ("static /api/v1/health", args.static_connections, s)):  # fmt: skip
        print(
            f"| {name} | {n} | {r['rps']:,.0f} | {r.get('p50', 0):.1f} | {r.get('p90', 0):.1f} | "
            f"{r.get('p99', 0):.1f} | {r['errors']:.0f} |"
        )
    print(json.dumps({"dynamic": d, "static": s}))


if __name__ == "__main__":
    main()
