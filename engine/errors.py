"""Typed errors, in two families that every adapter catches once.

- `GrievanceError`: a command or a question was refused; nothing was stored. Each names the field at fault
  and the reason, so every channel can say so.
- `InfrastructureError`: the process cannot do its work as configured, or its store kept failing. A
  `ConfigurationError` names the setting, chart, token file or storage URL at fault.
"""

from __future__ import annotations


class GrievanceError(Exception):
    """A command was refused; nothing was stored. `code` is stable for clients, `field` names the input."""

    code = "invalid"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidValue(GrievanceError):
    """A value is malformed, out of range, or of the wrong kind."""

    code = "invalid_value"


class UnknownUnit(GrievanceError):
    """A unit id names no unit of the organisation chart."""

    code = "unknown_unit"


class WrongLevel(GrievanceError):
    """A unit exists but sits at a level where this cannot happen."""

    code = "wrong_level"


class GrievanceNotFound(GrievanceError):
    """No grievance has been reported under this id."""

    code = "not_found"


class AlreadyReported(GrievanceError):
    """A different command already reported a grievance under this id."""

    code = "already_reported"


class InvalidTransition(GrievanceError):
    """The grievance is not in a state that allows this command (claiming a claimed one, say)."""

    code = "invalid_transition"


class NotClaimant(GrievanceError):
    """Only the claimant, or whoever recorded the claim, may act on a claimed grievance."""

    code = "not_claimant"


class OwnWork(GrievanceError):
    """Whoever reported, claimed or worked on a grievance may not rate it: its rating is the resident's."""

    code = "own_work"


class EscalationRefused(GrievanceError):
    """An escalation would skip a step, move down, pass the leading group, or is not yet due."""

    code = "escalation_refused"


class CommandIdReused(GrievanceError):
    """A command id already used for a different kind of command on this grievance."""

    code = "command_id_reused"


class Forbidden(GrievanceError):
    """The principal's role or jurisdiction does not cover this command (engine.access)."""

    code = "forbidden"


class UnknownResident(GrievanceError):
    """No report has ever named this resident: there is nothing of theirs to erase."""

    code = "unknown_resident"


class NotOnRoster(GrievanceError):
    """A claimant is not on the roster of the unit where the grievance waits (engine.roster_rules)."""

    code = "not_on_roster"


class ClaimModeMismatch(GrievanceError):
    """The claim's mode does not match what the claimant is: member, party group or organisation."""

    code = "claim_mode_mismatch"


class DoesNotActFor(GrievanceError):
    """The claim's actor may not claim for its claimant: a member claims for themselves, a body through one of the
    representatives the roster names for it."""

    code = "does_not_act_for"


class RosterEntryNotFound(GrievanceNotFound):
    """No one and nothing has joined the roster under this id."""

    code = "not_found"


class RosterIdTaken(GrievanceError):
    """A roster id is already on the roster (ids are stable and never reused for someone else)."""

    code = "roster_id_taken"


class BrokenHistory(GrievanceError):
    """A grievance's stored events no longer replay: one is missing, out of order or unreadable. Nothing is
    decided on it; `grievance verify` names every broken link."""

    code = "broken_history"

    def __init__(self, grievance_id: object, version: int, reason: str) -> None:
        super().__init__(
            "grievance_id",
            f"grievance {grievance_id}'s stored history is broken at version {version}: {reason} "
            f"(`grievance verify {grievance_id}` checks every link)",
        )
        self.grievance_id = grievance_id
        self.version = version


class InfrastructureError(Exception):
    """The process cannot do its work: a setting is wrong, or the store kept failing."""


class ConfigurationError(InfrastructureError, ValueError):
    """A setting, the organisation chart, the token file or a storage URL is wrong; the message names which."""


class ConcurrentWriteConflict(InfrastructureError):
    """Other writers kept winning the race for the same grievances; the batch was not stored."""


class ChartError(ConfigurationError):
    """The organisation chart is invalid; the message names the unit at fault."""

    def __init__(self, unit_id: str, reason: str) -> None:
        super().__init__(f"unit {unit_id!r}: {reason}")
        self.unit_id = unit_id
        self.reason = reason
