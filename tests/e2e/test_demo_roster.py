"""The Yongji demo's roster: sized from the seeds, every claim of the year passed it, and the points ledger
credits no one who is not on it."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.composition import build_chain, roster_of
from adapters.settings import Settings
from engine.grievance import Grievance
from engine.levels import Level
from engine.roster import Kind, RosterEntry
from engine.roster_book import RosterBook
from tests.conftest import grievance


@pytest.fixture(scope="module")
def book(demo_db: Path) -> Iterator[RosterBook]:
    chain = build_chain(Settings(database_url=f"sqlite:///{demo_db}"))
    yield roster_of(chain)
    chain.close()


def _entries(book: RosterBook) -> list[RosterEntry]:
    rolls = book.rolls(u.id for u in book.chain.chart)
    return book.entries(e for roll in rolls.values() for e in roll.on_roll())


def test_the_roster_is_sized_from_the_seeds(book: RosterBook) -> None:
    entries = _entries(book)
    chart = book.chain.chart
    counts = Counter((e.kind, e.level) for e in entries)
    levels = chart.count_by_level()
    community_members = sum(n for (kind, level), n in counts.items()
                            if kind is Kind.MEMBER and level in (Level.GRID_BRANCH, Level.COMMUNITY))  # fmt: skip
    assert community_members == 681
    assert counts[(Kind.MEMBER, Level.MEMBER_HOUSEHOLD)] == levels[Level.MEMBER_HOUSEHOLD]
    assert counts[(Kind.GRID_WORKER, Level.GRID_BRANCH)] == levels[Level.GRID_BRANCH] == 88
    assert counts[(Kind.PARTY_GROUP, Level.BUILDING_GROUP)] == levels[Level.BUILDING_GROUP]
    organisations = sum(n for (kind, _), n in counts.items() if kind is Kind.PARTY_ORGANISATION)
    assert organisations == len(chart) - levels[Level.MEMBER_HOUSEHOLD] - levels[Level.BUILDING_GROUP]
    stationed = [e for e in entries if e.kind in (Kind.PROPERTY_FIRM, Kind.POLICE_STATION, Kind.EMPLOYER)]
    assert len(stationed) == 3 * levels[Level.COMMUNITY]
    assert all(e.level is Level.JOINT_COMMITTEE for e in stationed)
    # Names open (the rows hold them sealed: test_the_points_ledger_credits_only_the_roster).
    assert all(e.name and e.name != "[erased]" for e in entries)


def test_every_claim_of_the_year_passed_the_roster(book: RosterBook, demo_db: Path) -> None:
    mapper = book.chain.sealed_mapper()
    claims, bodies = 0, Counter[str]()
    for stored in book.chain.recorder.select_notifications(start=1, limit=10_000_000):
        if not stored.topic.endswith("Grievance.Claimed"):
            continue
        claim = mapper.to_domain_event(stored)
        assert isinstance(claim, Grievance.Claimed)
        stood = book.on_roll(claim.unit_id, claim.occurred_at)
        assert claim.claimant in stood, (claim.claimant, claim.unit_id)
        assert stood[claim.claimant].claim_mode == claim.mode
        # Sent by the member themselves, or by one the roster names as acting for the group or organisation.
        if stood[claim.claimant] is Kind.MEMBER:
            assert claim.actor == claim.claimant
        else:
            assert claim.actor in book.entry(claim.claimant).representatives_at(claim.occurred_at), claim
            bodies[stood[claim.claimant].value] += 1
        claims += 1
    assert claims > 1300
    assert {"party_group", "party_organisation", "property_firm", "police_station", "employer"} <= set(bodies)


def test_the_points_ledger_credits_only_the_roster(book: RosterBook, demo_db: Path) -> None:
    with sqlite3.connect(demo_db) as db:
        credited = db.execute("SELECT DISTINCT claimant, mode FROM dash_points").fetchall()
        joined = "SELECT count(*) FROM stored_events WHERE topic LIKE '%RosterEntry.Joined' AND CAST(state AS TEXT) "
        sealed = db.execute(joined + "LIKE '%sealed:v1:%'").fetchone()[0]
        # Every person's name is sealed (the surnames are the demo's own: none of them is stored in clear).
        in_clear = [db.execute(joined + "LIKE ?", (f'%"name":"{surname}%',)).fetchone()[0] for surname in "王李张刘"]
    found = {e.entry_id: e for e in book.entries(c for c, _ in credited)}
    assert {c for c, _ in credited} <= set(found)
    assert all(found[c].kind.claim_mode == mode for c, mode in credited)
    people = sum(1 for e in _entries(book) if e.kind.is_person)
    assert sealed == people
    assert in_clear == [0, 0, 0, 0]


def test_the_year_s_stars_rate_only_those_on_the_roster(demo_db: Path) -> None:
    done = grievance(demo_db, "roster", "stars", "--year", "2020", "--limit", "100000", "--json")
    assert done.returncode == 0, done.stderr
    rated = json.loads(done.stdout)
    assert rated["thresholds"] == [10, 30, 60, 100, 150]
    assert rated["claimants"]
    assert all(c["on_roster"] for c in rated["claimants"])
    assert {c["stars"] for c in rated["claimants"]} >= {1, 5}


def test_a_workplace_reads_its_members_service_and_a_street_its_organisations(demo_db: Path,
                                                                             book: RosterBook) -> None:  # fmt: skip
    employed = [e for e in _entries(book) if e.workplace_id == "employer-jc-chengdong-01"]
    done = grievance(demo_db, "roster", "service", "employer-jc-chengdong-01", "--year", "2020", "--json")
    assert done.returncode == 0, done.stderr
    service = json.loads(done.stdout)
    assert {m["entry_id"] for m in service["members"]} == {e.entry_id for e in employed}
    assert all(m["kind"] == "member" and "*" in m["name"] for m in service["members"])  # names masked
    points = [m["points"] for m in service["members"]]
    assert points == sorted(points, reverse=True)
    assert any(m["claims"] for m in service["members"])
    refused = grievance(demo_db, "roster", "service", employed[0].entry_id, "--year", "2020")
    assert refused.returncode == 1
    assert "is not an organisation on the roster" in refused.stderr
    group = grievance(demo_db, "roster", "service", "pg-bg-chengdong-08-4-4", "--year", "2020")
    assert group.returncode == 1, "a party group is nobody's workplace"

    year_end = json.loads(grievance(demo_db, "roster", "year-end", "--year", "2020", "--unit", "st-chengdong",
                                    "--json").stdout)  # fmt: skip
    bodies = year_end["organisations"]
    street = {u.id for u in book.chain.chart.walk("st-chengdong")}
    assert bodies
    assert all(b["unit_id"] in street and b["kind"] not in ("member", "grid_worker") for b in bodies)
    assert sum(b["claims"] for b in bodies) > 0
    assert all(b["satisfaction_rate"] is None or 0 <= b["satisfaction_rate"] <= 1 for b in bodies)
