"""Hypothesis drives random command sequences over the Yongji chart and checks the chain's invariants."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, settings
from hypothesis import event as statistic
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from adapters.settings import SHIPPED_CHART
from adapters.storage.chart_file import load_chart
from engine.commands import Command, Outcome
from engine.errors import ClaimModeMismatch, DoesNotActFor, GrievanceError, NotOnRoster
from engine.grievance import Grievance, Status
from engine.levels import REPORTING_LEVELS, Level
from engine.roster import Kind
from engine.roster_book import RosterBook
from engine.roster_commands import Join, Leave, Move, Represent, RosterCommand, RosterOutcome
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.conftest import command as make

CHART = load_chart(SHIPPED_CHART)
REPORTING_UNITS = sorted(u.id for u in CHART if u.level in REPORTING_LEVELS)
# A few buildings, reported at often, so that the party group that joins where a grievance waits claims there too.
BUILDINGS = sorted(u.id for u in CHART if u.level is Level.BUILDING_GROUP)[:3]
PEOPLE = ["member-wang", "member-zhao", "group-3", "supervision"]
# Who the machine puts on the roster, moves and takes off it ("supervision" never joins it).
ROSTER_KINDS = {"member-wang": Kind.MEMBER, "member-zhao": Kind.MEMBER, "group-3": Kind.PARTY_GROUP}


class ChainMachine(RuleBasedStateMachine):
    grievances = Bundle("grievances")
    snapshot_interval: int | None = None  # the chain's own
    cache_size = 10_000

    @initialize()
    def open_chain(self) -> None:
        self.now: datetime = T0
        # The chain's clock is the machine's, so waiting never walks commands into the real future.
        self.chain = ServiceChain(
            {"PERSISTENCE_MODULE": "eventsourcing.popo"},
            chart=CHART,
            clock=lambda: self.now,
            snapshot_interval=self.snapshot_interval,
            decided_cache_size=self.cache_size,
        )
        self.book = RosterBook(self.chain)
        self.applied: list[Command] = []
        self.last_status: dict[UUID, Status] = {}
        # The roster as the machine expects it: each unit's roll now, the units that keep one, where each entry is.
        self.rolls: dict[str, dict[str, Kind]] = {}
        self.where: dict[str, str] = {}
        # Who acts for each body: the members on the roster when it first joined.
        self.acting: dict[str, tuple[str, ...]] = {}

    def teardown(self) -> None:
        self.chain.close()

    def run(self, kind: Any, gid: UUID, actor: str, **params: Any) -> Outcome | GrievanceError:
        self.now += timedelta(minutes=5)
        command = make(kind, grievance_id=gid, command_id=str(uuid4()), actor=actor, occurred_at=self.now, **params)
        before = self.stored(gid)
        (result,) = self.chain.execute([command], principal=OPERATOR)
        if isinstance(result, GrievanceError):
            assert self.stored(gid) == before, "a refused command stored something"
        else:
            self.applied.append(command)
            self.check_reopen_rule(gid)
        return result

    def stored(self, gid: UUID) -> list[int]:
        return [e.originator_version for e in self.chain.events.get(gid)]

    def check_reopen_rule(self, gid: UUID) -> None:
        now = self.chain.grievance(gid).status
        before = self.last_status.get(gid)
        if before in (Status.RESOLVED, Status.REPLIED) and now.is_open:
            kinds = [type(e).__name__ for e in self.chain.history(gid)][-2:]
            ratings = [e for e in self.chain.history(gid) if isinstance(e, Grievance.Rated)]
            assert kinds == ["Rated", "Reopened"]
            assert ratings[-1].rating == "dissatisfied"
        self.last_status[gid] = now

    @rule(target=grievances, unit=st.sampled_from(REPORTING_UNITS) | st.sampled_from(BUILDINGS))
    def report(self, unit: str) -> UUID:
        gid = uuid4()
        result = self.run("report", gid, "worker-li", unit_id=unit, category="other", title="t", description="d")
        assert isinstance(result, Outcome)
        return gid

    @rule(
        gid=grievances,
        who=st.sampled_from(PEOPLE),
        right_unit=st.booleans(),
        mode=st.sampled_from(["organisation", "group", "member"]),
        sent_by=st.none() | st.sampled_from(PEOPLE),
    )
    def claim(self, gid: UUID, who: str, right_unit: bool, mode: str, sent_by: str | None) -> None:
        """`who` claims, the claim sent by `sent_by` (None: by the claimant themselves)."""
        self.check_claim(gid, who, right_unit, mode, sent_by)

    @rule(gid=grievances, data=st.data(), sent_by=st.none() | st.sampled_from(PEOPLE))
    def claim_where_registered(self, gid: UUID, data: st.DataObject, sent_by: str | None) -> None:
        """One on the roster where the grievance waits claims it in their own mode, sent by themselves or another."""
        roll = self.rolls.get(self.chain.grievance(gid).unit_id)
        if not roll:
            return
        who = data.draw(st.sampled_from(sorted(roll)))
        mode = roll[who].claim_mode
        assert mode is not None
        self.check_claim(gid, who, True, mode.value, sent_by)

    def check_claim(self, gid: UUID, who: str, right_unit: bool, mode: str, sent_by: str | None) -> None:
        g = self.chain.grievance(gid)
        unit = g.unit_id if right_unit else "lg"
        actor = sent_by or who
        result = self.run("claim", gid, actor, unit_id=unit, mode=mode, claimant=who)
        roll = self.rolls.get(g.unit_id)
        statistic(f"claim at a unit {'with' if roll is not None else 'without'} a roster: {type(result).__name__}")
        if roll is not None and not ROSTER_KINDS.get(who, Kind.MEMBER).is_person:
            statistic(f"a body's claim at a unit with a roster: {type(result).__name__}")
        # A member claims for themselves; a body through one who acts for it and is on the roster still.
        acts = (
            actor == who
            if ROSTER_KINDS.get(who) is Kind.MEMBER
            else actor in self.acting.get(who, ()) and actor in self.where
        )
        if isinstance(result, Outcome):
            # Where a roster is kept, only those on it now claim there, each in its own mode, sent by who may.
            assert roll is None or (who in roll and roll[who].claim_mode == mode and acts), (who, mode, actor, roll)
        elif isinstance(result, NotOnRoster | ClaimModeMismatch):
            assert roll is not None, (who, mode)
            assert who not in roll or roll[who].claim_mode != mode, (who, mode, roll)
        elif isinstance(result, DoesNotActFor):
            assert roll is not None, who
            assert who in roll, (who, roll)
            assert roll[who].claim_mode == mode, (who, mode, roll)
            assert not acts, (who, actor, self.acting)

    def roster(self, command: RosterCommand) -> RosterOutcome | GrievanceError:
        self.now += timedelta(minutes=5)
        (result,) = self.book.execute([command], principal=OPERATOR)
        return result

    @rule(gid=grievances, who=st.sampled_from(sorted(ROSTER_KINDS)))
    def register_where_it_waits(self, gid: UUID, who: str) -> None:
        """Join the roster at the unit where a grievance waits, or move there: who joined can claim there now."""
        unit, kind = self.chain.grievance(gid).unit_id, ROSTER_KINDS[who]
        common: dict[str, Any] = {"command_id": str(uuid4()), "actor": "roster-keeper", "occurred_at": self.now,
                                  "entry_id": who}  # fmt: skip
        was = self.where.get(who)
        # A body names as acting for it the members on the roster now (only its first Join names them).
        acting = [m for m in sorted(self.where) if ROSTER_KINDS[m] is Kind.MEMBER] if not kind.is_person else []
        command: RosterCommand = (
            Move(**common, to_unit_id=unit)
            if was
            else Join(**common, kind=kind, unit_id=unit, name="王五", representatives=acting)
        )
        result = self.roster(command)
        fits = CHART.unit(unit).level in kind.levels
        if not fits or was == unit:
            assert isinstance(result, GrievanceError), result
            return
        assert isinstance(result, RosterOutcome), result
        if not kind.is_person:
            self.acting.setdefault(who, tuple(acting))
        if was:
            del self.rolls[was][who]
        self.rolls.setdefault(unit, {})[who] = kind
        self.where[who] = unit

    @rule(who=st.sampled_from(sorted(ROSTER_KINDS)),
          people=st.sets(st.sampled_from(["member-wang", "member-zhao", "supervision"]), max_size=2))  # fmt: skip
    def name_representatives(self, who: str, people: set[str]) -> None:
        """Name who acts for a body from now on: only people on the roster, only for a body on it."""
        named = sorted(people)
        result = self.roster(Represent(command_id=str(uuid4()), actor="roster-keeper", occurred_at=self.now,
                                       entry_id=who, representatives=named))  # fmt: skip
        body = not ROSTER_KINDS[who].is_person
        valid = (body and who in self.where and set(named) <= set(self.where) - {who}
                 and set(named) != set(self.acting.get(who, ())))  # fmt: skip
        assert isinstance(result, RosterOutcome) == valid, (who, named, result)
        if valid:
            self.acting[who] = tuple(named)

    @rule(who=st.sampled_from(sorted(ROSTER_KINDS)))
    def leave_the_roster(self, who: str) -> None:
        """Leave the roster: who left can claim nowhere it is kept."""
        result = self.roster(Leave(command_id=str(uuid4()), actor="roster-keeper", occurred_at=self.now, entry_id=who))
        was = self.where.pop(who, None)
        assert isinstance(result, RosterOutcome) == (was is not None), result
        if was:
            del self.rolls[was][who]

    @rule(gid=grievances, who=st.sampled_from(PEOPLE), overdue=st.booleans())
    def escalate(self, gid: UUID, who: str, overdue: bool) -> None:
        before = self.chain.grievance(gid)
        result = self.run("escalate", gid, who, reason="overdue" if overdue else "requested")
        if isinstance(result, Outcome):
            parent = CHART.parent_of(before.unit_id)
            assert parent is not None
            assert result.unit_id == parent.id
            assert result.level.rank == before.level.rank + 1

    @rule(gid=grievances, who=st.sampled_from(PEOPLE), kind=st.sampled_from(["resolve", "reply", "record_progress"]))
    def settle(self, gid: UUID, who: str, kind: str) -> None:
        params = {
            "resolve": {"summary": "done"},
            "reply": {"reason": "r", "answer": "a"},
            "record_progress": {"note": "n"},
        }[kind]
        self.run(kind, gid, who, **params)

    @rule(gid=grievances, rating=st.sampled_from(["satisfied", "basically_satisfied", "dissatisfied"]))
    def rate(self, gid: UUID, rating: str) -> None:
        self.run("rate", gid, "office-zhao", rating=rating)

    @rule(hours=st.integers(min_value=1, max_value=24 * 40))
    def wait(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(data=st.data())
    def repeat_an_earlier_command(self, data: st.DataObject) -> None:
        if not self.applied:
            return
        command = data.draw(st.sampled_from(self.applied))
        before = self.stored(command.grievance_id)
        (result,) = self.chain.execute([command], principal=OPERATOR)
        assert isinstance(result, Outcome)
        assert result.duplicate
        assert self.stored(command.grievance_id) == before

    @rule(gid=consumes(grievances))
    def forget(self, gid: UUID) -> None:
        """Stop driving one grievance, so others get attention."""

    @rule()
    def drop_the_held_copies(self) -> None:
        """The process restarts, or its cache fills: the next loads read whole histories, and must agree."""
        self.chain.decided.clear()

    @invariant()
    def the_roster_is_as_expected(self) -> None:
        for unit, roll in self.rolls.items():
            assert self.book.on_roll(unit) == roll

    @invariant()
    def every_grievance_obeys_the_chain(self) -> None:
        for gid in self.last_status:
            g = self.chain.grievance(gid)
            versions = self.stored(gid)
            assert versions == list(range(1, len(versions) + 1)), "versions must rise by one"
            assert g.version == versions[-1]
            for lower, upper in zip(g.path, g.path[1:], strict=False):
                parent = CHART.parent_of(lower)
                assert parent is not None, "never past the top"
                assert parent.id == upper, "one step up at a time"
            assert g.unit_id == g.path[-1]
            replayed: Any = None
            for event in self.chain.history(gid):
                replayed = event.mutate(replayed)  # type: ignore[attr-defined]
            assert replayed.__dict__ == g.__dict__, "replay reproduces the state"


ChainMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestChainInvariants = ChainMachine.TestCase


class SnapshottingChainMachine(ChainMachine):
    """The same invariants with a snapshot every other event and no grievance held in memory: every load starts from
    the latest snapshot, so a snapshot that decides otherwise than the events would break them."""

    snapshot_interval = 2
    cache_size = 0

    @invariant()
    def snapshots_are_taken(self) -> None:
        assert self.chain.snapshots is not None
        for gid in self.last_status:
            if self.chain.grievance(gid).version >= 2:
                assert self.chain.snapshots.recorder.select_events(gid, desc=True, limit=1), "no snapshot taken"


SnapshottingChainMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestChainInvariantsFromSnapshots = SnapshottingChainMachine.TestCase
