"""The event envelope: how a stored event leaves the process (Kafka, HTTP, exports)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from schemas.common import AwareDatetime, Identifier, Version


class EventEnvelope(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One stored event; consumers dedupe on (grievance_id, version), equivalently on event_id."""

    event_id: UUID
    grievance_id: UUID
    version: Version
    type: str
    schema_version: Version
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    actor: Identifier
    command_id: Identifier
    payload: dict[str, Any]
    # SHA-256 (hex) chained to the grievance's previous event, as stored beside it; see `grievance verify`.
    hash: str | None = None


envelope_decoder = msgspec.json.Decoder(EventEnvelope)
