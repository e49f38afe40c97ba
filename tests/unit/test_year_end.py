"""The year's two readings of the ledger against the roster (projections/year_end.py): a workplace reads every
member it employs, with what each did as a member in their community (双认可), and a street reads each of its
bodies' contributions; what others claimed, or claimed in another mode, is not theirs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from engine.chart import OrgChart
from engine.roster import Kind, RosterEntry
from projections.stars import YearOfPoints
from projections.year_end import street_year_end, workplace_service

COMMUNITY, OTHER_COMMUNITY = "cm-chengdong-01", "cm-chengxi-01"
STREET = "st-chengdong"


def _entry(yongji: OrgChart, entry_id: str, kind: Kind, unit_id: str, **extra: Any) -> RosterEntry:
    fields = {"workplace_id": None, "households": (), "representatives": (), **extra}
    return RosterEntry.join(entry_id=entry_id, kind=kind, unit=yongji.unit(unit_id), name="某人", actor="op",
                            at=datetime(2020, 1, 1, tzinfo=UTC), command_id=f"join-{entry_id}", **fields)  # fmt: skip


def _year(claimant: str, mode: str, **counts: int) -> YearOfPoints:
    return YearOfPoints(claimant, mode, Counter(counts))


def test_a_workplace_reads_each_member_it_employs_even_those_who_did_nothing(yongji: OrgChart) -> None:
    entries = [
        _entry(yongji, "emp-1", Kind.EMPLOYER, "jc-chengdong-01"),
        _entry(yongji, "m-busy", Kind.MEMBER, COMMUNITY, workplace_id="emp-1"),
        _entry(yongji, "m-idle", Kind.MEMBER, OTHER_COMMUNITY, workplace_id="emp-1"),
        _entry(yongji, "m-elsewhere", Kind.MEMBER, COMMUNITY, workplace_id="emp-2"),
    ]
    year_of = [
        _year("m-busy", "member", claims=2, resolved=1, satisfied=1, dissatisfied=1),
        _year("m-elsewhere", "member", claims=5),
        _year("m-busy", "group", claims=7),  # the same id claiming in another mode is not a member's own service
    ]
    service = workplace_service(year_of, entries, "emp-1")
    assert [c.entry.entry_id for c in service] == ["m-busy", "m-idle"]
    busy, idle = service
    assert (busy.counts["claims"], busy.counts["resolved"], busy.rated, busy.satisfaction_rate) == (2, 1, 2, 0.5)
    assert busy.points > 0
    assert (idle.points, idle.rated, idle.satisfaction_rate) == (0, 0, None)


def test_a_street_reads_its_bodies_only_most_points_first(yongji: OrgChart) -> None:
    entries = [
        _entry(yongji, "po-1", Kind.PARTY_ORGANISATION, COMMUNITY),
        _entry(yongji, "police-1", Kind.POLICE_STATION, "jc-chengdong-01"),
        _entry(yongji, "po-west", Kind.PARTY_ORGANISATION, OTHER_COMMUNITY),
        _entry(yongji, "m-1", Kind.MEMBER, COMMUNITY),
    ]
    year_of = [_year("police-1", "organisation", claims=3, resolved=3, satisfied=2, basically_satisfied=1),
               _year("po-west", "organisation", claims=9), _year("m-1", "member", claims=4)]  # fmt: skip
    units = {u.id for u in yongji.walk(STREET)}
    contributions = street_year_end(year_of, entries, units)
    assert [c.entry.entry_id for c in contributions] == ["police-1", "po-1"]
    assert contributions[0].satisfaction_rate == 1.0
    assert contributions[1].counts == Counter()
