"""Who rated: the resident with their receipt, or the office on a callback (回访); never the hands that did the
work, and never a grid worker; old ratings read as 'recorded'."""

from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from engine.access import Principal, Role
from engine.commands import Outcome, Rate
from engine.errors import Forbidden, GrievanceNotFound, OwnWork
from engine.grievance import Grievance, Rating, RatingSource, Status
from engine.service_chain import ServiceChain
from engine.transcoder import MsgspecTranscoder
from tests.conftest import OPERATOR
from tests.scenario import HOUSEHOLD, Scenario

OFFICE = Principal("office-zhao", Role.ADMIN)


def _resolved(chain: ServiceChain) -> Scenario:
    s = Scenario(chain)
    s.report()
    s.claim()
    s.resolve()
    return s


def _rate(s: Scenario, actor: str, given_by: RatingSource, who: Principal, rating: str = "satisfied") -> Outcome:
    return s.chain.apply(
        Rate(grievance_id=s.id, command_id=str(uuid4()), actor=actor, occurred_at=s.tick(), rating=Rating(rating),
             given_by=given_by),
        principal=who,
    )  # fmt: skip


@pytest.mark.parametrize(("actor", "did"), [("worker-li", "reported"), ("member-wang", "claimed")])
def test_whoever_reported_or_claimed_it_may_not_rate_it_on_a_callback(chain: ServiceChain, actor: str,
                                                                        did: str) -> None:  # fmt: skip
    s = _resolved(chain)
    with pytest.raises(OwnWork) as refused:
        _rate(s, actor, RatingSource.CALLBACK, OPERATOR)
    assert refused.value.field == "actor"
    assert f"{actor!r} {did} this grievance" in refused.value.reason
    assert chain.grievance(s.id).rating is None


def test_whoever_escalated_it_on_the_way_up_has_worked_on_it(chain: ServiceChain) -> None:
    s = Scenario(chain)
    s.report()
    s.claim("member-sun")
    s.escalate("member-sun")
    s.claim()
    s.resolve()
    with pytest.raises(OwnWork, match="'member-sun' claimed"):
        _rate(s, "member-sun", RatingSource.CALLBACK, OPERATOR)


def test_a_grid_worker_may_not_rate_even_a_grievance_that_only_passed_through_their_grid(chain: ServiceChain) -> None:
    s = _resolved(chain)
    worker = Principal("worker-zhou", Role.GRID_WORKER, unit_id=HOUSEHOLD)
    with pytest.raises(Forbidden) as refused:
        _rate(s, "worker-zhou", RatingSource.CALLBACK, worker)
    assert refused.value.field == "role"
    assert "grid_worker may not rate" in refused.value.reason


def test_only_the_resident_gives_a_residents_own_rating(chain: ServiceChain) -> None:
    s = _resolved(chain)
    with pytest.raises(Forbidden) as refused:
        _rate(s, "office-zhao", RatingSource.RESIDENT, OFFICE)
    assert refused.value.field == "given_by"
    resident = Principal("resident", Role.RESIDENT, grievance_id=s.id)
    outcome = _rate(s, "resident", RatingSource.RESIDENT, resident)
    g = chain.grievance(s.id)
    assert g.rating is Rating.SATISFIED
    assert g.rating_given_by is RatingSource.RESIDENT
    assert outcome.status is Status.RESOLVED


def test_a_resident_rates_only_the_grievance_their_receipt_opened_and_does_nothing_else(chain: ServiceChain) -> None:
    mine, theirs = _resolved(chain), _resolved(chain)
    resident = Principal("resident", Role.RESIDENT, grievance_id=mine.id)
    with pytest.raises(GrievanceNotFound):
        _rate(theirs, "resident", RatingSource.RESIDENT, resident)
    with pytest.raises(Forbidden, match="send nothing else"):
        _rate(mine, "resident", RatingSource.CALLBACK, resident)
    with pytest.raises(Forbidden, match="act as"):
        _rate(mine, "office-zhao", RatingSource.RESIDENT, resident)
    assert chain.grievance(mine.id).rating is None
    assert chain.grievance(theirs.id).rating is None


def test_the_office_records_a_callback_under_the_callers_name(chain: ServiceChain) -> None:
    s = _resolved(chain)
    _rate(s, "office-zhao", RatingSource.CALLBACK, OFFICE, "dissatisfied")
    rated = [e for e in chain.history(s.id) if isinstance(e, Grievance.Rated)]
    assert [(e.actor, e.given_by) for e in rated] == [("office-zhao", RatingSource.CALLBACK)]
    assert chain.grievance(s.id).status is Status.WAITING  # dissatisfied reopens, whoever took it down


def test_a_rating_stored_before_ratings_said_how_reads_as_recorded(chain: ServiceChain) -> None:
    s = _resolved(chain)
    _rate(s, "office-zhao", RatingSource.CALLBACK, OFFICE)
    stored = chain.recorder.select_events(s.id)
    last = stored[-1]
    state = MsgspecTranscoder().decode(last.state)
    del state["given_by"]
    state.pop("class_version", None)
    old = StoredEvent(originator_id=last.originator_id, originator_version=last.originator_version, topic=last.topic,
                      state=MsgspecTranscoder().encode(state))  # fmt: skip
    other = uuid4()
    chain.recorder.insert_events([StoredEvent(originator_id=other, originator_version=e.originator_version,
                                              topic=e.topic, state=e.state) for e in stored[:-1]]
                                 + [StoredEvent(originator_id=other, originator_version=old.originator_version,
                                                topic=old.topic, state=old.state)])  # fmt: skip
    g = chain.grievance(other)
    assert g.rating is Rating.SATISFIED
    assert g.rating_given_by is RatingSource.RECORDED
    assert Grievance.Rated.class_version == 2


def test_recorded_is_for_reading_old_ratings_only(chain: ServiceChain) -> None:
    s = _resolved(chain)
    with pytest.raises(Exception, match="given_by"):
        _rate(s, "office-zhao", RatingSource.RECORDED, OFFICE)
