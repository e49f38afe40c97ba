"""Stored events: the msgspec mapper round-trips every event, and events of older versions still read."""

from __future__ import annotations

import json
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from engine.commands import Claim
from engine.grievance import Channel, ClaimMode, Grievance
from engine.service_chain import ServiceChain
from engine.transcoder import MsgspecTranscoder, TypedEventMapper
from tests.conftest import OPERATOR
from tests.scenario import GRID, Scenario

# A Reported event exactly as version 1 of the engine wrote it: before the intake channel existed.
REPORTED_V1 = json.dumps(
    {
        "timestamp": "2026-03-02T00:30:01.000000Z",
        "originator_topic": "engine.grievance:Grievance",
        "actor": "worker-li",
        "occurred_at": "2026-03-02T00:30:00Z",
        "command_id": "phone-1",
        "unit_id": GRID,
        "level": "grid_branch",
        "category": "utilities",
        "title": "No heating",
        "description": "Building 3.",
        "claim_due": "2026-03-03T00:30:00Z",
    }
).encode()


def test_every_event_round_trips_through_the_mapper(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.answered_then_reopened(close="resolve")
    mapper = TypedEventMapper(MsgspecTranscoder())
    for event in chain.history(s.id):
        assert mapper.to_domain_event(mapper.to_stored_event(event)) == event


def test_a_version_1_report_is_upcast_when_read(chain: ServiceChain) -> None:
    gid = uuid4()
    stored = StoredEvent(
        originator_id=gid, originator_version=1, topic="engine.grievance:Grievance.Reported", state=REPORTED_V1
    )
    chain.recorder.insert_events([stored])
    g = chain.grievance(gid)
    assert g.channel is Channel.GRID_VISIT
    assert g.unit_id == GRID
    # and the upcast grievance carries on as any other
    chain.apply(
        Claim(
            grievance_id=gid,
            command_id="phone-2",
            actor="m",
            occurred_at=g.reported_at,
            unit_id=GRID,
            mode=ClaimMode.MEMBER,
            claimant="m",
        ),
        principal=OPERATOR,
    )
    assert chain.grievance(gid).version == 2
    assert chain.grievance(gid).resident_id is None, "v3's resident is absent from a v1 report"
    assert Grievance.Reported.class_version == 3
