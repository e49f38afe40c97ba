"""Soak: commands at a steady rate through Kafka into PostgreSQL for a bounded time, with two workers, the
relay and the projection runner running; every process's memory (RSS) and the projection's lag sampled
throughout, and at the end a check that nothing was lost or doubled.

Run: `.venv/bin/python -m bench.soak --minutes 30 --rate 1000` (a Tansu broker is started on a free port;
a fresh PostgreSQL database is made and dropped).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from adapters.composition import build_chain, build_tracking, build_views
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.topics import ensure_topics
from adapters.settings import Settings
from bench.engine_throughput import postgres_url
from bench.kafka_pipeline import EVENTS_PER_LIFECYCLE, events_of, interleaved
from tests.kafka_broker import Broker

PROCESSES = (("worker-1", ["worker"]), ("worker-2", ["worker"]), ("relay", ["relay"]),
             ("projections", ["projections", "run"]))  # fmt: skip


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=int, default=1000, help="commands a second")
    parser.add_argument("--sample-seconds", type=float, default=30)
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = Broker(logs / "tansu.log")
    prefix = f"s{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, commands_topic=f"{prefix}.commands",
                          rejected_topic=f"{prefix}.rejected", events_topic=f"{prefix}.events",
                          worker_group=f"{prefix}-workers", partitions=4, batch_wait_ms=20)  # fmt: skip
    ensure_topics(kafka, kafka.commands_topic, kafka.rejected_topic, kafka.events_topic)
    total = int(args.rate * args.minutes * 60) // EVENTS_PER_LIFECYCLE * EVENTS_PER_LIFECYCLE
    messages = interleaved(total // EVENTS_PER_LIFECYCLE, "soak-", first=0)
    expected = events_of(total // EVENTS_PER_LIFECYCLE)
    samples: list[dict[str, Any]] = []
    try:
        with postgres_url() as url:
            settings = Settings(database_url=url)
            chain = build_chain(settings)
            views = build_views(settings)
            tracking = build_tracking(settings)
            env = {**os.environ, **kafka.as_env(), "GRIEVANCE_DATABASE_URL": url, "GRIEVANCE_LOG_FORMAT": "json",
                   "GRIEVANCE_LOG_LEVEL": "warning"}  # fmt: skip
            procs: dict[str, subprocess.Popen[bytes]] = {}
            for name, argv in PROCESSES:
                with (logs / f"{name}.log").open("wb") as out:
                    procs[name] = subprocess.Popen([sys.executable, "-m", "adapters.cli", *argv], env=env,
                                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            sent = [0]
            started = time.monotonic()

            def produce() -> None:
                # Larger batches, as phones behind a gateway send them: the test broker (Tansu, in memory) slows
                # down with the number of record batches it holds, not with their size.
                producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=100,
                                         batch_size=256 * 1024)  # fmt: skip
                per_tick, tick = max(1, args.rate // 100), 0.01
                for i in range(0, len(messages), per_tick):
                    delay = started + (i // per_tick) * tick - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    for key, value, _ in messages[i : i + per_tick]:
                        producer.send(kafka.commands_topic, key=key, value=value)
                    sent[0] = i + per_tick
                producer.flush()
                producer.close()

            producing = threading.Thread(target=produce)
            producing.start()
            relay_name = f"relay:{kafka.events_topic}<-grievances"

            def count() -> int:
                # Not the last notification id: ids skip where a rebalance made two workers race and
                # the store refused the loser's whole transaction.
                recorder: Any = chain.recorder
                with recorder.datastore.transaction(commit=False) as cursor:
                    cursor.execute(f"SELECT COUNT(*) AS n FROM {recorder.events_table_name}")
                    return int(cursor.fetchone()["n"])

            last_id = 0
            while producing.is_alive() or views.position() < last_id or count() < expected:
                time.sleep(args.sample_seconds if producing.is_alive() else 2)
                last_id = chain.recorder.max_notification_id() or 0
                stored = count()
                sample = {"t": time.monotonic() - started, "sent": min(sent[0], total), "stored": stored,
                          "projection_lag": last_id - views.position(),
                          "relay_lag": last_id - (tracking.max_tracking_id(relay_name) or 0),
                          **{name: rss_mib(p.pid) for name, p in procs.items()}}  # fmt: skip
                samples.append(sample)
                print(" ".join(f"{k}={v:,.0f}" for k, v in sample.items()), flush=True)
                if dead := [n for n, p in procs.items() if p.poll() is not None]:
                    raise RuntimeError(f"{dead} exited; see {logs}")
                if not producing.is_alive() and time.monotonic() - started > args.minutes * 60 + 300:
                    raise RuntimeError("the pipeline did not drain within 5 minutes of the last send")
            last_id = chain.recorder.max_notification_id() or 0
            while (tracking.max_tracking_id(relay_name) or 0) < last_id or views.position() < last_id:
                time.sleep(1)
            views_done = views.position() == last_id
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.wait(timeout=60)
            stored = count()
            chain.close()
    finally:
        broker.stop()

    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; logs {logs}")
    print(f"command: python -m bench.soak --minutes {args.minutes:g} --rate {args.rate}")
    print(f"commands sent {total:,}; events stored {stored:,} (expected {expected:,}); "
          f"all projected and relayed: {views_done}")  # fmt: skip
    names = [n for n, _ in PROCESSES]
    print("| minute | sent | projection lag (events) | relay lag | " + " | ".join(f"{n} RSS MiB" for n in names) + " |")
    print("|---" * (4 + len(names)) + "|")
    shown_minute = -1.0
    for s in samples:
        if s["t"] // 60 > shown_minute or s is samples[-1]:
            shown_minute = s["t"] // 60
            print(f"| {s['t'] / 60:.1f} | {s['sent']:,} | {s['projection_lag']:,} | {s['relay_lag']:,} | "
                  + " | ".join(f"{s[n]:.0f}" for n in names) + " |")  # fmt: skip
    if stored != expected:
        sys.exit(f"LOST OR DOUBLED: {stored:,} events stored, {expected:,} expected")


if __name__ == "__main__":
    main()
