"""JSON Schema for every message type, for grid-worker app developers and other systems."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.commands import Command
from schemas.events import EventEnvelope
from schemas.results import Accepted, GrievanceView, History, Rejected

EXPORTED: dict[str, Any] = {
    "Command": Command,
    "EventEnvelope": EventEnvelope,
    "Accepted": Accepted,
    "Rejected": Rejected,
    "GrievanceView": GrievanceView,
    "History": History,
}


def json_schema() -> dict[str, Any]:
    """One document: each exported type under `$defs`, with a top-level index of their names."""
    refs, components = msgspec.json.schema_components(list(EXPORTED.values()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Grievance escalation engine messages",
        "$defs": components,
        "anyOf": refs,
    }
