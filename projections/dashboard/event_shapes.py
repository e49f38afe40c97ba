"""What the dashboard views read of each grievance event, decoded straight from its stored state.

The chain's mapper builds each event whole: every field, residents' sealed ones too, as a dict made into the
event class. The views read a few fields of each, and decoding whole events was a fifth of a rebuild. Each shape
here names the fields `changes.py` reads, typed as the event types them (so a value the event would refuse is
refused here too), under the event's own class name, which is what `changes.py` dispatches on. A stored event of
another version than the current one, or one a shape cannot read, goes through the mapper as before, which
upcasts it or says why it cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from engine.grievance import Category, Channel, ClaimMode, EscalationReason, Grievance, Rating
from engine.levels import Level


class GrievanceFact(msgspec.Struct, kw_only=True, gc=False):
    """The part of a grievance event the views read; its place in the grievance's history is set once decoded."""

    occurred_at: datetime
    class_version: int = 1
    originator_id: UUID | None = None
    originator_version: int = 0


class Reported(GrievanceFact):
    unit_id: str
    level: Level
    category: Category
    channel: Channel
    title: str
    claim_due: datetime


class Claimed(GrievanceFact):
    mode: ClaimMode
    claimant: str
    finish_due: datetime


class ProgressRecorded(GrievanceFact):
    pass


class Escalated(GrievanceFact):
    to_unit: str
    to_level: Level
    reason: EscalationReason
    claim_due: datetime


class Resolved(GrievanceFact):
    pass


class Replied(GrievanceFact):
    pass


class Rated(GrievanceFact):
    rating: Rating


class Reopened(GrievanceFact):
    unit_id: str
    claim_due: datetime


_SHAPES: dict[type[Any], type[GrievanceFact]] = {
    Grievance.Reported: Reported,
    Grievance.Claimed: Claimed,
    Grievance.ProgressRecorded: ProgressRecorded,
    Grievance.Escalated: Escalated,
    Grievance.Resolved: Resolved,
    Grievance.Replied: Replied,
    Grievance.Rated: Rated,
    Grievance.Reopened: Reopened,
}
# Either form of a report, for the runner to tell a grievance first reported in a page from one it must look up.
REPORTS = (Grievance.Reported, Reported)
GRIEVANCE_EVENTS = (Grievance.Event, GrievanceFact)


def reader(mapper: Mapper[UUID]) -> Callable[[Notification], Any]:
    """Read a notification as the views need it: its shape when the stored state is of the event's current
    version, else the event whole from `mapper` (raising what it raises). A store that encrypts or compresses
    whole states (the library's own cipher) is read by the mapper alone."""
    if getattr(mapper, "cipher", None) or getattr(mapper, "compressor", None):
        return mapper.to_domain_event
    shapes = {
        get_topic(event_class): (msgspec.json.Decoder(shape), getattr(event_class, "class_version", 1))
        for event_class, shape in _SHAPES.items()
    }

    def read(notification: Notification) -> Any:
        found = shapes.get(notification.topic)
        if found is not None:
            decoder, version = found
            try:
                fact = decoder.decode(notification.state)
            except (msgspec.DecodeError, msgspec.ValidationError):
                fact = None
            if fact is not None and fact.class_version == version:
                oid = notification.originator_id
                fact.originator_id = oid if isinstance(oid, UUID) else UUID(oid)
                fact.originator_version = notification.originator_version
                return fact
        return mapper.to_domain_event(notification)

    return read
