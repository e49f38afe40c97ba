"""Supervision (督办): overdue grievances go up one step, once, however many sweeps run."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from uuid import uuid4

from adapters.composition import build_chain, build_projection, build_supervision
from adapters.settings import Settings
from engine.clock import PlaybackClock
from engine.commands import Claim, Escalate, Outcome, Report
from engine.errors import GrievanceError
from engine.grievance import Category, ClaimMode, Grievance
from engine.service_chain import ServiceChain
from engine.supervision import Supervision
from tests.conftest import OPERATOR, T0
from tests.scenario import BUILDING, HOUSEHOLD, LEADING


def overdue_escalations(chain: ServiceChain, ids: list) -> Counter:  # type: ignore[type-arg]
    return Counter(
        e.originator_id
        for gid in ids
        for e in chain.history(gid)
        if isinstance(e, Grievance.Escalated) and e.reason == "overdue"
    )


def report(chain: ServiceChain, n: int, unit: str = HOUSEHOLD) -> list:  # type: ignore[type-arg]
    ids = [uuid4() for _ in range(n)]
    chain.execute(
        [
            Report(
                grievance_id=gid,
                command_id=f"r-{gid}",
                actor="worker",
                occurred_at=T0,
                unit_id=unit,
                category=Category.OTHER,
                title="t",
                description="d",
            )
            for gid in ids
        ],
        principal=OPERATOR,
    )
    return ids


def sweep_at(chain: ServiceChain, supervision: Supervision, now: datetime) -> list[Outcome | GrievanceError]:
    """A sweep with the chain's clock moved on to `now`: overdue is the server's clock's to judge."""
    assert isinstance(chain.clock, PlaybackClock)
    chain.clock.set(now)
    return supervision.sweep()


def test_sweeps_in_two_processes_escalate_each_overdue_grievance_once(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    late = T0 + timedelta(days=2)  # a household has a day to claim
    chains = [build_chain(settings, clock=lambda: late + timedelta(days=1)) for _ in range(2)]
    try:
        ids = report(chains[0], 60)

        def supervise(chain: ServiceChain) -> None:
            projection = build_projection(settings, chain)
            supervision = build_supervision(chain, projection.views, batch=25)
            for _ in range(4):  # as `grievance supervise --every` does: catch up, then sweep
                projection.catch_up()
                supervision.sweep()

        threads = [threading.Thread(target=supervise, args=(chain,)) for chain in chains]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert overdue_escalations(chains[0], ids) == dict.fromkeys(ids, 1)
        assert {chains[0].grievance(g).unit_id for g in ids} == {BUILDING}
    finally:
        for chain in chains:
            chain.close()


def test_a_sweep_on_stale_views_repeats_rather_than_escalating_again(stored_chain: ServiceChain,
                                                                     database_url: str) -> None:  # fmt: skip
    projection = build_projection(Settings(database_url=database_url), stored_chain)
    ids = report(stored_chain, 5)
    projection.catch_up()
    supervision = build_supervision(stored_chain, projection.views)
    first = sweep_at(stored_chain, supervision, T0 + timedelta(days=2))
    assert all(isinstance(r, Outcome) and not r.duplicate for r in first)
    # The views have not seen the escalations; much later the same grievances look overdue again.
    again = sweep_at(stored_chain, supervision, T0 + timedelta(days=9))
    assert all(isinstance(r, Outcome) and r.duplicate for r in again)
    assert overdue_escalations(stored_chain, ids) == dict.fromkeys(ids, 1)
    # Once the views catch up, the next step's own limit counts: at the building it is overdue again.
    projection.catch_up()
    third = sweep_at(stored_chain, supervision, T0 + timedelta(days=9))
    assert {r.unit_id for r in third if isinstance(r, Outcome)} == {"gr-chengxi-03-2"}


def test_nothing_is_escalated_before_its_limit_or_past_the_leading_group(stored_chain: ServiceChain,
                                                                        database_url: str) -> None:  # fmt: skip
    projection = build_projection(Settings(database_url=database_url), stored_chain)
    report(stored_chain, 3)
    projection.catch_up()
    supervision = build_supervision(stored_chain, projection.views)
    assert sweep_at(stored_chain, supervision, T0 + timedelta(hours=20)) == []
    top = [uuid4()]
    stored_chain.execute(
        [
            Report(
                grievance_id=top[0],
                command_id="x",
                actor="w",
                occurred_at=T0,
                unit_id="cm-chengxi-03",
                category=Category.OTHER,
                title="t",
                description="d",
            )
        ],
        principal=OPERATOR,
    )
    now = T0
    for step in range(3):  # community → joint committee → street → leading group
        now += timedelta(hours=1)
        unit = stored_chain.grievance(top[0]).unit_id
        stored_chain.execute(
            [
                Claim(
                    grievance_id=top[0],
                    command_id=f"c{step}",
                    actor="m",
                    occurred_at=now,
                    unit_id=unit,
                    mode=ClaimMode.MEMBER,
                    claimant="m",
                ),
                Escalate(grievance_id=top[0], command_id=f"e{step}", actor="m", occurred_at=now),
            ],
            principal=OPERATOR,
        )
    assert stored_chain.grievance(top[0]).unit_id == LEADING
    projection.catch_up()
    results = sweep_at(stored_chain, supervision, T0 + timedelta(days=60))
    assert top[0] not in {r.grievance_id for r in results if isinstance(r, Outcome)}
    assert all(not isinstance(r, Exception) for r in results)
