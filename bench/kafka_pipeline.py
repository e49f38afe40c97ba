"""Kafka pipeline benchmark: commands produced to Kafka → `grievance worker` processes → PostgreSQL →
`grievance projections run`, end to end, beside kafka-python's raw produce and consume rates in the same run.

Sustained: every command produced as fast as one producer can, the clock running from the first send
until the projection holds the last event. Latency: commands paced at a steady rate, each one's time
from its send to the moment the projection's tracked position covers its event.

Reports name residents as bench/traffic.py's do (most of them; some a resident who reported before), their names
and phones sealed to the engine's intake key by the producer as it sends, as a grid worker's app does; the workers
open them and seal them again under each resident's own key.

Run: `.venv/bin/python -m bench.kafka_pipeline --commands 100000 --workers 2` (a Tansu broker is started
on a free port unless --bootstrap names one; a fresh PostgreSQL database is made and dropped).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from adapters.composition import build_chain, build_views
from adapters.http.tokens import issue
from adapters.kafka.intake_sealing import IntakeSealer, make_intake_key
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import CommandSigner, KeyRole, add_key
from adapters.kafka.topics import ensure_topics
from adapters.settings import SHIPPED_CHART, Settings
from adapters.storage.chart_file import load_chart
from bench.engine_throughput import HOUSEHOLDS, percentile, postgres_url
from bench.traffic import Traffic
from engine.access import Role
from engine.commands import CommandDecoder, Report
from tests.kafka_broker import Broker

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
EVENTS_PER_LIFECYCLE = 5


# Who the reports name: one seeded source for the whole run, so a share of residents report again across phases.
TRAFFIC = Traffic(seed=14)
REPORTS = CommandDecoder(Report)


def lifecycle(i: int, prefix: str, first: int) -> list[tuple[bytes, bytes, str]]:
    """(key, value, command id) of a grievance's five commands, as a grid worker's app sends them; the report's
    resident, if it names one, still in clear (`sealed` seals it as the producer sends)."""
    gid = str(uuid.UUID(int=first + i + 1))
    unit = HOUSEHOLDS[i % len(HOUSEHOLDS)]
    t = T0 + timedelta(seconds=i * 7)
    base = {"grievance_id": gid, "actor": "w"}
    steps = [
        {"kind": "report", "unit_id": unit, "category": "other", "title": "路灯不亮", "description": "三号楼前"},
        {"kind": "claim", "unit_id": unit, "mode": "member", "claimant": f"m{i % 900}"},
        {"kind": "record_progress", "note": "已联系物业"},
        {"kind": "resolve", "summary": "已修好"} if i % 7 else {"kind": "reply", "reason": "r", "answer": "a"},
        # The office's callback (回访): whoever reported or worked on a grievance may not rate it.
        {
            "kind": "rate",
            "rating": ("satisfied", "basically_satisfied", "dissatisfied")[i % 3],
            "actor": "office-zhao",
            "given_by": "callback",
        },
    ]
    out = []
    for n, step in enumerate(steps):
        command_id = f"{prefix}{i}-{n}"
        body: dict[str, Any] = {
            **base,
            **step,
            "command_id": command_id,
            "occurred_at": (t + timedelta(hours=n)).isoformat(),
        }
        if n == 0 and (resident := TRAFFIC.resident()) is not None:
            body["resident"] = {"resident_id": resident.resident_id, "name": resident.name, "phone": resident.phone}
        out.append((gid.encode(), json.dumps(body, ensure_ascii=False).encode(), command_id))
    return out


def events_of(grievances: int) -> int:
    """Events the lifecycles store: five each, and a sixth (Reopened) where the resident is dissatisfied."""
    return grievances * EVENTS_PER_LIFECYCLE + sum(1 for i in range(grievances) if i % 3 == 2)


def interleaved(grievances: int, prefix: str, first: int, window: int = 200) -> list[tuple[bytes, bytes, str]]:
    """Lifecycles of grievances `first`+1…, overlapped `window` at a time as many grid workers' phones send
    them: each grievance's in order."""
    out: list[tuple[bytes, bytes, str]] = []
    for start in range(0, grievances, window):
        group = [lifecycle(i, prefix, first) for i in range(start, min(start + window, grievances))]
        for step in range(EVENTS_PER_LIFECYCLE):
            out.extend(g[step] for g in group)
    return out


@functools.cache
def _sealer(path: Path) -> IntakeSealer:
    return IntakeSealer.from_file(path)


def sealed(kafka: KafkaSettings, value: bytes) -> bytes:
    """The command as a producer sends it: a report's resident sealed to the intake key (HPKE), others as they are."""
    if b'"resident"' not in value:
        return value
    assert kafka.intake_public_key is not None
    report = REPORTS.decode(value)
    return msgspec.json.encode(_sealer(kafka.intake_public_key).sealed(report))


def send(producer: KafkaProducer, kafka: KafkaSettings, key: bytes, value: bytes) -> None:
    """Seal, sign and send one command, as a producer does."""
    value = sealed(kafka, value)
    producer.send(kafka.commands_topic, key=key, value=value, headers=signature(kafka, key, value))


def raw_rates(kafka: KafkaSettings, messages: int) -> tuple[float, float]:
    """kafka-python's own produce rate (acks=all) and consume rate for event-sized messages."""
    topic = f"raw-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, topic)
    value = b"x" * 300
    producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=5)
    started = time.perf_counter()
    for i in range(messages):
        producer.send(topic, key=str(i % 5000).encode(), value=value)
    producer.flush()
    produce = messages / (time.perf_counter() - started)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers, enable_auto_commit=False, fetch_max_wait_ms=50)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    started, read = time.perf_counter(), 0
    while read < messages:
        read += sum(len(b) for b in consumer.poll(timeout_ms=500, max_records=5000).values())
    consume = messages / (time.perf_counter() - started)
    consumer.close()
    return produce, consume


@contextmanager
def pipeline(url: str, kafka: KafkaSettings, workers: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes and the projection runner, as compose.yaml runs them."""
    env = {**os.environ, **kafka.as_env(), "GRIEVANCE_DATABASE_URL": url, "GRIEVANCE_LOG_FORMAT": "json",
           "GRIEVANCE_LOG_LEVEL": "warning"}  # fmt: skip
    processes = []
    for n in range(workers):
        with (logs / f"worker-{n}.log").open("wb") as out:
            processes.append(subprocess.Popen([sys.executable, "-m", "adapters.cli", "worker"], env=env, stdout=out,
                                              stderr=subprocess.STDOUT))  # fmt: skip
    with (logs / "projections.log").open("wb") as out:
        processes.append(subprocess.Popen([sys.executable, "-m", "adapters.cli", "projections", "run", "--idle-wait",
                                           "0.05"], env=env, stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
    try:
        yield processes
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(timeout=60)


# What a supervisor's dashboard page asks while commands flow: the headline, counts, the overdue queue, a list page.
PAGES = ("dashboard/headline", "dashboard/counts", "dashboard/overdue", "grievances?status=claimed")


@contextmanager
def serving(url: str, logs: Path) -> Iterator[tuple[str, str]]:
    """`grievance serve` on a free port beside the pipeline, as compose.yaml runs it: (base URL, a supervisor's
    token of the whole chart)."""
    tokens = logs / "tokens.json"
    token = issue(tokens, "bench-supervisor", Role.SUPERVISOR, "lg", load_chart(SHIPPED_CHART))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRIEVANCE_DATABASE_URL": url, "GRIEVANCE_API_TOKENS_FILE": str(tokens),
           "GRIEVANCE_LOG_FORMAT": "json", "GRIEVANCE_LOG_LEVEL": "warning"}  # fmt: skip
    with (logs / "serve.log").open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), "--no-project"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # answering, if not yet healthy (the views may be behind): serving
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the server did not start: see {logs / 'serve.log'}") from None
                time.sleep(0.2)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def read_beside(base: str, token: str, stop: threading.Event, per_second: int = 20) -> list[float]:
    """A supervisor's pages, `per_second` requests a second until `stop`: each one's milliseconds."""
    times: list[float] = []
    n = 0
    while not stop.is_set():
        request = urllib.request.Request(base + PAGES[n % len(PAGES)], headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
        times.append((time.perf_counter() - started) * 1000)
        n += 1
        stop.wait(max(0.0, 1 / per_second - (time.perf_counter() - started)))
    return times


def wait_for_position(views: Any, target: int, processes: list[subprocess.Popen[bytes]], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while views.position() < target:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a pipeline process exited; see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"projection at {views.position()} of {target} after {timeout} s")
        time.sleep(0.002)
    return time.perf_counter()


@functools.cache
def _signer(path: Path) -> CommandSigner:
    return CommandSigner.from_file(path)


def signature(kafka: KafkaSettings, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
    """The headers that sign one command with the bench gateway's key."""
    assert kafka.signing_key is not None
    return _signer(kafka.signing_key).headers(kafka.commands_topic, key, value)


def warm_up(kafka: KafkaSettings, views: Any, processes: list[subprocess.Popen[bytes]]) -> int:
    """One lifecycle per partition through the pipeline, so group joins are over before the clock starts."""
    producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=1)
    messages = interleaved(50, "warm-", first=0)
    for key, value, _ in messages:
        send(producer, kafka, key, value)
    producer.flush()
    producer.close()
    wait_for_position(views, events_of(50), processes, 120)
    return events_of(50)


def sustained(kafka: KafkaSettings, views: Any, processes: list[Any], grievances: int, base: int) -> float:
    messages = interleaved(grievances, "s-", first=1000)
    producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=5)
    started = time.perf_counter()
    for key, value, _ in messages:
        send(producer, kafka, key, value)
    producer.flush()
    producer.close()
    finished = wait_for_position(views, base + events_of(grievances), processes, 900)
    return len(messages) / (finished - started)


def steady_latency(
    kafka: KafkaSettings, chain: Any, views: Any, processes: list[Any], rate: int, seconds: int, base: int, first: int
) -> tuple[float, float, float]:
    """p50, p99 and max milliseconds from a command's send to its event in the projection, at `rate`/s."""
    grievances = rate * seconds // EVENTS_PER_LIFECYCLE
    shifted = interleaved(grievances, "l-", first)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:
        position = base
        while not done.is_set() or position < base + events_of(grievances):
            now_at = views.position()
            if now_at > position:
                seen = time.perf_counter()
                for n in chain.recorder.select_notifications(start=position + 1, limit=now_at - position):
                    event: Any = chain.mapper.to_domain_event(n)
                    if event.command_id in sent_at:
                        latencies.append((seen - sent_at[event.command_id]) * 1000)
                position = now_at
            else:
                time.sleep(0.002)
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a pipeline process exited")

    watcher = threading.Thread(target=watch)
    watcher.start()
    producer = KafkaProducer(bootstrap_servers=kafka.servers, acks="all", linger_ms=0)
    started = time.perf_counter()
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    for i in range(0, len(shifted), per_tick):
        due = started + (i // per_tick) * tick
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for key, value, command_id in shifted[i : i + per_tick]:
            sent_at[command_id] = time.perf_counter()
            send(producer, kafka, key, value)
        producer.flush()
    producer.close()
    done.set()
    watcher.join(timeout=120)
    latencies.sort()
    return percentile(latencies, 50), percentile(latencies, 99), latencies[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=100_000, help="commands in the sustained run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=int, default=1000, help="commands/s in the latency run")
    parser.add_argument("--seconds", type=int, default=30, help="length of the latency run")
    parser.add_argument("--bootstrap", help="an existing broker; default: start Tansu")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    broker = None if args.bootstrap else Broker(logs / "tansu.log")
    bootstrap = args.bootstrap or (broker.bootstrap if broker else "")
    prefix = f"b{uuid.uuid4().hex[:6]}"
    # Commands come signed, as every producer's must: by an import key, since the bench plays a fixed history.
    add_key(logs / "keys.json", logs / "gateway.pem", name="bench-import", role=KeyRole.OPERATOR, unit_id=None,
            chart=load_chart(SHIPPED_CHART))  # fmt: skip
    make_intake_key(logs / "intake.pem", logs / "intake.pub.pem")
    kafka = KafkaSettings(bootstrap_servers=bootstrap, commands_topic=f"{prefix}.commands",
                          rejected_topic=f"{prefix}.rejected", events_topic=f"{prefix}.events",
                          worker_group=f"{prefix}-workers", partitions=args.partitions, batch_wait_ms=20,
                          keys_file=logs / "keys.json", signing_key=logs / "gateway.pem",
                          intake_public_key=logs / "intake.pub.pem",
                          intake_private_key=logs / "intake.pem")  # fmt: skip
    try:
        produce_rate, consume_rate = raw_rates(kafka, 100_000)
        ensure_topics(kafka, kafka.commands_topic, kafka.rejected_topic)
        with postgres_url() as url:
            settings = Settings(database_url=url)
            chain = build_chain(settings)
            views = build_views(settings)
            grievances = args.commands // EVENTS_PER_LIFECYCLE
            with pipeline(url, kafka, args.workers, logs) as processes, serving(url, logs) as (api, token):
                base = warm_up(kafka, views, processes)
                rate = sustained(kafka, views, processes, grievances, base)
                base = views.position()
                # A supervisor reads the dashboard all through the latency run, as the HTTP service beside it.
                stop = threading.Event()
                pages: list[float] = []
                reader = threading.Thread(target=lambda: pages.extend(read_beside(api, token, stop)))
                reader.start()
                try:
                    p50, p99, worst = steady_latency(
                        kafka, chain, views, processes, args.rate, args.seconds, base, first=10_000_000
                    )
                finally:
                    stop.set()
                    reader.join()
            chain.close()
    finally:
        if broker:
            broker.stop()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"broker: {'Tansu (in-memory)' if broker else args.bootstrap}; logs in {logs}")  # fmt: skip
    print(f"command: python -m bench.kafka_pipeline --commands {args.commands} --workers {args.workers} "
          f"--partitions {args.partitions} --rate {args.rate} --seconds {args.seconds}")  # fmt: skip
    print("| what | result |\n|---|---|")
    print(f"| kafka-python raw produce (acks=all, 300 B) | {produce_rate:,.0f} messages/s |")
    print(f"| kafka-python raw consume | {consume_rate:,.0f} messages/s |")
    print(f"| sustained produce → {args.workers} workers → PostgreSQL → projection | {rate:,.0f} commands/s |")
    print(f"| command → projection latency at {args.rate:,}/s, the HTTP service read beside | p50 {p50:,.0f} ms, "
          f"p99 {p99:,.0f} ms, max {worst:,.0f} ms |")  # fmt: skip
    print(f"| a supervisor's pages meanwhile ({len(pages):,} requests over HTTP) | "
          f"p50 {percentile(pages, 50):,.1f} ms, p99 {percentile(pages, 99):,.1f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
