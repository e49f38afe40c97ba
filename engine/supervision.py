"""Supervision (督办): escalates grievances that have passed their limit, through the application service.

Which grievances to look at is a question for a read model (the dashboard's, in practice); whether one
really is overdue is decided by the Grievance aggregate from its own events, at the sweep's time. The
command id names the grievance and the version the sweep saw, so any number of sweeps, in any number of
processes, escalate a grievance at most once for each time it falls overdue: a second sweep's command is
a repeat. Supervision sends as the engine's own principal, which may only escalate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from engine.access import SUPERVISION
from engine.commands import Escalate, Outcome
from engine.errors import GrievanceError
from engine.grievance import EscalationReason
from engine.service_chain import ServiceChain

NOTE = "督办: past its time limit"


class OverdueGrievances(Protocol):
    """The read model's answer to supervision's one question."""

    def overdue_below_the_top(self, now: datetime, *, limit: int) -> list[tuple[UUID, int]]:
        """(grievance id, version) of open grievances past their limit at `now` that can still climb."""
        ...


def escalation_of(grievance_id: UUID, version: int, now: datetime) -> Escalate:
    """The command that escalates a grievance seen overdue at `version`: the same for every sweep that saw it."""
    return Escalate(
        command_id=f"{SUPERVISION.name}:{grievance_id}:v{version}",
        grievance_id=grievance_id,
        actor=SUPERVISION.name,
        occurred_at=now,
        reason=EscalationReason.OVERDUE,
        note=NOTE,
    )


class Supervision:
    """Sweeps the overdue grievances below the leading group and escalates each one step."""

    def __init__(self, chain: ServiceChain, overdue: OverdueGrievances, *, batch: int = 500) -> None:
        self.chain = chain
        self.overdue = overdue
        self.batch = batch

    def sweep(self) -> list[Outcome | GrievanceError]:
        """Escalate what is overdue now, by the chain's clock (one batch); the results, in the order the read
        model gave them."""
        now = self.chain.clock()
        commands = [escalation_of(gid, version, now) for gid, version in self.overdue.overdue_below_the_top(
            now, limit=self.batch)]  # fmt: skip
        return self.chain.execute(commands, principal=SUPERVISION) if commands else []
