"""Supervision (督办): escalates grievances that have passed their limit, through the application service.

Which grievances to look at comes from the dashboard views; whether one really is overdue is decided
by the Grievance aggregate from its own events, at the sweep's time. The command id names the grievance
and the version the sweep saw, so any number of sweeps, in any number of processes, escalate a
grievance at most once for each time it falls overdue: a second sweep's command is a repeat.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from adapters.view_store import DashboardViewsMixin
from engine.commands import Command, Outcome
from engine.errors import GrievanceError
from engine.service_chain import ServiceChain

SUPERVISOR = "supervision"


class Supervision:
    """Sweeps the overdue grievances below the leading group and escalates each one step."""

    def __init__(self, chain: ServiceChain, views: DashboardViewsMixin, *, batch: int = 500) -> None:
        self.chain = chain
        self.views = views
        self.batch = batch

    def candidates(self, now: datetime) -> list[tuple[str, int]]:
        """(grievance id, version) of open grievances the views show past their limit at `now`."""
        # The leading group is the top of the chain: its overdue grievances stay on its queue.
        sql = (
            "SELECT grievance_id, version FROM dash_grievance WHERE due_at < ? AND level <> 'leading_group' "
            "ORDER BY due_at, grievance_id LIMIT ?"
        ).replace("?", self.views.mark)
        with self.views.reading() as cursor:
            cursor.execute(sql, [int(now.timestamp()), self.batch])
            return [(r["grievance_id"], int(r["version"])) for r in cursor.fetchall()]

    def sweep(self, now: datetime) -> list[Outcome | GrievanceError]:
        """Escalate what is overdue at `now` (one batch); the results, in the candidates' order."""
        commands = [
            Command(
                "escalate",
                UUID(gid),
                f"{SUPERVISOR}:{gid}:v{version}",
                SUPERVISOR,
                now,
                {"reason": "overdue", "note": "督办: past its time limit"},
            )
            for gid, version in self.candidates(now)
        ]
        return self.chain.execute(commands) if commands else []
