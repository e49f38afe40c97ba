"""One event never stops the read side: what the views cannot read or project is set aside, with its place in
the log and its error, and the rest is counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.composition import (
    build_chain,
    build_dashboard,
    build_projection,
    build_views_watch,
)
from adapters.rebuild_parts import ProcessParts
from adapters.settings import Settings
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.errors import InvalidValue
from engine.grievance import Category, Channel, Grievance
from engine.limits import TimeLimits
from engine.service_chain import ServiceChain
from projections.dashboard import runner
from projections.dashboard.queries import Dashboard
from tests.conftest import T0
from tests.scenario import HOUSEHOLD, Scenario

YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


def stored_before_the_bounds(yongji: OrgChart, at: datetime) -> Grievance:
    """A report from year 1, as an older version of the engine (which bounded no times) could store one."""
    return Grievance.report(
        uuid4(),
        unit=yongji.unit(HOUSEHOLD),
        category=Category.OTHER,
        channel=Channel.APP,
        title="t",
        description="d",
        limits=TimeLimits(),
        actor="w",
        at=at,
        command_id="old",
    )


def test_an_event_the_views_cannot_read_or_project_is_set_aside_and_the_rest_counted(
    database_url: str, yongji: OrgChart, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url)
    chain = build_chain(settings, clock=PlaybackClock(T0))
    try:
        projection = build_projection(settings, chain)
        good = Scenario(chain)
        good.report()
        bad = stored_before_the_bounds(yongji, YEAR_ONE)
        chain.events.put(bad.collect_events())
        bad.claim(unit_id=HOUSEHOLD, mode="member", claimant="m", limits=TimeLimits(), actor="m",
                  at=YEAR_ONE + timedelta(hours=1), command_id="old-claim")  # fmt: skip
        chain.events.put(bad.collect_events())
        chain.recorder.insert_events(
            [
                StoredEvent(
                    originator_id=uuid4(),
                    originator_version=1,
                    topic="engine.grievance:Grievance.Reported",
                    state=b"{not json",
                )
            ]
        )
        after = Scenario(chain, at=T0 + timedelta(hours=5))
        after.report()
        after.claim()

        projection.catch_up()  # returns: nothing stops it

        health = build_views_watch(projection).health()
        assert health.backlog == 0
        assert health.set_aside == 3
        reasons = {s.event: s.error for s in health.latest_set_aside}
        assert "cannot be read" in reasons["Reported"] or "Error" in reasons["Reported"]
        assert [s.position for s in health.latest_set_aside] == sorted(
            (s.position for s in health.latest_set_aside), reverse=True
        )
        assert {s.grievance_id for s in health.latest_set_aside} >= {str(bad.id)}
        counts = projection.views.rows_of([good.id, after.id, bad.id])
        assert set(counts) == {good.id, after.id}
        # A rebuild sets them aside again, and counts the same.
        projection.rebuild()
        again = build_views_watch(projection).health()
        assert (again.set_aside, again.backlog) == (3, 0)
        # And so does a rebuild in parts, whichever process each of them falls to.
        monkeypatch.setattr(runner, "PARTED_REBUILD_EVENTS", 0)
        projection.rebuild(elsewhere=ProcessParts(settings, 2, page_size=2))
        parted = build_views_watch(projection).health()
        assert (parted.set_aside, parted.backlog) == (3, 0)
        assert {s.position for s in parted.latest_set_aside} == {s.position for s in health.latest_set_aside}
        assert set(projection.views.rows_of([good.id, after.id, bad.id])) == {good.id, after.id}
    finally:
        chain.close()


@pytest.mark.parametrize("at", [YEAR_ONE, datetime(1999, 12, 31, 22, tzinfo=UTC)])
def test_times_no_calendar_downstream_should_meet_are_refused_at_the_door(at: datetime, chain: ServiceChain) -> None:
    """Even an operator's historic import (as Scenario sends) is refused these."""
    with pytest.raises(InvalidValue) as refused:
        Scenario(chain, at=at).report()
    assert refused.value.field == "occurred_at"


def test_a_rebuild_never_leaves_the_views_emptier_than_before_it_began(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    chain = build_chain(settings, clock=PlaybackClock(T0))
    try:
        projection = build_projection(settings, chain, page_size=7)
        for i in range(40):
            s = Scenario(chain, at=T0 + timedelta(minutes=i))
            s.report()
            s.claim()
        projection.catch_up()
        dashboard = build_dashboard(settings, projection.views, chain.chart)
        before = dashboard.counts()
        seen = []

        def meanwhile(_events: int, _position: int) -> None:
            seen.append(Dashboard(projection.views, chain.chart).counts())  # as a supervisor reads, uncached

        assert projection.rebuild(on_page=meanwhile) == 80
        assert len(seen) > 5
        assert all(counts == before for counts in seen)
        assert Dashboard(projection.views, chain.chart).counts() == before
        # The runner follows on from the rebuilt views, and a second rebuild finds nothing of the first in its way.
        later = Scenario(chain, at=T0 + timedelta(hours=3))
        later.report()
        assert projection.catch_up() == 1
        assert projection.rebuild() == 81
    finally:
        chain.close()
