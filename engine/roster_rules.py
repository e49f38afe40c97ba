"""Claims checked against the roster: the claimant must stand on the roster of the unit where the grievance waits
(a member registered there, that unit's party group or organisation, or an organisation registered with it) at
the claim's time, and claim in the one mode that fits what they are (member, group, organisation); and whoever
sends the claim (its actor) must be the member themselves, or one of the people the roster names as acting for the
group or organisation at that time, and still on the roster.

Where no roster is kept yet: under `ClaimRules.KEPT` (the default) a unit's claims are checked from the moment
its roster is opened (its first entry), and a unit without one takes claims as before; under
`ClaimRules.REQUIRED` a unit without a roster takes no claim at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from engine.errors import ClaimModeMismatch, DoesNotActFor, NotOnRoster
from engine.grievance import ClaimMode
from engine.roster import Kind, RosterEntry, UnitRoll


class ClaimRules(StrEnum):
    """Whether units without a roster take claims (GRIEVANCE_ROSTER_CLAIMS)."""

    KEPT = "kept"
    REQUIRED = "required"


class Claimants(Protocol):
    """Who may claim at one unit, as the Grievance aggregate asks it."""

    def check(self, claimant: str, mode: ClaimMode, at: datetime, *, actor: str) -> None:
        """Refuse (`NotOnRoster`, `ClaimModeMismatch`) a claimant who may not claim here at `at` in `mode`, and
        (`DoesNotActFor`) an actor who may not claim for them."""
        ...


class ClaimantsSource(Protocol):
    """Where the application finds who may claim at a unit (the roster book)."""

    def claimants_at(self, unit_id: str) -> Claimants | None:
        """Who may claim at `unit_id`; None when claims there are not checked (no roster kept, and none required)."""
        ...

    def prepare(self, unit_ids: Collection[str]) -> None:
        """Read the rolls of the units one batch's claims name, in one query where the store can, so that
        `claimants_at` asks the store nothing more for them until the next batch's `prepare` (this thread's)."""
        ...


class RollClaimants:
    """The claimants of a unit that keeps a roster: those on its roll, each claiming as themselves (a member) or
    through who acts for them (a body); `entries` reads a body's entry for its representatives."""

    def __init__(self, roll: UnitRoll, entries: Callable[[str], RosterEntry | None]) -> None:
        self.roll = roll
        self.entries = entries

    def check(self, claimant: str, mode: ClaimMode, at: datetime, *, actor: str) -> None:
        unit = self.roll.unit_id
        standing = self.roll.standings.get(claimant)
        if standing is None:
            raise NotOnRoster("claimant", f"{claimant!r} is not on the roster of {unit!r}: those who claim there are "
                              "the members registered there, its party group or organisation, and the organisations "
                              "registered with it")  # fmt: skip
        if not standing.on_at(at):
            first, last = standing.periods[0][0], standing.periods[-1][1]
            when = (
                f"joined it only on {first:%Y-%m-%d %H:%M %Z}" if at < first
                else f"left it on {last:%Y-%m-%d %H:%M %Z}" if last is not None and at >= last
                else "was not on it then"
            )  # fmt: skip
            raise NotOnRoster("claimant", f"{claimant!r} was not on the roster of {unit!r} at {at.isoformat()}: "
                              f"they {when}")  # fmt: skip
        fits = standing.kind.claim_mode
        if fits is None:
            raise ClaimModeMismatch("claimant", f"{claimant!r} is a {standing.kind.value}; grid workers and chiefs "
                                    "report and follow up, but do not claim")  # fmt: skip
        if fits is not mode:
            raise ClaimModeMismatch("mode", f"{claimant!r} is a {standing.kind.value}, which claims in {fits.value} "
                                    f"mode, not {mode.value}")  # fmt: skip
        self._check_actor(claimant, standing.kind, at, actor)

    def _check_actor(self, claimant: str, kind: Kind, at: datetime, actor: str) -> None:
        """A member claims for themselves only; a body through one of those the roster names as acting for it."""
        if kind is Kind.MEMBER:
            if actor != claimant:
                raise DoesNotActFor("actor", f"{actor!r} may not claim for {claimant!r}: a member claims for "
                                    "themselves only")  # fmt: skip
            return
        body = self.entries(claimant)
        acting = body.representatives_at(at) if body is not None else ()
        if actor not in acting:
            named = (f"its representatives are {', '.join(acting)}" if acting
                     else "the roster names nobody who acts for it")  # fmt: skip
            raise DoesNotActFor("actor", f"{actor!r} does not act for {claimant!r}: {named}")
        person = self.entries(actor)
        if person is not None and not person.active and person.left_at is not None and person.left_at <= at:
            raise DoesNotActFor("actor", f"{actor!r} acts for {claimant!r} no more: they left the roster on "
                                f"{person.left_at:%Y-%m-%d}")  # fmt: skip


class NoRoster:
    """The claimants of a unit that keeps no roster where claims must pass one: nobody."""

    def __init__(self, unit_id: str) -> None:
        self.unit_id = unit_id

    def check(self, claimant: str, mode: ClaimMode, at: datetime, *, actor: str) -> None:
        raise NotOnRoster("claimant", f"{self.unit_id!r} keeps no roster yet, and every claim must pass one "
                          "(GRIEVANCE_ROSTER_CLAIMS=required): register its members and bodies first")  # fmt: skip
