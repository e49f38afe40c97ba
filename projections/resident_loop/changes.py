"""What each event of a grievance changes in the resident's loop: a message owed to its resident, a closure
that now waits for a rating (or no longer does), a rating and who gave it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.grievance import EscalationReason, Grievance

# What a resident is told, and when (FixMyStreet and 12345 alike): each is one message in the outbox.
REPORTED, CLAIMED, ESCALATED, ANSWERED, RATE_REQUEST = "reported", "claimed", "escalated", "answered", "rate_request"
KINDS = (REPORTED, CLAIMED, ESCALATED, ANSWERED, RATE_REQUEST)


@dataclass(frozen=True)
class Message:
    """One message owed to a grievance's resident; `message_id` is its idempotency key, the same however often
    the outbox is rebuilt. It holds no personal data: the sender finds the resident's phone when it delivers."""

    message_id: str
    grievance_id: UUID
    kind: str
    at: datetime
    unit_id: str
    # What the message says beyond its kind: the answer the resident was given, or the unit it moved to.
    text: str = ""


@dataclass(frozen=True)
class Closure:
    """A resolution or reply, waiting for its rating since `closed_at`."""

    grievance_id: UUID
    unit_id: str
    status: str
    closed_at: datetime


@dataclass(frozen=True)
class Rated:
    """One rating: of which closure, at which unit, what it said and who gave it (resident, callback, recorded)."""

    grievance_id: UUID
    version: int
    unit_id: str
    rating: str
    given_by: str
    at: datetime


@dataclass
class LoopChanges:
    """A page of events' changes: rows to add, closures to drop (rated, or reopened), residents named."""

    messages: list[Message] = field(default_factory=list)
    closures: dict[UUID, Closure | None] = field(default_factory=dict)
    ratings: list[Rated] = field(default_factory=list)
    residents: dict[UUID, str] = field(default_factory=dict)


def _message(e: Any, kind: str, unit_id: str, text: str = "") -> Message:
    gid = e.originator_id
    return Message(f"{gid}:{e.originator_version}:{kind}", gid, kind, e.occurred_at, unit_id, text)


def project(events: list[Any], closed_units: dict[UUID, str]) -> LoopChanges:
    """The changes `events` (in log order) make; `closed_units` holds, and is kept holding, the unit each
    grievance of the page was closed at, for its rating."""
    c = LoopChanges()
    for e in events:
        gid = e.originator_id
        match e:
            case Grievance.Reported():
                if e.resident_id:
                    c.residents[gid] = e.resident_id
                c.messages.append(_message(e, REPORTED, e.unit_id))
            case Grievance.Claimed():
                c.messages.append(_message(e, CLAIMED, e.unit_id))
            case Grievance.Escalated():
                c.messages.append(_message(e, ESCALATED, e.to_unit, "overdue" if e.reason == EscalationReason.OVERDUE
                                           else "requested"))  # fmt: skip
            case Grievance.Resolved() | Grievance.Replied():
                answer = e.summary if isinstance(e, Grievance.Resolved) else e.answer
                unit = _unit_of(e, closed_units)
                c.messages.append(_message(e, ANSWERED, unit, answer))
                c.messages.append(_message(e, RATE_REQUEST, unit))
                status = "resolved" if isinstance(e, Grievance.Resolved) else "replied"
                c.closures[gid] = Closure(gid, unit, status, e.occurred_at)
            case Grievance.Rated():
                c.closures[gid] = None
                c.ratings.append(Rated(gid, e.originator_version, _unit_of(e, closed_units), str(e.rating),
                                       str(e.given_by), e.occurred_at))  # fmt: skip
            case Grievance.Reopened():
                c.closures[gid] = None
        _follow(e, closed_units)
    return c


def _unit_of(e: Any, units: dict[UUID, str]) -> str:
    return units.get(e.originator_id, "")


def _follow(e: Any, units: dict[UUID, str]) -> None:
    """Where the grievance now waits, as far as its events say: its closures and ratings belong to that unit."""
    match e:
        case Grievance.Reported() | Grievance.Claimed() | Grievance.Reopened():
            units[e.originator_id] = e.unit_id
        case Grievance.Escalated():
            units[e.originator_id] = e.to_unit
