"""JSON Schema for every message type, for grid-worker app developers and other systems."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.events import EventEnvelope
from schemas.results import Accepted, GrievanceView, History, Rejected

# What the engine sends out; the commands it takes in are the engine's own (engine/commands.py), handed in.
EXPORTED: dict[str, Any] = {
    "EventEnvelope": EventEnvelope,
    "Accepted": Accepted,
    "Rejected": Rejected,
    "GrievanceView": GrievanceView,
    "History": History,
}


def json_schema(**incoming: Any) -> dict[str, Any]:
    """One document: each message type the engine sends out, and each of the `incoming` types it takes in
    (`Command=engine.commands.Command`), under `$defs`, with a top-level index of their names."""
    refs, components = msgspec.json.schema_components([*incoming.values(), *EXPORTED.values()])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Grievance escalation engine messages",
        "$defs": components,
        "anyOf": refs,
    }
