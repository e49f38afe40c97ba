"""Wire messages: every schema round-trips, constraints name the field, vocabularies match the engine."""

from __future__ import annotations

from datetime import timedelta, timezone
from enum import StrEnum
from typing import Any, get_args

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import wire
from engine import commands as engine_commands
from engine.commands import Command, command_decoder
from engine.grievance import Category, Channel, ClaimMode, EscalationReason, Rating, Status
from engine.levels import Level
from schemas import common
from schemas.events import EventEnvelope, envelope_decoder
from schemas.export import json_schema
from schemas.results import Accepted, GrievanceView, Rejected

encoder = msgspec.json.Encoder()


@pytest.mark.parametrize(
    ("literal", "enum"),
    [
        (common.LevelName, Level),
        (common.StatusName, Status),
        (common.CategoryName, Category),
        (common.ChannelName, Channel),
        (common.ClaimModeName, ClaimMode),
        (common.EscalationReasonName, EscalationReason),
        (common.RatingName, Rating),
    ],
)
def test_wire_vocabularies_equal_the_engines(literal: Any, enum: type[StrEnum]) -> None:
    assert list(get_args(literal)) == [member.value for member in enum]


@pytest.mark.parametrize("name", ["Identifier", "AwareDatetime"])
def test_outgoing_messages_constrain_ids_and_times_as_commands_do(name: str) -> None:
    assert getattr(common, name) == getattr(engine_commands, name)


def values_of(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values that satisfy a msgspec type and its constraints, read from the schema itself."""
    if isinstance(t, mi.Metadata):
        return values_of(t.type)
    if isinstance(t, mi.StrType):
        if t.pattern:
            return st.from_regex(t.pattern, fullmatch=True).filter(
                lambda v: (t.min_length or 0) <= len(v) <= (t.max_length or 10_000)
            )
        return st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 50, 50))
    if isinstance(t, mi.DateTimeType):
        offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
        return st.datetimes(timezones=offsets if t.tz else st.none())
    if isinstance(t, mi.IntType):
        return st.integers(min_value=t.ge, max_value=2**53)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, mi.UnionType):
        return st.one_of([values_of(member) for member in t.types])
    if isinstance(t, mi.ListType):
        return st.lists(values_of(t.item_type), max_size=3)
    if isinstance(t, mi.StructType):
        return messages(t.cls)
    if isinstance(t, mi.DictType):
        return st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)
    simple: dict[type, st.SearchStrategy[Any]] = {
        mi.UUIDType: st.uuids(),
        mi.BoolType: st.booleans(),
        mi.NoneType: st.none(),
    }
    return simple[type(t)]


def messages(kind: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    info = mi.type_info(kind)
    assert isinstance(info, mi.StructType)
    return st.fixed_dictionaries({f.name: values_of(f.type) for f in info.fields}).map(lambda d: kind(**d))


@pytest.mark.parametrize("kind", [*get_args(Command), EventEnvelope, Accepted, Rejected, GrievanceView])
@given(data=st.data())
def test_every_message_round_trips_through_json(kind: type[msgspec.Struct], data: st.DataObject) -> None:
    message = data.draw(messages(kind))
    assert msgspec.json.decode(encoder.encode(message), type=kind) == message


GOOD = {
    "kind": "claim",
    "command_id": "c-1",
    "grievance_id": "9bf3196c-8548-42bb-96e3-90f7fd0ce8f9",
    "actor": "m",
    "occurred_at": "2026-03-02T08:30:00+08:00",
    "unit_id": "mh-a",
    "mode": "member",
    "claimant": "m",
}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"occurred_at": "2026-03-02T08:30:00"}, "occurred_at", "timezone"),
        ({"grievance_id": "not-a-uuid"}, "grievance_id", "uuid"),
        ({"mode": "committee"}, "mode", "Invalid enum value"),
        ({"claimant": ""}, "claimant", "length >= 1"),
        ({"command_id": "x" * 101}, "command_id", "length <= 100"),
        ({"kind": "delete"}, "kind", "Invalid value 'delete'"),
        ({"extra": 1}, "$", "unknown field"),
        ({"unit_id": "Has Spaces"}, "unit_id", "matching regex"),
    ],
)
def test_malformed_commands_are_rejected_naming_the_field(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        command_decoder.decode(encoder.encode({**GOOD, **change}))
    rejected = wire.malformed(refused.value)
    assert (rejected.code, rejected.field) == ("malformed", field)
    assert words.lower() in rejected.reason.lower()


def test_a_good_command_decodes_into_its_tagged_type() -> None:
    command: Command = command_decoder.decode(encoder.encode(GOOD))
    assert type(command).__name__ == "Claim"
    assert command.occurred_at.utcoffset() is not None


def test_json_schema_covers_every_message() -> None:
    schema = json_schema(Command=Command)
    assert {"Report", "Claim", "Escalate", "Rate", "EventEnvelope", "Rejected", "GrievanceView"} <= set(schema["$defs"])
    claim = schema["$defs"]["Claim"]
    assert claim["properties"]["command_id"]["maxLength"] == 100
    assert "kind" in claim["required"]


def test_envelopes_decode_as_sent() -> None:
    raw = (
        b'{"event_id":"9bf3196c-8548-42bb-96e3-90f7fd0ce8f9","grievance_id":"9bf3196c-8548-42bb-96e3-90f7fd0ce8f9",'
        b'"version":1,"type":"Reported","schema_version":2,"occurred_at":"2026-03-02T00:30:00Z",'
        b'"recorded_at":"2026-03-02T00:30:01Z","actor":"w","command_id":"c","payload":{"unit_id":"mh-a"}}'
    )
    assert envelope_decoder.decode(raw).payload == {"unit_id": "mh-a"}
