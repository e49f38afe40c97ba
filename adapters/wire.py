"""Translation of the engine's outcomes, errors, grievances and events into the wire messages of `schemas`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import msgspec
from eventsourcing.domain import DomainEventProtocol

from adapters.roster_views import entry_view
from engine.commands import CommandBase, Outcome
from engine.errors import BrokenHistory, GrievanceError
from engine.grievance import Grievance
from engine.personal_data import masked
from engine.roster_book import RosterBook
from schemas.events import EventEnvelope
from schemas.results import Accepted, ClaimantThen, GrievanceView, Rejected

# Fields the envelope carries itself, so they are not repeated in its payload.
_ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "actor", "occurred_at", "command_id", "originator_topic"}
)
_AT_PATH = re.compile(r" - at `\$(?:\[\d+\])?\.?([^`]*)`$")
# What decoding input can raise: not the shape asked for, not JSON, or nested past the decoder's depth.
UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
EVENT_ID_NAMESPACE = UUID("5b7d8a0e-3c1f-4f5e-9a57-2a7f0e6c9d11")


def accepted(outcome: Outcome) -> Accepted:
    """The wire result of an applied (or repeated) command."""
    return Accepted(
        command_id=outcome.command_id,
        grievance_id=outcome.grievance_id,
        kind=outcome.kind,
        version=outcome.version,
        status=outcome.status.value,
        level=outcome.level.value,
        unit_id=outcome.unit_id,
        duplicate=outcome.duplicate,
    )


def rejected(error: GrievanceError, command: CommandBase | None = None) -> Rejected:
    """The wire result of a command a rule refused."""
    return Rejected(
        command_id=command.command_id if command else None,
        grievance_id=command.grievance_id if command else None,
        code=error.code,
        field=error.field,
        reason=error.reason,
    )


def malformed(error: msgspec.ValidationError | msgspec.DecodeError | RecursionError) -> Rejected:
    """The wire result of a message that does not decode as a command, naming the field at fault."""
    if isinstance(error, RecursionError):
        return Rejected(command_id=None, grievance_id=None, code="malformed", field="$",
                        reason="the JSON is nested too deeply to be a command")  # fmt: skip
    message = str(error)
    match = _AT_PATH.search(message)
    field = match.group(1) if match and match.group(1) else "$"
    reason = _AT_PATH.sub("", message) if match else message
    return Rejected(command_id=None, grievance_id=None, code="malformed", field=field, reason=reason)


def view(grievance: Grievance, now: datetime, *, reveal: bool = False, roster: RosterBook | None = None
         ) -> GrievanceView:  # fmt: skip
    """A grievance as the wire shows it; `overdue` is judged at `now`; the resident's name and phone masked
    unless `reveal`; with `roster`, its claimant as the roster stood at the claim."""
    g: Any = grievance
    then = None
    if roster is not None and g.claimant and g.claimed_at:
        try:
            entry = roster.as_it_stood(g.claimant, g.claimed_at)
        except BrokenHistory:
            entry = None  # the roster's record is damaged (verify names it): the grievance is shown all the same
        if entry is not None:
            shown = entry_view(entry)
            then = ClaimantThen(kind=shown.kind, unit_id=shown.unit_id, name=shown.name, on_roster=shown.on_roster)
    return GrievanceView(
        grievance_id=g.id,
        version=g.version,
        status=g.status.value,
        level=g.level.value,
        unit_id=g.unit_id,
        category=g.category.value,
        channel=g.channel.value,
        title=g.title,
        description=g.description,
        reported_unit=g.reported_unit,
        reported_by=g.reported_by,
        resident_id=g.resident_id if reveal else masked("resident_id", g.resident_id),
        resident_name=g.resident_name if reveal else masked("resident_name", g.resident_name),
        resident_phone=g.resident_phone if reveal else masked("resident_phone", g.resident_phone),
        reported_at=g.reported_at,
        path=list(g.path),
        claim_mode=g.claim_mode.value if g.claim_mode else None,
        claimant=g.claimant,
        claimed_at=g.claimed_at,
        claimant_then=then,
        due_at=g.due_at(),
        overdue=g.is_overdue(now),
        closed_at=g.closed_at,
        closing_text=g.closing_text,
        rating=g.rating.value if g.rating else None,
        reopen_count=g.reopen_count,
        progress_notes=g.progress_notes,
        recorded_at=g.modified_on,
    )


def envelope(domain_event: DomainEventProtocol[UUID], *, reveal: bool = True) -> EventEnvelope:
    """The envelope in which a stored event leaves the process; its personal fields masked unless `reveal` (the
    relay sends them sealed, as read)."""
    state: dict[str, Any] = vars(domain_event)
    if not reveal and (fields := getattr(type(domain_event), "personal_fields", ())):
        state = {**state, **{f: masked(f, state.get(f)) for f in fields}}
    grievance_id: UUID = state["originator_id"]
    version: int = state["originator_version"]
    return EventEnvelope(
        event_id=event_id(grievance_id, version),
        grievance_id=grievance_id,
        version=version,
        type=type(domain_event).__name__,
        schema_version=getattr(type(domain_event), "class_version", 1),
        occurred_at=state["occurred_at"],
        recorded_at=state["timestamp"],
        actor=state["actor"],
        command_id=state["command_id"],
        payload=msgspec.to_builtins({k: v for k, v in state.items() if k not in _ENVELOPE_FIELDS}),
    )


def event_id(grievance_id: UUID, version: int) -> UUID:
    """A stable id for the event at (grievance, version): the same however often it is sent."""
    return uuid5(EVENT_ID_NAMESPACE, f"{grievance_id}/{version}")
