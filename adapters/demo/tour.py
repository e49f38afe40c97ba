"""A guided tour: one resident's problem played through the chain with the public commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from engine import commands as c
from engine.grievance import Category, Channel, ClaimMode, Rating, RatingSource


def tour_commands(household: str, building: str, now: datetime | None = None) -> Iterator[tuple[str, c.Command]]:
    """(what happens, the command) for a grievance that climbs one step, is answered, reopened and solved."""
    gid = uuid4()
    at = (now or datetime.now(UTC)) - timedelta(days=6)

    def step(hours: float) -> dict[str, Any]:
        nonlocal at
        at += timedelta(hours=hours)
        return {"grievance_id": gid, "command_id": str(uuid4()), "occurred_at": at}

    yield (
        "A grid worker reports a broken stairwell lamp at a model household",
        c.Report(
            **step(0),
            actor="worker-li",
            unit_id=household,
            category=Category.SAFETY,
            channel=Channel.WECHAT_GROUP,
            title="Stairwell lamp broken",
            description="Building 1, unit 2: dark for a week; an elderly resident fell.",
            resident=c.Resident(resident_id="res-tour-li", name="李桂兰", phone="13800001111"),
        ),
    )
    yield (
        "The household's party member claims it",
        c.Claim(**step(2), actor="member-wang", unit_id=household, mode=ClaimMode.MEMBER, claimant="member-wang"),
    )
    yield (
        "It needs the building's wiring fixed: escalated one step up",
        c.Escalate(**step(3), actor="member-wang", note="Wiring is the building's, not one household's."),
    )
    yield (
        "The building party group claims it",
        c.Claim(
            **step(1), actor="group-leader-zhao", unit_id=building, mode=ClaimMode.GROUP, claimant="building-group"
        ),
    )
    yield (
        "The group replies: the property firm must order the part",
        c.Reply(
            **step(20),
            actor="group-leader-zhao",
            reason="The fitting is out of stock at the property firm.",
            answer="Told the resident a temporary lamp goes up today and the fitting comes within a week.",
        ),
    )
    yield (
        "The resident is dissatisfied: it reopens at the building",
        c.Rate(
            **step(4),
            actor="resident",
            rating=Rating.DISSATISFIED,
            comment="Still dark at night.",
            given_by=RatingSource.RESIDENT,
        ),
    )
    yield (
        "The group claims it again",
        c.Claim(
            **step(1), actor="group-leader-zhao", unit_id=building, mode=ClaimMode.GROUP, claimant="building-group"
        ),
    )
    yield (
        "and resolves it",
        c.Resolve(**step(30), actor="group-leader-zhao", summary="New fitting installed with the property firm."),
    )
    yield (
        "The resident is satisfied, on the office's callback (回访)",
        c.Rate(**step(2), actor="hotline-office", rating=Rating.SATISFIED, given_by=RatingSource.CALLBACK),
    )
