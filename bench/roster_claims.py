"""Batched claims with the roster's checks against without them (issue 17's goal: within 10 %), on SQLite and
PostgreSQL: the same reports and the same claims, at model households that keep a roster of one member each (a
roll read per claim) or none (claims unchecked). Runs alternate, without and with, in fresh stores.
Run: `.venv/bin/python -m bench.roster_claims [--grievances 3000] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from uuid import uuid4

from adapters.composition import build_chain, roster_of
from adapters.settings import Settings
from bench.engine_throughput import T0, machine_speed, postgres_url, raw_postgres, raw_sqlite, sqlite_url
from bench.operator import OPERATOR
from bench.traffic import HOUSEHOLDS
from engine.commands import Claim, Command, Report
from engine.grievance import Category, ClaimMode
from engine.roster import Kind
from engine.roster_commands import Join

BATCH = 500


def run(url: str, grievances: int, *, roster: bool) -> float:
    """Claims a second, over batches of BATCH, after the same reports (and, with `roster`, a member a household)."""
    chain = build_chain(Settings(database_url=url))
    try:
        if roster:
            joins = [Join(command_id=f"j-{h}", actor="op", occurred_at=T0, entry_id=f"m-{h}", kind=Kind.MEMBER,
                          unit_id=h, name="王五") for h in HOUSEHOLDS]  # fmt: skip
            roster_of(chain).execute(joins, principal=OPERATOR)
        at = T0 + timedelta(minutes=1)
        units = [HOUSEHOLDS[i % len(HOUSEHOLDS)] for i in range(grievances)]
        ids = [uuid4() for _ in units]
        reports: list[Command] = [Report(command_id=f"r-{g}", grievance_id=g, actor="op", occurred_at=at, unit_id=u,
                                         category=Category.OTHER, title="t", description="d")
                                  for g, u in zip(ids, units, strict=True)]  # fmt: skip
        for i in range(0, len(reports), BATCH):
            chain.execute(reports[i : i + BATCH], principal=OPERATOR)
        claims: list[Command] = [Claim(command_id=f"c-{g}", grievance_id=g, actor="op", occurred_at=at, unit_id=u,
                                       mode=ClaimMode.MEMBER, claimant=f"m-{u}")
                                 for g, u in zip(ids, units, strict=True)]  # fmt: skip
        started = time.perf_counter()
        for i in range(0, len(claims), BATCH):
            results = chain.execute(claims[i : i + BATCH], principal=OPERATOR)
            assert all(not isinstance(r, Exception) for r in results), results[:3]
        return len(claims) / (time.perf_counter() - started)
    finally:
        chain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grievances", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    print(machine_speed())
    stores: dict[str, Callable[[], AbstractContextManager[str]]] = {"sqlite": sqlite_url, "postgres": postgres_url}
    for name in args.stores.split(","):
        rates: dict[bool, list[float]] = {False: [], True: []}
        raws: list[float] = []
        for _ in range(args.rounds):
            for with_roster in (False, True):
                with stores[name]() as url:
                    rates[with_roster].append(run(url, args.grievances, roster=with_roster))
                    raws.append(raw_sqlite(url, 20_000, "FULL") if name == "sqlite" else raw_postgres(url, 20_000))
        without, with_, raw = (statistics.median(rates[False]), statistics.median(rates[True]),
                               statistics.median(raws))  # fmt: skip
        print(f"{name}: {args.grievances:,} claims in batches of {BATCH}: without the roster {without:,.0f}/s "
              f"({without / raw:.3f} of raw), with it {with_:,.0f}/s ({with_ / raw:.3f}); median of {args.rounds}; "
              f"with/without = {with_ / without:.2f}; raw rows {raw:,.0f}/s")  # fmt: skip


if __name__ == "__main__":
    main()
