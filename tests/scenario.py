"""Test vocabulary: a grid worker's day in the Yongji chart, in a few words."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from engine.clock import PlaybackClock
from engine.commands import Claim, Outcome, Rate, RecordProgress, Reply, Resolve
from engine.grievance import ClaimMode, Rating
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0, command

HOUSEHOLD = "mh-chengxi-03-2-1-1"
BUILDING = "bg-chengxi-03-2-1"
GRID = "gr-chengxi-03-2"
COMMUNITY = "cm-chengxi-03"
JOINT = "jc-chengxi-03"
STREET = "st-chengxi"
LEADING = "lg"
CHAIN_OF_HOUSEHOLD = [HOUSEHOLD, BUILDING, GRID, COMMUNITY, JOINT, STREET, LEADING]


class Scenario:
    """Drives one grievance through the chain with fresh command ids and a clock that moves forward."""

    def __init__(self, chain: ServiceChain, unit_id: str = HOUSEHOLD, at: datetime = T0) -> None:
        self.chain = chain
        self.at = at
        self.id: UUID = uuid4()
        self.unit_id = unit_id

    def tick(self, hours: float = 1) -> datetime:
        """Move on `hours`, and the chain's clock with it when the test gave it one."""
        self.at += timedelta(hours=hours)
        if isinstance(self.chain.clock, PlaybackClock):
            self.chain.clock.set(self.at)
        return self.at

    def report(self, **overrides: str) -> Outcome:
        fields = {
            "unit_id": self.unit_id,
            "category": "parking",
            "channel": "wechat_group",
            "title": "Cars block the fire lane",
            "description": "Every night since May.",
        }
        fields.update(overrides)
        report = command("report", grievance_id=self.id, command_id=str(uuid4()), actor="worker-li",
                         occurred_at=self.tick(), **fields)  # fmt: skip
        return self.chain.apply(report, principal=OPERATOR)

    def claim(self, claimant: str = "member-wang", unit_id: str | None = None, mode: str = "member") -> Outcome:
        unit = unit_id or self.chain.grievance(self.id).unit_id
        return self.chain.apply(
            Claim(
                grievance_id=self.id,
                command_id=str(uuid4()),
                actor=claimant,
                occurred_at=self.tick(),
                unit_id=unit,
                mode=ClaimMode(mode),
                claimant=claimant,
            ),
            principal=OPERATOR,
        )

    def escalate(self, actor: str = "member-wang", **kw: str) -> Outcome:
        escalate = command("escalate", grievance_id=self.id, command_id=str(uuid4()), actor=actor,
                           occurred_at=self.tick(), **kw)  # fmt: skip
        return self.chain.apply(escalate, principal=OPERATOR)

    def resolve(self, actor: str = "member-wang") -> Outcome:
        return self.chain.apply(
            Resolve(
                grievance_id=self.id,
                command_id=str(uuid4()),
                actor=actor,
                occurred_at=self.tick(),
                summary="Painted the lane and posted a notice.",
            ),
            principal=OPERATOR,
        )

    def reply(self, actor: str = "member-wang") -> Outcome:
        return self.chain.apply(
            Reply(
                grievance_id=self.id,
                command_id=str(uuid4()),
                actor=actor,
                occurred_at=self.tick(),
                reason="The land belongs to the railway.",
                answer="Told the resident in person.",
            ),
            principal=OPERATOR,
        )

    def rate(self, rating: str, actor: str = "office-zhao") -> Outcome:
        return self.chain.apply(
            Rate(
                grievance_id=self.id,
                command_id=str(uuid4()),
                actor=actor,
                occurred_at=self.tick(),
                rating=Rating(rating),
            ),
            principal=OPERATOR,
        )

    def climb_to(self, unit_id: str) -> None:
        """Claim and escalate until the grievance waits at `unit_id`."""
        while self.chain.grievance(self.id).unit_id != unit_id:
            self.claim()
            self.escalate()

    def answered_then_reopened(self, close: str = "reply") -> UUID:
        """Seven events: reported, claimed, escalated one step, claimed there, replied (or resolved), rated
        dissatisfied, reopened; the grievance's id."""
        self.report()
        self.claim()
        self.escalate()
        self.claim()
        self.reply() if close == "reply" else self.resolve()
        self.rate("dissatisfied")
        return self.id


def claimed(chain: ServiceChain) -> UUID:
    """A grievance reported and claimed at the household, early on T0's day: its id."""
    scenario = Scenario(chain, at=T0.replace(hour=0))
    scenario.report()
    scenario.claim()
    return scenario.id


def notes(chain: ServiceChain, gid: UUID, n: int, start: int = 0) -> None:
    """`n` progress notes on a claimed grievance in one batch, command ids n`start`…; a refusal is raised."""
    batch = [RecordProgress(grievance_id=gid, command_id=f"n{start + i}", actor="member-wang", occurred_at=T0, note="n")
             for i in range(n)]  # fmt: skip
    for result in chain.execute(batch, principal=OPERATOR):
        if isinstance(result, Exception):
            raise result
