"""The rules of the chain (DOMAIN.md), one test each, through the application's use cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from engine.commands import Claim, Command, Escalate, Report, Resolve
from engine.errors import (
    AlreadyReported,
    CommandIdReused,
    EscalationRefused,
    GrievanceNotFound,
    InvalidTransition,
    InvalidValue,
    NotClaimant,
    UnknownUnit,
    WrongLevel,
)
from engine.grievance import Category, Channel, ClaimMode, Status
from engine.levels import Level
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import BUILDING, CHAIN_OF_HOUSEHOLD, COMMUNITY, GRID, HOUSEHOLD, LEADING, STREET, Scenario


def stored_versions(chain: ServiceChain, s: Scenario) -> int:
    return len(list(chain.events.get(s.id)))


def test_a_reported_problem_waits_at_its_unit_with_a_claim_deadline(chain: ServiceChain) -> None:
    s = Scenario(chain)
    outcome = s.report()
    g = chain.grievance(s.id)
    assert (outcome.status, outcome.level, outcome.unit_id, outcome.version) == (
        Status.WAITING,
        Level.MEMBER_HOUSEHOLD,
        HOUSEHOLD,
        1,
    )
    assert g.claim_due == s.at + chain.limits[Level.MEMBER_HOUSEHOLD].claim


def test_reports_are_taken_only_at_the_lower_links(chain: ServiceChain) -> None:
    with pytest.raises(WrongLevel) as refused:
        Scenario(chain, unit_id=STREET).report()
    assert refused.value.field == "unit_id"
    with pytest.raises(UnknownUnit):
        Scenario(chain, unit_id="no-such-unit").report()
    Scenario(chain, unit_id=COMMUNITY).report()  # the one-stop counter takes reports


def test_claiming_names_the_mode_and_claimant_and_sets_a_finish_deadline(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.claim(mode="group", claimant="group-3")
    g = chain.grievance(s.id)
    assert (g.status, g.claim_mode, g.claimant) == (Status.CLAIMED, "group", "group-3")
    assert g.finish_due == s.at + chain.limits[Level.MEMBER_HOUSEHOLD].finish


def test_only_a_waiting_grievance_can_be_claimed_and_only_where_it_waits(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    with pytest.raises(InvalidValue) as wrong_unit:
        s.claim(unit_id=BUILDING)
    assert wrong_unit.value.field == "unit_id"
    s.claim()
    with pytest.raises(InvalidTransition) as twice:
        s.claim(claimant="member-zhao")
    assert twice.value.field == "status"
    assert stored_versions(chain, s) == 2


def test_escalation_moves_exactly_one_step_up_and_waits_there(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    for expected in CHAIN_OF_HOUSEHOLD[1:]:
        s.claim()
        outcome = s.escalate()
        assert (outcome.unit_id, outcome.status) == (expected, Status.WAITING)
    assert chain.grievance(s.id).path == CHAIN_OF_HOUSEHOLD


def test_nothing_escalates_past_the_leading_group(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.climb_to(LEADING)
    s.claim()
    with pytest.raises(EscalationRefused) as refused:
        s.escalate()
    assert refused.value.field == "to_unit_id"
    assert "leading group" in refused.value.reason


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (COMMUNITY, "skip a step"),
        (HOUSEHOLD, "moves down"),
        ("bg-chengxi-03-2-2", "sideways"),
        ("gr-chengxi-03-1", "not the parent"),
    ],
)
def test_escalation_never_skips_moves_down_or_sideways(chain: ServiceChain, target: str, words: str) -> None:
    s = Scenario(chain)
    s.report()
    s.claim()
    s.escalate(to_unit_id=BUILDING)
    s.claim()
    with pytest.raises(EscalationRefused, match=words):
        s.escalate(to_unit_id=target)
    assert chain.grievance(s.id).unit_id == BUILDING


def test_only_the_claimant_acts_on_a_claimed_grievance(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    with pytest.raises(InvalidTransition):
        s.resolve()  # not claimed yet
    s.claim()
    for act in (s.resolve, s.reply, s.escalate):
        with pytest.raises(NotClaimant) as refused:
            act(actor="member-zhao")
        assert refused.value.field == "actor"
    assert s.resolve().status is Status.RESOLVED


def test_supervision_escalates_only_once_the_limit_has_passed(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    with pytest.raises(EscalationRefused) as early:
        s.escalate(actor="supervision", reason="overdue")
    assert early.value.field == "reason"
    s.tick(hours=25)  # the household's claim limit is a day
    assert chain.grievance(s.id).is_overdue(s.at)
    assert s.escalate(actor="supervision", reason="overdue").unit_id == BUILDING


def test_a_reply_closes_without_counting_as_resolved(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.claim()
    assert s.reply().status is Status.REPLIED
    assert chain.grievance(s.id).closing_text == "Told the resident in person."


def test_rating_open_grievances_or_rating_twice_is_refused(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    with pytest.raises(InvalidTransition):
        s.rate("satisfied")
    s.claim()
    s.resolve()
    s.rate("basically_satisfied")
    with pytest.raises(InvalidTransition) as twice:
        s.rate("dissatisfied")
    assert twice.value.field == "rating"


def test_dissatisfied_reopens_at_the_level_that_closed_it(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.climb_to(GRID)
    s.claim()
    s.resolve()
    outcome = s.rate("dissatisfied")
    g = chain.grievance(s.id)
    assert (outcome.status, g.unit_id, g.reopen_count, g.rating) == (Status.WAITING, GRID, 1, None)
    assert [type(e).__name__ for e in chain.history(s.id)][-2:] == ["Rated", "Reopened"]
    s.claim()
    s.resolve()
    s.rate("satisfied")  # the new closure can be rated again


def test_a_repeated_command_returns_the_first_outcome_and_stores_nothing(chain: ServiceChain) -> None:
    s = Scenario(chain)
    report: dict[str, Any] = {
        "command_id": "phone-1",
        "actor": "worker-li",
        "occurred_at": T0,
        "unit_id": HOUSEHOLD,
        "category": "parking",
        "channel": "app",
        "title": "t",
        "description": "d",
    }
    first = chain.apply(Report(grievance_id=s.id, **report), principal=OPERATOR)
    chain.apply(
        Claim(
            grievance_id=s.id,
            command_id="phone-2",
            actor="m",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            mode=ClaimMode.MEMBER,
            claimant="m",
        ),
        principal=OPERATOR,
    )
    again = chain.apply(Report(grievance_id=s.id, **report), principal=OPERATOR)
    assert again.duplicate
    assert (again.version, again.status) == (first.version, first.status)
    assert stored_versions(chain, s) == 2
    with pytest.raises(CommandIdReused):
        chain.apply(
            Resolve(grievance_id=s.id, command_id="phone-2", actor="m", occurred_at=T0, summary="done"),
            principal=OPERATOR,
        )
    with pytest.raises(AlreadyReported):
        chain.apply(Report(grievance_id=s.id, **{**report, "command_id": "phone-3"}), principal=OPERATOR)


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("title", {"title": "   "}),
        ("title", {"title": "x" * 201}),
        ("description", {"description": "x" * 4001}),
        ("category", {"category": "weather"}),
        ("channel", {"channel": "carrier-pigeon"}),
    ],
)
def test_bad_text_and_vocabulary_are_refused_by_field(
    chain: ServiceChain, field: str, overrides: dict[str, str]
) -> None:
    s = Scenario(chain)
    with pytest.raises(InvalidValue) as refused:
        s.report(**overrides)
    assert refused.value.field == field
    with pytest.raises(GrievanceNotFound):
        chain.grievance(s.id)


def test_times_must_be_aware_not_in_the_future_and_not_before_the_last_event(chain: ServiceChain) -> None:
    s = Scenario(chain)
    with pytest.raises(InvalidValue, match="timezone"):
        chain.apply(
            Report(
                grievance_id=s.id,
                command_id="c",
                actor="w",
                occurred_at=T0.replace(tzinfo=None),
                unit_id=HOUSEHOLD,
                category=Category.OTHER,
                channel=Channel.APP,
                title="t",
                description="d",
            ),
            principal=OPERATOR,
        )
    with pytest.raises(InvalidValue, match="future"):
        chain.apply(
            Report(
                grievance_id=s.id,
                command_id="c",
                actor="w",
                occurred_at=chain.clock() + timedelta(hours=1),
                unit_id=HOUSEHOLD,
                category=Category.OTHER,
                channel=Channel.APP,
                title="t",
                description="d",
            ),
            principal=OPERATOR,
        )
    s.report()
    with pytest.raises(InvalidValue) as refused:
        chain.apply(
            Claim(
                grievance_id=s.id,
                command_id="late",
                actor="m",
                occurred_at=T0 - timedelta(days=1),
                unit_id=HOUSEHOLD,
                mode=ClaimMode.MEMBER,
                claimant="m",
            ),
            principal=OPERATOR,
        )
    assert refused.value.field == "occurred_at"


def test_malformed_ids_are_refused(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    with pytest.raises(InvalidValue) as refused:
        chain.apply(
            Claim(
                grievance_id=s.id,
                command_id=" padded ",
                actor="m",
                occurred_at=s.tick(),
                unit_id=HOUSEHOLD,
                mode=ClaimMode.MEMBER,
                claimant="m",
            ),
            principal=OPERATOR,
        )
    assert refused.value.field == "command_id"
    with pytest.raises(GrievanceNotFound):
        chain.apply(
            Claim(
                grievance_id=uuid4(),
                command_id="c",
                actor="m",
                occurred_at=s.tick(),
                unit_id=HOUSEHOLD,
                mode=ClaimMode.MEMBER,
                claimant="m",
            ),
            principal=OPERATOR,
        )


def test_a_batch_stores_the_good_commands_and_returns_each_error_in_place(chain: ServiceChain) -> None:

    a, b = Scenario(chain), Scenario(chain)
    batch: list[Command] = [
        Report(
            grievance_id=a.id,
            command_id="a1",
            actor="w",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            category=Category.OTHER,
            title="t",
            description="d",
        ),
        Claim(
            grievance_id=a.id,
            command_id="a2",
            actor="m",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            mode=ClaimMode.MEMBER,
            claimant="m",
        ),
        Resolve(grievance_id=b.id, command_id="b1", actor="m", occurred_at=T0, summary="x"),  # b was never reported
        Claim(
            grievance_id=a.id,
            command_id="a3",
            actor="z",
            occurred_at=T0,
            unit_id=HOUSEHOLD,
            mode=ClaimMode.MEMBER,
            claimant="z",
        ),
        Escalate(grievance_id=a.id, command_id="a4", actor="m", occurred_at=T0),
    ]
    results = chain.execute(batch, principal=OPERATOR)
    assert [type(r).__name__ for r in results] == [
        "Outcome",
        "Outcome",
        "GrievanceNotFound",
        "InvalidTransition",
        "Outcome",
    ]
    assert chain.grievance(a.id).version == 3
    assert chain.execute(batch, principal=OPERATOR)[4].duplicate  # type: ignore[union-attr]


def test_time_travel_by_version_and_by_time(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.claim()
    claimed_at = s.at
    s.escalate()
    assert chain.grievance(s.id, version=2).status is Status.CLAIMED
    assert chain.grievance_at(s.id, claimed_at, clock="occurred").version == 2
    assert chain.grievance_at(s.id, datetime.now(UTC)).version == 3  # by when the events were stored
    with pytest.raises(GrievanceNotFound):
        chain.grievance_at(s.id, T0 - timedelta(days=1), clock="occurred")
    with pytest.raises(InvalidValue):
        chain.grievance(s.id, version=9)
