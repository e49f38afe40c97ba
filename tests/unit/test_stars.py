"""Star ratings from a year's volunteer points (projections/stars.py): a claim counts in its year, a closure and a
rating in theirs, each to whoever claimed the grievance then; thresholds configurable, refused when they do not
rise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from adapters.settings import Settings
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Claim, Escalate, Rate, Report, Resolve
from engine.errors import ConfigurationError
from engine.grievance import Category, ClaimMode, Rating
from engine.service_chain import ServiceChain
from projections.dashboard.changes import REPORTING_TZ
from projections.stars import DEFAULT_THRESHOLDS, StarThresholds, yearly_points
from tests.conftest import OPERATOR

HOUSEHOLD = "mh-chengdong-01-1-1-1"
NEW_YEAR = datetime(2021, 1, 1, tzinfo=REPORTING_TZ)


def test_a_year_s_points_go_to_whoever_claimed_the_grievance_then(yongji: OrgChart) -> None:
    clock = PlaybackClock(NEW_YEAR - timedelta(days=2))
    chain = ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=clock)
    gid, n = uuid4(), iter(range(100))

    def send(kind: Any, at: datetime, **fields: Any) -> None:
        clock.set(at)
        chain.apply(kind(command_id=f"c{next(n)}", grievance_id=gid, actor=fields.pop("actor", "op"), occurred_at=at,
                         **fields), principal=OPERATOR)  # fmt: skip

    late_2020 = NEW_YEAR - timedelta(days=1)
    send(Report, late_2020, unit_id=HOUSEHOLD, category=Category.OTHER, title="t", description="d")
    send(Claim, late_2020, unit_id=HOUSEHOLD, mode=ClaimMode.MEMBER, claimant="m-1", actor="m-1")
    send(Escalate, late_2020 + timedelta(hours=1), actor="m-1")
    building = chain.grievance(gid).unit_id
    send(Claim, NEW_YEAR + timedelta(hours=1), unit_id=building, mode=ClaimMode.GROUP, claimant="g-1", actor="g-1")
    send(Resolve, NEW_YEAR + timedelta(hours=2), summary="done", actor="g-1")
    send(Rate, NEW_YEAR + timedelta(hours=3), rating=Rating.SATISFIED, actor="office-zhao")
    events = [chain.mapper.to_domain_event(s) for s in chain.recorder.select_notifications(start=1, limit=100)]
    in_2020 = {y.claimant: (y.mode, y.points, dict(y.counts)) for y in yearly_points(events, 2020)}
    in_2021 = {y.claimant: (y.mode, y.points, dict(y.counts)) for y in yearly_points(events, 2021)}
    assert in_2020 == {"m-1": ("member", 1, {"claims": 1})}
    assert in_2021 == {"g-1": ("group", 16, {"claims": 1, "resolved": 1, "satisfied": 1})}
    chain.close()


def test_stars_rise_with_the_thresholds_and_settings_name_bad_ones() -> None:
    stars = StarThresholds()
    assert stars.points == DEFAULT_THRESHOLDS
    assert [stars.stars(p) for p in (0, 9, 10, 59, 60, 150, 10_000)] == [0, 0, 1, 2, 3, 5, 5]
    assert Settings.from_env({"GRIEVANCE_STAR_THRESHOLDS": "5,50"}).star_thresholds.stars(49) == 1
    for bad in ("50,5", "0,10", "a", "10,10"):
        with pytest.raises(ConfigurationError, match="GRIEVANCE_STAR_THRESHOLDS"):
            Settings.from_env({"GRIEVANCE_STAR_THRESHOLDS": bad})
