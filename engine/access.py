"""Who may do what where: roles, the principal a command is sent by, and the one policy the application
applies to every command, whatever channel it came by. Channels only authenticate; this decides.

- grid worker: commands within their jurisdiction (their unit and everything below it: where a report or
  claim happens, or where the grievance has been), acting as themselves; reads there too;
- supervisor: reads their subtree of the chart, sends no commands;
- auditor: reads every grievance and every history, sends no commands;
- admin: everything, acting as themselves;
- operator: an operator at the store (the CLI) or a signed import, whose commands act as the actor they name
  and may bring history older than the time bounds allow;
- gateway: an app that authenticated its users itself (on Kafka, by its signing key): its commands act as the
  actor they name, anywhere, but within the time bounds and never escalating for lateness;
- system: the engine's own processes (supervision), which only escalate; only they (and operators) escalate a
  grievance for being overdue.

The roster (engine/roster.py) is kept by grid workers within their jurisdiction (the units an entry joins, moves
from and to, or leaves), by admins and by operators; everyone who reads a unit reads its roster, people's names
masked. A grid worker's token or key is issued to one of the chain's people on the roster; once they have left
it, what they send is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from engine.chart import OrgChart
from engine.commands import Claim, Command, Escalate, Rate, Report
from engine.errors import Forbidden, GrievanceNotFound
from engine.grievance import EscalationReason, Grievance, RatingSource


class Role(StrEnum):
    """What a principal is in the service chain."""

    GRID_WORKER = "grid_worker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"
    OPERATOR = "operator"
    GATEWAY = "gateway"
    SYSTEM = "system"
    # A resident who opened their own grievance with its receipt: they rate it, and do nothing else.
    RESIDENT = "resident"

    @property
    def sends_commands(self) -> bool:
        """Whether this role may send commands at all."""
        return self in _WRITERS

    @property
    def reads_everything(self) -> bool:
        """Whether this role's reads are not bounded by a jurisdiction."""
        return self in _READS_EVERYTHING

    @property
    def needs_unit(self) -> bool:
        """Whether a principal of this role must name the unit of their jurisdiction."""
        return self in (Role.GRID_WORKER, Role.SUPERVISOR)


_WRITERS = frozenset({Role.GRID_WORKER, Role.ADMIN, Role.OPERATOR, Role.GATEWAY, Role.SYSTEM, Role.RESIDENT})
# Who records a rating the office took on a callback (回访): the office, never the workers whose work it rates.
_RECORDS_CALLBACKS = frozenset({Role.ADMIN, Role.OPERATOR, Role.GATEWAY})
_READS_EVERYTHING = frozenset({Role.AUDITOR, Role.ADMIN, Role.OPERATOR, Role.GATEWAY, Role.SYSTEM})
# The actor a command names is believed only from these; everyone else acts as themselves.
_VOUCHES_FOR_ACTORS = frozenset({Role.OPERATOR, Role.GATEWAY})
_KEEPS_ROSTER = frozenset({Role.GRID_WORKER, Role.ADMIN, Role.OPERATOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a command or asks a question, as the channel authenticated them; `unit_id` is the root of
    their jurisdiction (grid workers and supervisors)."""

    name: str
    role: Role
    unit_id: str | None = None
    # May see residents' names and phones whole, each time with a reason, every reading recorded.
    reveals_personal_data: bool = False
    # A resident's one grievance: the one their receipt opened.
    grievance_id: UUID | None = None


SUPERVISION = Principal("supervision", Role.SYSTEM)


class PeopleOnRoster(Protocol):
    """Where the policy learns whether one of the chain's people has left the roster (the roster book)."""

    def left_roster(self, name: str) -> datetime | None:
        """When the entry `name` left the roster, if it has and not come back; None otherwise (or not on it)."""
        ...


class AccessPolicy:
    """Roles and jurisdiction on the organisation chart: the one place that decides who may do what where."""

    def __init__(self, chart: OrgChart) -> None:
        self.chart = chart
        # The roster, once the roster book sets itself here: grid workers who left it send nothing more.
        self.people: PeopleOnRoster | None = None

    def may_hold_receipt(self, principal: Principal, report: Report, reported_by: str) -> bool:
        """Whether a report's sender is given its resident's receipt, which opens the resident's page and rates as
        the resident: the resident's own channel (a gateway) and the store's operators are; a grid worker who
        reported it for a resident only where no phone is known to send it to (they hand it over), so that those
        who work a grievance cannot rate it as its resident; nobody else (a repeat of another's report) ever."""
        if principal.role in (Role.GATEWAY, Role.OPERATOR):
            return True
        if principal.name != reported_by:
            return False
        return report.resident is None or not report.resident.phone

    def check_sender(self, principal: Principal) -> None:
        """Refuse (`Forbidden`, field `actor`) everything a grid worker sends once they have left the roster: their
        token or key was issued to one of the chain's people, and acts no more. Checked once per batch."""
        if principal.role is not Role.GRID_WORKER or self.people is None:
            return
        left = self.people.left_roster(principal.name)
        if left is not None:
            raise Forbidden("actor", f"{principal.name!r} left the roster on {left:%Y-%m-%d}: a grid worker's token "
                            "or key acts only while its holder is on it")  # fmt: skip

    def covers(self, principal: Principal, unit_id: str) -> bool:
        """Whether `unit_id` is the principal's unit or below it (everything, for those who read everything)."""
        if principal.role.reads_everything:
            return True
        if principal.unit_id is None or unit_id not in self.chart:
            return False
        return principal.unit_id in self.chart.lineage(unit_id)

    def covers_any(self, principal: Principal, unit_ids: Iterable[str]) -> bool:
        """Whether any of the units is within the principal's jurisdiction."""
        if principal.role.reads_everything:
            return True
        return any(self.covers(principal, u) for u in unit_ids)

    def may_reveal(self, principal: Principal) -> bool:
        """Whether the principal may see residents' personal data whole (masked for everyone else): a separate
        permission, or an operator at the store."""
        return principal.reveals_personal_data or principal.role is Role.OPERATOR

    def may_read_disclosures(self, principal: Principal) -> bool:
        """Whether the principal reads the record of who saw personal data whole: auditors and admins."""
        return principal.role in (Role.AUDITOR, Role.ADMIN, Role.OPERATOR)

    def may_read_grievance(self, principal: Principal, grievance: Grievance) -> bool:
        """Readers see a grievance that passed through their subtree (a street sees its residents' grievance
        even after it climbed above the street)."""
        return self.covers_any(principal, [*grievance.path, grievance.unit_id])

    def check(self, principal: Principal, command: Command, grievance: Grievance | None) -> None:
        """Refuse (`Forbidden`) a command the principal may not send: by role, as another actor, or outside
        their jurisdiction. `grievance` is its grievance as it stands (None if not reported yet)."""
        role = principal.role
        if not role.sends_commands:
            raise Forbidden("role", f"a {role.value} may not send commands")
        if isinstance(command, Rate) or role is Role.RESIDENT:
            self._check_rating(principal, command)
            if role is Role.RESIDENT:
                return
        if role is Role.SYSTEM and not isinstance(command, Escalate):
            raise Forbidden("kind", f"{principal.name} only escalates; it may not send a {command.kind}")
        if (
            isinstance(command, Escalate)
            and command.reason == EscalationReason.OVERDUE
            and role not in (Role.SYSTEM, Role.OPERATOR)
        ):
            raise Forbidden("reason", "only supervision (督办) escalates a grievance for being overdue")
        if role not in _VOUCHES_FOR_ACTORS and command.actor != principal.name:
            raise Forbidden("actor", f"{principal.name!r} may not act as {command.actor!r}")
        # An unknown unit is for the aggregate to refuse, naming it.
        unit = command.unit_id if isinstance(command, Report | Claim) else None
        if unit is not None and unit in self.chart and not self.covers(principal, unit):
            raise Forbidden("unit_id", f"{unit} is outside your jurisdiction ({principal.unit_id})")
        if (
            grievance is not None
            and not isinstance(command, Report)
            and not self.may_read_grievance(principal, grievance)
        ):
            # Answered as an unknown grievance is (after the unit, which both are checked by): whether a grievance
            # exists outside one's jurisdiction is not one's to learn.
            raise GrievanceNotFound("grievance_id", f"no grievance {command.grievance_id}")

    def _check_rating(self, principal: Principal, command: Command) -> None:
        """Ratings count only from residents: the resident's own, on the grievance their receipt opened, or one
        the office took on a callback (回访), or an operator's import of either."""
        role = principal.role
        if role is Role.RESIDENT:
            if not isinstance(command, Rate) or command.given_by != RatingSource.RESIDENT:
                raise Forbidden("kind", "a resident rates their own grievance; they send nothing else")
            if command.actor != principal.name:
                raise Forbidden("actor", f"{principal.name!r} may not act as {command.actor!r}")
            if command.grievance_id != principal.grievance_id:
                raise GrievanceNotFound("grievance_id", f"no grievance {command.grievance_id}")
            return
        assert isinstance(command, Rate)
        if command.given_by == RatingSource.RESIDENT and role is not Role.OPERATOR:
            raise Forbidden("given_by", "only the resident, with their receipt, gives a resident's own rating; "
                                        "the office records what a resident said on a callback (回访)")  # fmt: skip
        if command.given_by != RatingSource.RESIDENT and role not in _RECORDS_CALLBACKS:
            raise Forbidden("role", f"a {role.value} may not rate: ratings come from the resident, or from "
                                    "the office's callback (回访), never from those whose work they rate")  # fmt: skip

    def check_roster(self, principal: Principal, actor: str, unit_ids: Iterable[str]) -> None:
        """Refuse (`Forbidden`) a change to the roster the principal may not make: by role, as another actor, or
        at a unit outside their jurisdiction (an unknown unit is for the roster to refuse, naming it)."""
        role = principal.role
        if role not in _KEEPS_ROSTER:
            raise Forbidden("role", f"a {role.value} may not change the roster")
        self.check_sender(principal)
        if role is not Role.OPERATOR and actor != principal.name:
            raise Forbidden("actor", f"{principal.name!r} may not act as {actor!r}")
        for unit in unit_ids:
            if unit in self.chart and not self.covers(principal, unit):
                raise Forbidden("unit_id", f"{unit} is outside your jurisdiction ({principal.unit_id})")
