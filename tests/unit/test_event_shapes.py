"""The views read each grievance event's shape (projections/dashboard/event_shapes.py): what they read of it is
what the whole event holds, older versions and unreadable states still go through the chain's mapper."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, Notification

from engine.commands import Resident
from engine.grievance import Grievance
from engine.service_chain import ServiceChain
from projections.dashboard.changes import Lineages, project
from projections.dashboard.event_shapes import GrievanceFact, reader
from tests.conftest import OPERATOR, command
from tests.scenario import Scenario
from tests.unit.test_stored_event_format import REPORTED_V1


def notifications(chain: ServiceChain, events: list[Any]) -> list[Notification]:
    stored = [chain.mapper.to_stored_event(e) for e in events]
    return [Notification(id=i + 1, **dataclasses.asdict(s)) for i, s in enumerate(stored)]


def lives(chain: ServiceChain) -> list[Any]:
    """Every kind of grievance event, a resident named in one report."""
    answered, resolved = Scenario(chain), Scenario(chain)
    answered.answered_then_reopened()
    resident = Resident(resident_id="res-1", name="Wang Fang", phone="13800000000")
    resolved.report(resident=resident)  # type: ignore[arg-type]
    resolved.claim()
    chain.apply(command("record_progress", grievance_id=resolved.id, command_id="p", actor="member-wang",
                        occurred_at=resolved.tick(), note="went there"), principal=OPERATOR)  # fmt: skip
    resolved.resolve()
    resolved.rate("satisfied")
    return [*chain.history(answered.id), *chain.history(resolved.id)]


def test_each_shape_holds_what_its_whole_event_holds_of_the_fields_it_names(chain: ServiceChain) -> None:
    events = lives(chain)
    read = reader(chain.sealed_mapper())
    shapes = [read(n) for n in notifications(chain, events)]
    assert {type(e).__name__ for e in events} == {type(s).__name__ for s in shapes} >= {
        "Reported", "Claimed", "ProgressRecorded", "Escalated", "Resolved", "Replied", "Rated", "Reopened"
    }  # fmt: skip
    for event, shape in zip(events, shapes, strict=True):
        assert isinstance(shape, GrievanceFact)
        assert type(shape).__name__ == type(event).__name__
        for name in shape.__struct_fields__:
            if name != "class_version":
                assert getattr(shape, name) == getattr(event, name), name
    assert not any(hasattr(s, "resident_name") or hasattr(s, "description") for s in shapes)


def test_a_page_read_by_shape_projects_as_the_whole_events_do(chain: ServiceChain) -> None:
    events = lives(chain)
    page = notifications(chain, events)
    lineages = Lineages(chain.chart)
    by_shape = project([reader(chain.sealed_mapper())(n) for n in page], {}, lineages)
    whole = project([chain.sealed_mapper().to_domain_event(n) for n in page], {}, lineages)
    assert by_shape.rows == whole.rows
    assert {f.name: getattr(by_shape, f.name) for f in dataclasses.fields(by_shape) if f.name != "lineages"} == {
        f.name: getattr(whole, f.name) for f in dataclasses.fields(whole) if f.name != "lineages"
    }


def test_an_older_version_is_read_whole_and_upcast(chain: ServiceChain) -> None:
    old = Notification(id=1, originator_id=uuid4(), originator_version=1,
                       topic="engine.grievance:Grievance.Reported", state=REPORTED_V1)  # fmt: skip
    event = reader(chain.sealed_mapper())(old)
    assert type(event) is Grievance.Reported
    assert event.channel == "grid_visit"


@pytest.mark.parametrize(
    ("field", "value"), [("level", "the_moon"), ("occurred_at", "yesterday"), ("claim_due", None), ("unit_id", 7)]
)
def test_what_the_whole_event_refuses_the_shape_refuses(chain: ServiceChain, field: str, value: object) -> None:
    [reported] = notifications(chain, lives(chain)[:1])
    state = msgspec.json.decode(reported.state)
    state[field] = value
    broken = dataclasses.replace(reported, state=msgspec.json.encode(state))
    with pytest.raises(MapperDeserialisationError):
        chain.sealed_mapper().to_domain_event(broken)
    with pytest.raises(MapperDeserialisationError):
        reader(chain.sealed_mapper())(broken)


def test_a_store_that_encrypts_whole_states_is_read_by_its_mapper_alone(chain: ServiceChain) -> None:
    mapper = chain.sealed_mapper()
    mapper.cipher = object()  # type: ignore[assignment]
    assert reader(mapper) == mapper.to_domain_event
