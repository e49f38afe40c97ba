"""The roster's rules (engine/roster.py, engine/roster_book.py) and the claims checked against it
(engine/roster_rules.py): each refusal names its field and its reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Claim, Escalate, Report
from engine.errors import (
    AlreadyReported,
    ClaimModeMismatch,
    CommandIdReused,
    DoesNotActFor,
    Forbidden,
    GrievanceError,
    GrievanceNotFound,
    InvalidTransition,
    InvalidValue,
    NotOnRoster,
    RosterEntryNotFound,
    RosterIdTaken,
    UnknownUnit,
    WrongLevel,
)
from engine.grievance import Category, ClaimMode, EscalationReason
from engine.roster import Kind, entry_uuid
from engine.roster_book import RosterBook
from engine.roster_commands import Join, Leave, Move, Represent, RosterCommand, RosterOutcome
from engine.roster_rules import ClaimRules
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0

HOUSEHOLD = "mh-chengdong-01-1-1-1"
BUILDING = "bg-chengdong-01-1-1"
OTHER_BUILDING = "bg-chengdong-01-1-2"
GRID = "gr-chengdong-01-1"
COMMUNITY = "cm-chengdong-01"
JOINT = "jc-chengdong-01"
ELSEWHERE = "cm-chengxi-01"


@pytest.fixture
def clock() -> PlaybackClock:
    return PlaybackClock(T0)


@pytest.fixture
def chain(yongji: OrgChart, clock: PlaybackClock) -> Iterator[ServiceChain]:
    app = ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=clock)
    yield app
    app.close()


@pytest.fixture
def book(chain: ServiceChain) -> RosterBook:
    return RosterBook(chain)


class Keeper:
    """Sends roster and chain commands a minute apart, as an operator unless told otherwise."""

    def __init__(self, book: RosterBook, clock: PlaybackClock) -> None:
        self.book, self.chain, self.clock = book, book.chain, clock

    def tick(self) -> Any:
        self.clock.set(self.clock.now + timedelta(minutes=1))
        return self.clock.now

    def roster(self, command: type[RosterCommand], principal: Principal = OPERATOR, **fields: Any) -> RosterOutcome:
        fields.setdefault("command_id", str(uuid4()))
        fields.setdefault("actor", principal.name)
        fields.setdefault("occurred_at", self.tick())
        return self.book.apply(command(**fields), principal=principal)

    def join(self, entry_id: str, kind: str, unit_id: str, **fields: Any) -> RosterOutcome:
        return self.roster(Join, entry_id=entry_id, kind=Kind(kind), unit_id=unit_id, name=fields.pop("name", "王五"),
                           **fields)  # fmt: skip

    def report(self, unit_id: str) -> Any:
        gid = uuid4()
        self.chain.apply(Report(command_id=str(uuid4()), grievance_id=gid, actor="grid-li", occurred_at=self.tick(),
                                unit_id=unit_id, category=Category.OTHER, title="t", description="d"),
                         principal=OPERATOR)  # fmt: skip
        return gid

    def claim(self, gid: Any, unit_id: str, mode: str, claimant: str, actor: str | None = None) -> Any:
        """A claim sent (by an operator) in the name of `actor`: by default the claimant themselves."""
        return self.chain.apply(Claim(command_id=str(uuid4()), grievance_id=gid, actor=actor or claimant,
                                      occurred_at=self.tick(), unit_id=unit_id, mode=ClaimMode(mode),
                                      claimant=claimant), principal=OPERATOR)  # fmt: skip


@pytest.fixture
def keeper(book: RosterBook, clock: PlaybackClock) -> Keeper:
    return Keeper(book, clock)


def refused(error: type[GrievanceError], field: str, why: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field
    assert why in caught.value.reason, caught.value.reason


# ----------------------------------------------------------------------------- joining


def test_a_member_joins_at_a_household_and_stands_on_its_roll(keeper: Keeper, book: RosterBook) -> None:
    outcome = keeper.join("m-1", "member", HOUSEHOLD, name="王秀英")
    assert (outcome.version, outcome.on_roster, outcome.unit_id) == (1, True, HOUSEHOLD)
    entry = book.entry("m-1")
    assert (entry.kind, entry.unit_id, entry.name, entry.active) == (Kind.MEMBER, HOUSEHOLD, "王秀英", True)
    assert book.on_roll(HOUSEHOLD) == {"m-1": Kind.MEMBER}


@pytest.mark.parametrize(
    ("kind", "unit", "allowed"),
    [
        ("member", JOINT, "member_household, building_group, grid_branch, community"),
        ("party_group", GRID, "building_group"),
        ("grid_worker", HOUSEHOLD, "grid_branch, community"),
        ("building_chief", GRID, "building_group"),
        ("party_organisation", BUILDING, "grid_branch, community, joint_committee"),
        ("police_station", GRID, "community, joint_committee, street_committee"),
    ],
)
def test_each_kind_registers_only_at_its_levels(keeper: Keeper, kind: str, unit: str, allowed: str) -> None:
    households = {"households": ["hh-1"]} if Kind(kind).is_chief else {}
    refused(WrongLevel, "unit_id", allowed, keeper.join, "x-1", kind, unit, **households)


def test_an_unknown_unit_is_named(keeper: Keeper) -> None:
    refused(UnknownUnit, "unit_id", "no unit 'nowhere'", keeper.join, "m-1", "member", "nowhere")


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"name": "王\n五"}, "name", "must be one line"),
        ({"name": "\u200b"}, "name", "must not be empty"),
        ({"name": "王\u202e五"}, "name", "bidirectional control"),
        ({"households": ["hh-1"]}, "households", "only chiefs cover households"),
        ({"representatives": ["m-2"]}, "representatives", "people act for bodies"),
        ({"workplace_id": "m-1"}, "workplace_id", "not their own workplace"),
        ({"workplace_id": "org-9"}, "workplace_id", "'org-9' is not on the roster"),
    ],
)
def test_a_member_s_fields_are_checked(keeper: Keeper, fields: dict[str, Any], field: str, reason: str) -> None:
    refused(InvalidValue, field, reason, keeper.join, "m-1", "member", HOUSEHOLD, **fields)


def test_ids_are_checked_and_never_given_twice(keeper: Keeper, book: RosterBook) -> None:
    refused(InvalidValue, "entry_id", "must be 1-100 characters", keeper.join, "m 1", "member", HOUSEHOLD)
    keeper.join("m-1", "member", HOUSEHOLD)
    refused(RosterIdTaken, "entry_id", "on the roster already, at 'mh-chengdong-01-1-1-1'", keeper.join, "m-1",
            "party_group", BUILDING)  # fmt: skip
    assert book.on_roll(BUILDING) == {}


def test_chiefs_cover_households(keeper: Keeper, book: RosterBook) -> None:
    refused(InvalidValue, "households", "covers at least one household", keeper.join, "c-1", "building_chief", BUILDING)
    too_many = [f"hh-{i}" for i in range(16)]
    refused(InvalidValue, "households", "at most 15 households", keeper.join, "c-1", "neighbour_chief", BUILDING,
            households=too_many)  # fmt: skip
    refused(InvalidValue, "households", "names hh-1 more than once", keeper.join, "c-1", "neighbour_chief", BUILDING,
            households=["hh-1", "hh-1"])  # fmt: skip
    keeper.join("c-1", "building_chief", BUILDING, households=too_many)
    assert book.entry("c-1").households == tuple(too_many)


def test_a_member_names_a_workplace_organisation_on_the_roster(keeper: Keeper, book: RosterBook) -> None:
    keeper.join("grp-1", "party_group", BUILDING, name="1号楼党小组")
    refused(InvalidValue, "workplace_id", "is a party_group, not an organisation", keeper.join, "m-1", "member",
            COMMUNITY, workplace_id="grp-1")  # fmt: skip
    keeper.join("emp-1", "employer", JOINT, name="永济电机厂")
    keeper.join("m-1", "member", COMMUNITY, workplace_id="emp-1")
    assert book.entry("m-1").workplace_id == "emp-1"
    refused(InvalidValue, "workplace_id", "only a member names a workplace", keeper.join, "w-1", "grid_worker", GRID,
            workplace_id="emp-1")  # fmt: skip


def test_who_acts_for_a_body_is_a_person_on_the_roster(keeper: Keeper, book: RosterBook) -> None:
    refused(InvalidValue, "representatives", "'m-1' is not on the roster", keeper.join, "org-1",
            "party_organisation", COMMUNITY, representatives=["m-1"])  # fmt: skip
    keeper.join("m-1", "member", COMMUNITY)
    keeper.join("org-0", "property_firm", JOINT)
    refused(InvalidValue, "representatives", "'org-0' is a property_firm; people act for bodies", keeper.join,
            "org-1", "party_organisation", COMMUNITY, representatives=["org-0"])  # fmt: skip
    refused(InvalidValue, "representatives", "does not act for itself", keeper.join, "org-1", "party_organisation",
            COMMUNITY, representatives=["org-1"])  # fmt: skip
    keeper.join("org-1", "party_organisation", COMMUNITY, representatives=["m-1"], name="城东第1社区党委")
    assert book.entry("org-1").representatives == ("m-1",)


def test_one_batch_joins_people_before_the_bodies_naming_them(keeper: Keeper, book: RosterBook) -> None:
    at = keeper.tick()
    member = Join(command_id="a", actor="op", occurred_at=at, entry_id="m-1", kind=Kind.MEMBER, unit_id=COMMUNITY,
                  name="李四")  # fmt: skip
    body = Join(command_id="b", actor="op", occurred_at=at, entry_id="org-1", kind=Kind.PARTY_ORGANISATION,
                unit_id=COMMUNITY, name="社区党委", representatives=["m-1"])  # fmt: skip
    bad = Join(command_id="c", actor="op", occurred_at=at, entry_id="m-2", kind=Kind.MEMBER, unit_id=JOINT, name="x")
    results = book.execute([member, bad, body], principal=OPERATOR)
    assert [type(r).__name__ for r in results] == ["RosterOutcome", "WrongLevel", "RosterOutcome"]
    assert book.on_roll(COMMUNITY) == {"m-1": Kind.MEMBER, "org-1": Kind.PARTY_ORGANISATION}


# ----------------------------------------------------------------------------- moving and leaving


def test_moving_takes_the_entry_from_one_roll_to_the_other(keeper: Keeper, book: RosterBook) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    joined = keeper.clock.now
    outcome = keeper.roster(Move, entry_id="m-1", to_unit_id=BUILDING)
    assert (outcome.version, outcome.unit_id) == (2, BUILDING)
    assert book.on_roll(HOUSEHOLD) == {}
    assert book.on_roll(BUILDING) == {"m-1": Kind.MEMBER}
    # The roll as it stood: who could claim there then.
    assert book.on_roll(HOUSEHOLD, joined) == {"m-1": Kind.MEMBER}
    assert book.on_roll(BUILDING, joined) == {}


def test_a_move_is_checked(keeper: Keeper) -> None:
    refused(RosterEntryNotFound, "entry_id", "nobody and nothing is on the roster as 'm-1'", keeper.roster, Move,
            entry_id="m-1", to_unit_id=BUILDING)  # fmt: skip
    keeper.join("m-1", "member", HOUSEHOLD)
    refused(InvalidValue, "to_unit_id", "registered at 'mh-chengdong-01-1-1-1' already", keeper.roster, Move,
            entry_id="m-1", to_unit_id=HOUSEHOLD)  # fmt: skip
    refused(WrongLevel, "to_unit_id", "is a joint_committee", keeper.roster, Move, entry_id="m-1", to_unit_id=JOINT)
    refused(UnknownUnit, "to_unit_id", "no unit", keeper.roster, Move, entry_id="m-1", to_unit_id="nowhere")
    refused(InvalidValue, "occurred_at", "before the roster entry's latest event", keeper.roster, Move,
            entry_id="m-1", to_unit_id=BUILDING, occurred_at=T0)  # fmt: skip
    refused(InvalidValue, "households", "only chiefs cover households", keeper.roster, Move, entry_id="m-1",
            to_unit_id=BUILDING, households=["hh-1"])  # fmt: skip


def test_a_chief_moves_with_new_households_or_the_old_ones(keeper: Keeper, book: RosterBook) -> None:
    keeper.join("c-1", "neighbour_chief", BUILDING, households=["hh-1", "hh-2"])
    keeper.roster(Move, entry_id="c-1", to_unit_id=OTHER_BUILDING)
    assert book.entry("c-1").households == ("hh-1", "hh-2")
    keeper.roster(Move, entry_id="c-1", to_unit_id=BUILDING, households=["hh-7"])
    assert book.entry("c-1").households == ("hh-7",)


def test_who_left_stays_left_until_they_rejoin_under_the_same_id(keeper: Keeper, book: RosterBook) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    outcome = keeper.roster(Leave, entry_id="m-1", reason="迁出本市")
    assert (outcome.on_roster, outcome.version) == (False, 2)
    assert book.on_roll(HOUSEHOLD) == {}
    refused(InvalidTransition, "entry_id", "'m-1' left the roster on", keeper.roster, Leave, entry_id="m-1")
    refused(InvalidTransition, "entry_id", "left the roster", keeper.roster, Move, entry_id="m-1", to_unit_id=BUILDING)
    refused(InvalidValue, "kind", "an id is never given to a party_group", keeper.join, "m-1", "party_group", BUILDING)
    keeper.join("m-1", "member", GRID)
    assert book.on_roll(GRID) == {"m-1": Kind.MEMBER}
    assert book.entry("m-1").active
    refused(InvalidValue, "reason", "must be one line", keeper.roster, Leave, entry_id="m-1", reason="a\nb")


def test_a_repeated_command_returns_its_first_outcome(keeper: Keeper, book: RosterBook) -> None:
    first = keeper.join("m-1", "member", HOUSEHOLD, command_id="join-1")
    again = keeper.join("m-1", "member", HOUSEHOLD, command_id="join-1")
    assert (again.version, again.duplicate) == (first.version, True)
    assert len(list(book.chain.recorder.select_events(entry_uuid("m-1")))) == 1
    refused(CommandIdReused, "command_id", "already used to join", keeper.roster, Leave, entry_id="m-1",
            command_id="join-1")  # fmt: skip


# ----------------------------------------------------------------------------- who may keep the roster


def test_only_keepers_change_the_roster_within_their_jurisdiction(keeper: Keeper) -> None:
    supervisor = Principal("sup", Role.SUPERVISOR, COMMUNITY)
    refused(Forbidden, "role", "a supervisor may not change the roster", keeper.join, "m-1", "member", HOUSEHOLD,
            principal=supervisor)  # fmt: skip
    worker = Principal("grid-li", Role.GRID_WORKER, GRID)
    refused(Forbidden, "unit_id", "outside your jurisdiction", keeper.join, "m-1", "member", COMMUNITY,
            principal=worker)  # fmt: skip
    refused(Forbidden, "actor", "may not act as 'someone'", keeper.join, "m-1", "member", HOUSEHOLD,
            principal=worker, actor="someone")  # fmt: skip
    keeper.join("m-1", "member", HOUSEHOLD, principal=worker)
    refused(Forbidden, "unit_id", "cm-chengdong-01 is outside", keeper.roster, Move, principal=worker,
            entry_id="m-1", to_unit_id=COMMUNITY)  # fmt: skip


def test_a_roster_command_s_time_is_bounded(keeper: Keeper) -> None:
    worker = Principal("grid-li", Role.GRID_WORKER, GRID)
    refused(InvalidValue, "occurred_at", "more than 72 hours before", keeper.join, "m-1", "member", HOUSEHOLD,
            principal=worker, occurred_at=T0 - timedelta(days=10))  # fmt: skip


# ----------------------------------------------------------------------------- claims against the roster


def test_a_unit_without_a_roster_takes_claims_until_it_keeps_one(keeper: Keeper) -> None:
    first = keeper.report(HOUSEHOLD)
    keeper.claim(first, HOUSEHOLD, "member", "anyone")
    keeper.join("m-1", "member", HOUSEHOLD)
    second = keeper.report(HOUSEHOLD)
    refused(NotOnRoster, "claimant", "'anyone' is not on the roster of 'mh-chengdong-01-1-1-1'", keeper.claim, second,
            HOUSEHOLD, "member", "anyone")  # fmt: skip
    assert keeper.claim(second, HOUSEHOLD, "member", "m-1").status == "claimed"


def test_where_a_roster_is_required_a_unit_without_one_takes_no_claim(chain: ServiceChain, clock: Any) -> None:
    keeper = Keeper(RosterBook(chain, rules=ClaimRules.REQUIRED), clock)
    gid = keeper.report(HOUSEHOLD)
    refused(NotOnRoster, "claimant", "keeps no roster yet", keeper.claim, gid, HOUSEHOLD, "member", "m-1")
    keeper.join("m-1", "member", HOUSEHOLD)
    assert keeper.claim(gid, HOUSEHOLD, "member", "m-1").status == "claimed"


@pytest.mark.parametrize(
    ("kind", "unit", "fits", "unfit"),
    [
        ("member", GRID, "member", "organisation"),
        ("party_group", BUILDING, "group", "member"),
        ("party_organisation", COMMUNITY, "organisation", "group"),
        ("property_firm", JOINT, "organisation", "member"),
        ("school", COMMUNITY, "organisation", "group"),
    ],
)
def test_the_mode_matches_what_the_claimant_is(keeper: Keeper, kind: str, unit: str, fits: str, unfit: str) -> None:
    acting = {} if kind == "member" else {"representatives": ["rep-1"]}
    if acting:
        keeper.join("rep-1", "member", ELSEWHERE)
    keeper.join("x-1", kind, unit, **acting)
    gid = keeper.report(unit) if unit != JOINT else _escalated_to(keeper, JOINT)
    actor = "rep-1" if acting else "x-1"
    refused(ClaimModeMismatch, "mode", f"'x-1' is a {kind}, which claims in {fits} mode, not {unfit}", keeper.claim,
            gid, unit, unfit, "x-1", actor)  # fmt: skip
    assert keeper.claim(gid, unit, fits, "x-1", actor).status == "claimed"


def test_a_member_claims_for_themselves_only(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    gid = keeper.report(HOUSEHOLD)
    refused(DoesNotActFor, "actor", "'grid-li' may not claim for 'm-1': a member claims for themselves only",
            keeper.claim, gid, HOUSEHOLD, "member", "m-1", "grid-li")  # fmt: skip
    claimed = keeper.claim(gid, HOUSEHOLD, "member", "m-1", "m-1")
    assert (claimed.status, keeper.chain.grievance(gid).claimed_by) == ("claimed", "m-1")


@pytest.mark.parametrize(("kind", "unit"), [("party_group", BUILDING), ("party_organisation", COMMUNITY),
                                            ("police_station", JOINT)])  # fmt: skip
def test_a_body_claims_through_one_who_acts_for_it(keeper: Keeper, kind: str, unit: str) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("m-2", "member", ELSEWHERE)
    keeper.join("li-si", "member", ELSEWHERE)
    keeper.join("body", kind, unit, representatives=["m-1", "m-2"])
    gid = keeper.report(unit) if unit != JOINT else _escalated_to(keeper, JOINT)
    mode = Kind(kind).claim_mode
    assert mode is not None
    for stranger in ("li-si", "body", "grid-li"):
        refused(DoesNotActFor, "actor", f"{stranger!r} does not act for 'body': its representatives are m-1, m-2",
                keeper.claim, gid, unit, mode.value, "body", stranger)  # fmt: skip
    assert keeper.claim(gid, unit, mode.value, "body", "m-2").status == "claimed"


def test_a_body_that_names_nobody_to_act_for_it_cannot_claim(keeper: Keeper) -> None:
    keeper.join("grp-1", "party_group", BUILDING)
    gid = keeper.report(BUILDING)
    refused(DoesNotActFor, "actor", "'grp-1' does not act for 'grp-1': the roster names nobody who acts for it",
            keeper.claim, gid, BUILDING, "group", "grp-1")  # fmt: skip


def test_the_actor_is_checked_after_who_and_how_claims(keeper: Keeper) -> None:
    # A stranger claiming for someone off the roster hears about the claimant first, and the mode before the actor.
    keeper.join("grp-1", "party_group", BUILDING)
    gid = keeper.report(BUILDING)
    refused(NotOnRoster, "claimant", "'nobody' is not on the roster", keeper.claim, gid, BUILDING, "group", "nobody",
            "li-si")  # fmt: skip
    refused(ClaimModeMismatch, "mode", "claims in group mode", keeper.claim, gid, BUILDING, "member", "grp-1",
            "li-si")  # fmt: skip


def test_units_without_a_roster_take_claims_from_anyone_as_before(keeper: Keeper) -> None:
    gid = keeper.report(BUILDING)
    assert keeper.claim(gid, BUILDING, "group", "some-group", "grid-li").status == "claimed"


def _escalated_to(keeper: Keeper, unit: str) -> Any:
    """A grievance reported at the community below `unit` and escalated there by supervision's lateness."""
    gid = keeper.report(COMMUNITY)
    keeper.clock.set(keeper.clock.now + timedelta(days=30))
    keeper.chain.apply(Escalate(command_id=str(uuid4()), grievance_id=gid, actor="op", occurred_at=keeper.tick(),
                                reason=EscalationReason.OVERDUE), principal=OPERATOR)  # fmt: skip
    assert keeper.chain.grievance(gid).unit_id == unit
    return gid


def test_grid_workers_and_chiefs_do_not_claim(keeper: Keeper) -> None:
    keeper.join("w-1", "grid_worker", GRID)
    gid = keeper.report(GRID)
    refused(ClaimModeMismatch, "claimant", "'w-1' is a grid_worker; grid workers and chiefs", keeper.claim, gid, GRID,
            "member", "w-1")  # fmt: skip


def test_a_member_who_moved_away_claims_at_the_new_unit_not_the_old(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("m-2", "member", HOUSEHOLD)
    at_household, at_building = keeper.report(HOUSEHOLD), keeper.report(BUILDING)
    keeper.join("grp-1", "party_group", BUILDING)
    keeper.roster(Move, entry_id="m-1", to_unit_id=BUILDING)
    refused(NotOnRoster, "claimant", "they left it on", keeper.claim, at_household, HOUSEHOLD, "member", "m-1")
    assert keeper.claim(at_building, BUILDING, "member", "m-1").status == "claimed"
    keeper.roster(Leave, entry_id="m-2")
    refused(NotOnRoster, "claimant", "'m-2' was not on the roster", keeper.claim, at_household, HOUSEHOLD, "member",
            "m-2")  # fmt: skip


def test_a_claim_is_checked_against_the_roll_as_it_stood_at_the_claim_s_time(keeper: Keeper) -> None:
    gid = keeper.report(HOUSEHOLD)
    keeper.join("m-0", "member", HOUSEHOLD)
    claimed_at = keeper.tick()
    keeper.join("m-1", "member", HOUSEHOLD)
    refused(NotOnRoster, "claimant", "joined it only on", keeper.chain.apply,
            Claim(command_id="late", grievance_id=gid, actor="op", occurred_at=claimed_at, unit_id=HOUSEHOLD,
                  mode=ClaimMode.MEMBER, claimant="m-1"), principal=OPERATOR)  # fmt: skip


def test_the_aggregate_checks_its_own_rules_before_the_roster_s(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    gid = keeper.report(HOUSEHOLD)
    keeper.claim(gid, HOUSEHOLD, "member", "m-1")
    refused(InvalidTransition, "status", "only a waiting one can be claimed", keeper.claim, gid, HOUSEHOLD, "member",
            "nobody")  # fmt: skip


def test_a_roster_record_s_id_is_no_grievance(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    taken = entry_uuid("m-1")
    refused(AlreadyReported, "grievance_id", "cannot be reported", keeper.chain.apply,
            Report(command_id="r", grievance_id=taken, actor="op", occurred_at=keeper.tick(), unit_id=HOUSEHOLD,
                   category=Category.OTHER, title="t", description="d"), principal=OPERATOR)  # fmt: skip
    refused(GrievanceNotFound, "grievance_id", "no grievance", keeper.chain.grievance, taken)
    refused(GrievanceNotFound, "grievance_id", "no grievance", keeper.claim, taken, HOUSEHOLD, "member", "m-1")


def test_a_grievance_s_id_is_no_roster_record(keeper: Keeper) -> None:
    # A report whose client chose a roster entry's id as the grievance's makes that id unusable: said so.
    keeper.chain.apply(Report(command_id="r2", grievance_id=entry_uuid("m-9"), actor="op", occurred_at=keeper.tick(),
                              unit_id=HOUSEHOLD, category=Category.OTHER, title="t", description="d"),
                       principal=OPERATOR)  # fmt: skip
    refused(RosterIdTaken, "entry_id", "something other than a roster record", keeper.join, "m-9", "member", HOUSEHOLD)


# ----------------------------------------------------------------------------- tokens and keys for roster people


def test_a_grid_worker_s_token_is_issued_to_a_person_on_the_roster_at_or_below_its_unit(
    keeper: Keeper, book: RosterBook
) -> None:
    worker = Role.GRID_WORKER
    book.check_holder("worker-li", worker, GRID)  # no roster kept anywhere yet: anyone, as before
    keeper.join("w-1", "grid_worker", GRID)
    keeper.join("c-1", "building_chief", BUILDING, households=["hh-1"])
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("m-2", "member", ELSEWHERE)
    keeper.join("grp-1", "party_group", BUILDING, representatives=["m-1"])
    for person in ("w-1", "c-1", "m-1"):
        book.check_holder(person, worker, GRID)
    book.check_holder("m-1", worker, HOUSEHOLD)
    refused(NotOnRoster, "name", "'worker-li' is not on the roster: a grid worker's token or key is issued to a "
            "grid worker, chief or member on it", book.check_holder, "worker-li", worker, GRID)  # fmt: skip
    refused(NotOnRoster, "name", f"'m-2' is registered at {ELSEWHERE!r}, not at or below {GRID!r}",
            book.check_holder, "m-2", worker, GRID)  # fmt: skip
    refused(NotOnRoster, "name", f"'w-1' is registered at {GRID!r}, not at or below {BUILDING!r}",
            book.check_holder, "w-1", worker, BUILDING)  # fmt: skip
    refused(NotOnRoster, "name", "'grp-1' is a party_group on the roster; a token or key is issued to a person",
            book.check_holder, "grp-1", worker, GRID)  # fmt: skip
    keeper.roster(Leave, entry_id="m-1")
    refused(NotOnRoster, "name", "'m-1' left the roster on", book.check_holder, "m-1", worker, GRID)
    # The office's staff are not the chain's people: their tokens are not the roster's business.
    for role in (Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.OPERATOR, Role.GATEWAY):
        book.check_holder("office-zhao", role, GRID if role is Role.SUPERVISOR else None)


def test_a_grid_worker_who_left_the_roster_sends_nothing_more(keeper: Keeper, chain: ServiceChain) -> None:
    keeper.join("w-1", "grid_worker", GRID)
    keeper.join("m-1", "member", HOUSEHOLD)
    worker, member = Principal("w-1", Role.GRID_WORKER, GRID), Principal("m-1", Role.GRID_WORKER, HOUSEHOLD)
    gid = keeper.report(HOUSEHOLD)
    keeper.roster(Leave, entry_id="w-1", reason="调离")
    report = Report(command_id="r-w", grievance_id=uuid4(), actor="w-1", occurred_at=keeper.tick(), unit_id=HOUSEHOLD,
                    category=Category.OTHER, title="t", description="d")  # fmt: skip
    claim = Claim(command_id="c-m", grievance_id=gid, actor="m-1", occurred_at=keeper.tick(), unit_id=HOUSEHOLD,
                  mode=ClaimMode.MEMBER, claimant="m-1")  # fmt: skip
    # One batch from two senders: only the one who left is refused, each of their commands alike.
    results = chain.execute([report, claim], principal=[worker, member])
    assert isinstance(results[0], Forbidden)
    assert results[0].field == "actor"
    assert "'w-1' left the roster on " in results[0].reason
    assert not isinstance(results[1], GrievanceError)
    refused(Forbidden, "actor", "'w-1' left the roster on", keeper.join, "m-9", "member", HOUSEHOLD, principal=worker)
    # Back on the roster, their token acts again; a grid worker never on it is not the roster's to refuse.
    keeper.join("w-1", "grid_worker", GRID)
    assert chain.apply(msgspec.structs.replace(report, occurred_at=keeper.tick()), principal=worker).status
    outsider = Principal("worker-li", Role.GRID_WORKER, GRID)
    assert keeper.join("m-8", "member", HOUSEHOLD, principal=outsider).on_roster


# ----------------------------------------------------------------------------- who acts for a body, over time


def test_a_body_s_representatives_change_and_a_claim_is_checked_against_those_acting_at_its_time(
    keeper: Keeper, book: RosterBook
) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("m-2", "member", ELSEWHERE)
    keeper.join("grp-1", "party_group", BUILDING, representatives=["m-1"])
    early, late = keeper.report(BUILDING), keeper.report(BUILDING)
    before = keeper.tick()
    named = keeper.roster(Represent, entry_id="grp-1", representatives=["m-2"])
    assert (named.verb, named.version, named.on_roster) == ("represent", 2, True)
    entry = book.entry("grp-1")
    assert (entry.representatives, entry.representatives_at(before)) == (("m-2",), ("m-1",))
    refused(DoesNotActFor, "actor", "'m-1' does not act for 'grp-1': its representatives are m-2", keeper.claim,
            late, BUILDING, "group", "grp-1", "m-1")  # fmt: skip
    # A claim recorded at a time before the change is checked against who acted then.
    claim = Claim(command_id="then", grievance_id=early, actor="m-1", occurred_at=before, unit_id=BUILDING,
                  mode=ClaimMode.GROUP, claimant="grp-1")  # fmt: skip
    assert keeper.chain.apply(claim, principal=OPERATOR).status == "claimed"
    assert keeper.claim(late, BUILDING, "group", "grp-1", "m-2").status == "claimed"


def test_naming_representatives_is_refused_naming_the_field(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("w-1", "grid_worker", GRID)
    keeper.join("grp-1", "party_group", BUILDING, representatives=["m-1"])
    keeper.join("emp-1", "employer", JOINT)

    def name(entry_id: str, *people: str, principal: Principal = OPERATOR) -> Any:
        return keeper.roster(Represent, entry_id=entry_id, representatives=list(people), principal=principal)

    refused(InvalidValue, "representatives", "a member has no representatives", name, "m-1", "w-1")
    refused(InvalidValue, "representatives", "'grp-1' is acted for by m-1 already", name, "grp-1", "m-1")
    refused(InvalidValue, "representatives", "does not act for itself", name, "grp-1", "grp-1")
    refused(InvalidValue, "representatives", "'nobody' is not on the roster", name, "grp-1", "nobody")
    refused(InvalidValue, "representatives", "'emp-1' is a employer; people act for bodies", name, "grp-1", "emp-1")
    refused(RosterEntryNotFound, "entry_id", "nobody and nothing", name, "ghost", "m-1")
    refused(Forbidden, "unit_id", f"{JOINT} is outside", name, "emp-1", "m-1",
            principal=Principal("grid-li", Role.GRID_WORKER, GRID))  # fmt: skip
    # Any person on the roster may be named; naming nobody leaves the body unable to claim.
    assert name("grp-1", "m-1", "w-1").version == 2
    assert name("grp-1").version == 3
    gid = keeper.report(BUILDING)
    refused(DoesNotActFor, "actor", "the roster names nobody who acts for it", keeper.claim, gid, BUILDING, "group",
            "grp-1", "m-1")  # fmt: skip
    keeper.roster(Leave, entry_id="grp-1")
    refused(InvalidTransition, "entry_id", "'grp-1' left the roster", name, "grp-1", "m-1")


def test_a_representative_who_left_the_roster_acts_for_the_body_no_more(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("grp-1", "party_group", BUILDING, representatives=["m-1"])
    gid = keeper.report(BUILDING)
    keeper.roster(Leave, entry_id="m-1", reason="迁出")
    refused(DoesNotActFor, "actor", "'m-1' acts for 'grp-1' no more: they left the roster on", keeper.claim, gid,
            BUILDING, "group", "grp-1", "m-1")  # fmt: skip
    keeper.join("m-1", "member", HOUSEHOLD)
    assert keeper.claim(gid, BUILDING, "group", "grp-1", "m-1").status == "claimed"


def test_a_repeated_represent_is_recognised(keeper: Keeper) -> None:
    keeper.join("m-1", "member", HOUSEHOLD)
    keeper.join("m-2", "member", HOUSEHOLD)
    keeper.join("grp-1", "party_group", BUILDING, representatives=["m-1"])
    first = keeper.roster(Represent, entry_id="grp-1", representatives=["m-2"], command_id="rep-1")
    again = keeper.roster(Represent, entry_id="grp-1", representatives=["m-2"], command_id="rep-1")
    assert (again.version, again.duplicate, first.duplicate) == (2, True, False)
    refused(CommandIdReused, "command_id", "was already used to represent", keeper.roster, Move, entry_id="grp-1",
            to_unit_id=OTHER_BUILDING, command_id="rep-1")  # fmt: skip
