"""A grid workers' stream of Kafka messages: real lifecycles, interleaved, with repeats, malformed messages
and commands that break the chain's rules, and the outcome a direct run of the same stream gives."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from adapters.intake import Intake
from engine.chart import OrgChart
from engine.commands import command_decoder
from engine.levels import Level
from engine.service_chain import ServiceChain
from schemas.results import Rejected
from tests.conftest import OPERATOR, T0


@dataclass
class Stream:
    """Messages in send order, as (key, value)."""

    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    grievance_ids: list[UUID] = field(default_factory=list)


def _lifecycle(rng: random.Random, chart: OrgChart, index: int) -> list[dict[str, Any]]:
    gid = str(UUID(int=index + 1))
    households = [u for u in chart if u.level is Level.MEMBER_HOUSEHOLD]
    household = rng.choice(households)
    building = chart.parent_of(household.id)
    assert building is not None
    at = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
    steps: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        nonlocal at
        at += timedelta(minutes=rng.randrange(5, 600))
        steps.append({"kind": kind, "command_id": f"c{index}-{len(steps)}", "grievance_id": gid,
                      "actor": "grid-worker-7", "occurred_at": at.isoformat(), **fields})  # fmt: skip

    add("report", unit_id=household.id, category=rng.choice(["parking", "property", "environment"]),
        title="楼道堆放杂物", description="居民反映楼道堆放杂物")  # fmt: skip
    if rng.random() < 0.1:  # breaks a rule: closed before anyone claimed it
        add("resolve", summary="done")
    add("claim", unit_id=household.id, mode="organisation", claimant=household.id)
    add("record_progress", note="已联系物业")
    if rng.random() < 0.5:
        add("escalate", reason="requested", note="超出本级能力")
        if rng.random() < 0.1:  # breaks a rule: claimed at the unit it has just left
            add("claim", unit_id=household.id, mode="member", claimant="member-1")
        add("claim", unit_id=building.id, mode=rng.choice(["group", "member"]), claimant=f"m-{index % 17}")
    if rng.random() < 0.3:
        add("reply", reason="涉及跨部门政策", answer="已告知办理渠道")
    else:
        add("resolve", summary="已协调解决")
    if rng.random() < 0.8:
        add("rate", rating=rng.choice(["satisfied", "basically_satisfied", "dissatisfied"]))
    return steps


MALFORMED: list[bytes] = [
    b"{not json",
    b'{"kind": "report"}',
    b'{"kind": "teleport", "command_id": "x", "grievance_id": "00000000-0000-0000-0000-000000000001"}',
    b"",
    # A time without its UTC offset.
    b'{"kind": "rate", "command_id": "naive", "grievance_id": "00000000-0000-0000-0000-000000000001", '
    b'"actor": "a", "occurred_at": "2026-03-02T08:30:00", "rating": "satisfied"}',
]


def command_stream(chart: OrgChart, messages: int, seed: int = 4, first: int = 0) -> Stream:
    """About `messages` messages: lifecycles interleaved at random (each grievance's own in order), about
    5% sent twice, about 2% malformed or keyed wrong."""
    rng = random.Random(seed)
    pending: list[list[tuple[bytes | None, bytes]]] = []
    stream = Stream()
    total = 0
    while total < messages:
        index = first + len(pending)
        steps = []
        for step in _lifecycle(rng, chart, index):
            key = step["grievance_id"].encode()
            value = json.dumps(step, ensure_ascii=False).encode()
            steps.append((key, value))
            if rng.random() < 0.05:
                steps.append((key, value))  # a phone retrying
            if rng.random() < 0.02:
                steps.append((key, rng.choice(MALFORMED)))
            if rng.random() < 0.005:
                steps.append((str(UUID(int=10**9 + index)).encode(), value))  # keyed by the wrong grievance
        pending.append(steps)
        stream.grievance_ids.append(UUID(int=index + 1))
        total += len(steps)
    cursors = [0] * len(pending)
    live = list(range(len(pending)))
    while live:
        pick = rng.randrange(len(live))
        g = live[pick]
        stream.messages.append(pending[g][cursors[g]])
        cursors[g] += 1
        if cursors[g] == len(pending[g]):
            live[pick] = live[-1]
            live.pop()
    return stream


def apply_directly(stream: Stream, chain: ServiceChain, batch: int = 500) -> list[tuple[bytes, str]]:
    """Apply the stream's well-formed, rightly keyed commands straight through the intake, in order; the
    (value, error code) of every message the worker should reject, in order."""
    intake = Intake(chain)
    rejected: list[tuple[bytes, str]] = []
    queue: list[tuple[bytes, Any]] = []

    def flush() -> None:
        results = intake.submit([c for _, c in queue], principal=OPERATOR)
        rejected.extend((v, r.code) for (v, _), r in zip(queue, results, strict=True) if isinstance(r, Rejected))
        queue.clear()

    for key, value in stream.messages:
        try:
            command = command_decoder.decode(value)
        except Exception:
            rejected.append((value, "malformed"))
            continue
        if key is None or UUID(key.decode()) != command.grievance_id:
            rejected.append((value, "key_mismatch"))
            continue
        queue.append((value, command))
        if len(queue) >= batch:
            flush()
    if queue:
        flush()
    return rejected
