"""The Yongji demo: a year (2020) of grid work played through the public command API.

Seeded and deterministic. Problems are reported at households, buildings, grids and communities,
claimed in all three ways, mostly settled at the lowest links, a few carried to the leading group;
some are replied to rather than resolved, some rated dissatisfied and reopened, and a few wait past
their limit until supervision (督办) escalates them. The plan fixes how each problem ends, so the year
closes with exactly 1,115 resolved, as in Yongji.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from adapters.demo.roster import DemoRoster, household_member, party_body
from engine.access import Principal
from engine.chart import OrgChart, Unit
from engine.clock import PlaybackClock
from engine.commands import Claim, Command, Escalate, Outcome, Rate, Reply, Report, Resolve
from engine.errors import GrievanceError
from engine.grievance import Category, Channel, ClaimMode, Rating, RatingSource, Status
from engine.levels import Level
from engine.roster_book import RosterBook
from engine.service_chain import ServiceChain
from engine.supervision import Supervision
from projections.dashboard.changes import REPORTING_TZ
from projections.dashboard.runner import DashboardProjection

YEAR_START = datetime(2020, 1, 1, tzinfo=REPORTING_TZ)
YEAR_END = datetime(2021, 1, 1, tzinfo=REPORTING_TZ)
RESOLVED, REPLIED, STILL_OPEN = 1115, 148, 41
NAMESPACE = UUID("6f1c2b9e-0d4a-4e8b-9c77-3a5e2d1f8b60")

REPORT_LEVELS = (
    (Level.MEMBER_HOUSEHOLD, 50),
    (Level.BUILDING_GROUP, 25),
    (Level.GRID_BRANCH, 20),
    (Level.COMMUNITY, 5),
)
ESCALATIONS = ((0, 58), (1, 20), (2, 11), (3, 6), (4, 3), (5, 1), (6, 1))
CATEGORIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "environment": (14, ("楼道堆放杂物", "垃圾清运不及时", "小区绿地无人养护")),
    "property": (16, ("物业维修拖延", "电梯频繁故障", "单元门禁损坏")),
    "infrastructure": (12, ("路灯不亮", "路面坑洼积水", "下水道堵塞")),
    "utilities": (12, ("冬季供暖不热", "自来水水压低", "燃气表更换")),
    "safety": (8, ("消防通道被占", "楼道电动车充电", "围墙破损")),
    "elderly_care": (9, ("独居老人需要照看", "老年餐桌开办", "适老化改造")),
    "employment": (5, ("下岗职工求职", "公益岗位申请", "技能培训报名")),
    "neighbours": (9, ("邻里噪音纠纷", "漏水引发纠纷", "宠物扰民")),
    "parking": (11, ("车位紧张", "僵尸车占位", "非机动车乱停")),
    "other": (4, ("政策咨询", "证明开具", "其他诉求")),
}


@dataclass(order=True)
class Pending:
    """A grievance's next step, ordered by when it happens."""

    at: datetime
    index: int
    plan: Plan = field(compare=False)


@dataclass
class Plan:
    """How one grievance's year goes; `unit_id` and `status` follow what the chain answered."""

    index: int
    grievance_id: UUID
    unit_id: str
    ending: str  # "resolved", "replied" or "open"
    escalations: int
    dissatisfied_once: bool
    reported_at: datetime
    status: str = "new"
    step: int = 0
    claimer: str = ""
    reporter: str = ""
    rated: bool = False


class YongjiYear:
    """Plays the year: each day's steps as one batch, then a supervision sweep at the day's end."""

    def __init__(
        self,
        chain: ServiceChain,
        projection: DashboardProjection,
        supervision: Supervision,
        *,
        principal: Principal,
        clock: PlaybackClock,
        seed: int = 2020,
        roster: RosterBook | None = None,
    ) -> None:
        self.chain = chain
        # The year's claimants, grid workers and chiefs, put on the roster (when given one) before the year begins.
        self.roster = roster
        self.people = DemoRoster(chain.chart, seed=seed)
        self._organisation_picks = 0
        self.chart: OrgChart = chain.chart
        self.projection = projection
        self.supervision = supervision
        # Historic playback: the year's commands name their grid workers and members as actors, and the chain
        # runs on the year's own clock, which each day's batch and sweep move on.
        self.principal = principal
        self.clock = clock
        self.rng = random.Random(seed)
        self.queue: list[Pending] = []
        self.refused: list[GrievanceError] = []

    # ----------------------------------------------------------------------------- planning

    def plans(self) -> list[Plan]:
        """Every grievance of the year, with its ending fixed in advance."""
        endings = ["resolved"] * RESOLVED + ["replied"] * REPLIED
        self.rng.shuffle(endings)
        units = {level: [u for u in self.chart if u.level is level] for level, _ in REPORT_LEVELS}
        plans = []
        for index, ending in enumerate(endings + ["open"] * STILL_OPEN):
            # Settled problems are reported early enough to be settled by the year's end.
            window = (
                (YEAR_START, datetime(2020, 11, 1, tzinfo=REPORTING_TZ))
                if ending != "open"
                else (datetime(2020, 12, 16, tzinfo=REPORTING_TZ), datetime(2020, 12, 30, tzinfo=REPORTING_TZ))
            )
            level = self._weighted(REPORT_LEVELS)
            unit = self.rng.choice(units[level])
            reach = len(self.chart.path_to_root(unit.id)) - 1
            plans.append(
                Plan(
                    index=index,
                    grievance_id=uuid5(NAMESPACE, f"yongji-2020/{index}"),
                    unit_id=unit.id,
                    ending=ending,
                    escalations=min(self._weighted(ESCALATIONS), reach),
                    dissatisfied_once=ending != "open" and self.rng.random() < 0.06,
                    reported_at=self._working_time(window[0], window[1]),
                )
            )
        return plans

    def _weighted(self, choices: Any) -> Any:
        values, weights = zip(*choices, strict=True)
        return self.rng.choices(values, weights)[0]

    def _working_time(self, start: datetime, end: datetime) -> datetime:
        day = start + timedelta(days=self.rng.randrange((end - start).days))
        return day.replace(hour=8) + timedelta(minutes=self.rng.randrange(12 * 60))

    def _after(self, at: datetime, hours: float) -> datetime:
        """`hours` later, moved into working hours (08:00-20:00) if it falls outside them."""
        moment = (at + timedelta(hours=hours)).astimezone(REPORTING_TZ)
        if moment.hour >= 20:
            moment = (moment + timedelta(days=1)).replace(hour=8, minute=self.rng.randrange(60))
        elif moment.hour < 8:
            moment = moment.replace(hour=8, minute=self.rng.randrange(60))
        return moment

    # ----------------------------------------------------------------------------- steps

    def _claimer(self, unit: Unit) -> tuple[str, str, str]:
        """(mode, claimant, actor), all on the roster: members claim at households, groups at buildings, members
        or organisations above (at a joint committee, its own or one stationed in the community), each group and
        organisation by the member who acts for it."""
        if unit.level is Level.MEMBER_HOUSEHOLD:
            member = household_member(unit.id)
            return "member", member, member
        if unit.level is Level.BUILDING_GROUP:
            return "group", party_body(unit), self.people.acts_for(party_body(unit))[0]
        if unit.level in (Level.GRID_BRANCH, Level.COMMUNITY) and self.rng.random() < 0.2:
            members = self.people.members_at[unit.id]
            member = members[(self.rng.randrange(1, 9) - 1) % len(members)]
            return "member", member, member
        # Turn about rather than at random: the year's random numbers stay as they were before the roster.
        organisations = self.people.organisations_at(unit)
        self._organisation_picks += 1
        organisation = organisations[self._organisation_picks % len(organisations)]
        return "organisation", organisation, self.people.acts_for(organisation)[0]

    def _next(self, p: Plan, at: datetime) -> Command | None:
        """The command for the grievance's next step at `at`, judged from where it stands now."""
        p.step += 1
        common: dict[str, Any] = {"grievance_id": p.grievance_id, "command_id": f"demo:{p.index}:{p.step}",
                                  "occurred_at": at}  # fmt: skip
        if p.status == "new":
            category = self._weighted([(c, w) for c, (w, _) in CATEGORIES.items()])
            title = self.rng.choice(CATEGORIES[category][1])
            p.reporter = self.people.reporter(self.chart.unit(p.unit_id))
            return Report(
                **common, actor=p.reporter, unit_id=p.unit_id, category=Category(category),
                title=title, description=f"{title}（居民反映）", channel=Channel(self.rng.choice(
                    ["grid_visit", "grid_visit", "wechat_group", "wechat_group", "hotline", "walk_in", "app"])),
            )  # fmt: skip
        if p.status == Status.WAITING:
            mode, claimant, actor = self._claimer(self.chart.unit(p.unit_id))
            p.claimer = actor
            return Claim(**common, actor=actor, unit_id=p.unit_id, mode=ClaimMode(mode), claimant=claimant)
        if p.status == Status.CLAIMED:
            if p.escalations and self.chart.parent_of(p.unit_id) is not None:
                p.escalations -= 1
                return Escalate(**common, actor=p.claimer, note="超出本级能力，提请上级")
            if p.ending == "open":
                return None
            first_closure_of_two = p.dissatisfied_once and not p.rated
            closing = (
                "reply"
                if (p.ending == "replied" and not first_closure_of_two)
                or (first_closure_of_two and self.rng.random() < 0.5)
                else "resolve"
            )
            if closing == "resolve":
                return Resolve(**common, actor=p.claimer, summary="已协调解决并回访居民")
            return Reply(**common, actor=p.claimer, reason="涉及跨部门政策，本级无法解决",
                         answer="已向居民当面解释并告知办理渠道")  # fmt: skip
        if p.status in (Status.RESOLVED, Status.REPLIED) and not p.rated:
            p.rated = True
            if p.dissatisfied_once:
                rating = "dissatisfied"
            else:
                rating = self._weighted((("satisfied", 70), ("basically_satisfied", 25), ("dissatisfied", 0)))
                if self.rng.random() > 0.85:
                    return None  # not every resident answers the return visit
            # Two in three residents answer with their receipt; the office calls the others back (回访).
            if p.index % 3:
                return Rate(**common, actor="resident", rating=Rating(rating), given_by=RatingSource.RESIDENT)
            return Rate(**common, actor="hotline-office", rating=Rating(rating), given_by=RatingSource.CALLBACK)
        return None

    def _delay(self, p: Plan) -> float:
        """Hours until the next step: mostly prompt; one claim in twelve waits past its limit."""
        if p.status == Status.WAITING:
            return self.rng.uniform(30, 80) if self.rng.random() < 1 / 12 else self.rng.uniform(0.5, 20)
        if p.status == Status.CLAIMED:
            return self.rng.uniform(2, 60)
        return self.rng.uniform(4, 48)

    # ----------------------------------------------------------------------------- the year

    def enrol(self) -> int:
        """Put the year's people and bodies on the roster, the day before the year begins; how many joined."""
        if self.roster is None:
            return 0
        joins = list(self.people.joins(actor=self.principal.name, at=YEAR_START - timedelta(days=1)))
        for start in range(0, len(joins), 500):
            for result in self.roster.execute(joins[start : start + 500], principal=self.principal):
                if isinstance(result, GrievanceError):
                    raise result  # the demo's roster is the project's own: a refusal is a bug, not data
        return len(joins)

    def play(self, on_day: Callable[[datetime], None] | None = None) -> int:
        """Play the year (after putting its people on the roster); the number of commands applied."""
        self.enrol()
        by_id: dict[UUID, Plan] = {}
        for p in self.plans():
            by_id[p.grievance_id] = p
            heapq.heappush(self.queue, Pending(p.reported_at, p.index, p))
        applied = 0
        day = YEAR_START
        while day < YEAR_END:
            day_end = day + timedelta(days=1)
            while self.queue and self.queue[0].at < day_end:
                due: list[tuple[datetime, Plan, Command]] = []
                while self.queue and self.queue[0].at < day_end:
                    item = heapq.heappop(self.queue)
                    command = self._next(item.plan, item.at)
                    if command is not None:
                        due.append((item.at, item.plan, command))
                if due:
                    self.clock.set(max(at for at, _, _ in due))
                results = self.chain.execute([c for _, _, c in due], principal=self.principal)
                for (at, plan, _), result in zip(due, results, strict=True):
                    applied += self._follow(plan, at, result)
            # Supervision's daily sweep at 23:00, on views brought up to date first.
            self.projection.catch_up()
            self.clock.set(day.replace(hour=23))
            for result in self.supervision.sweep():
                if isinstance(result, Outcome):
                    applied += 1
                    plan = by_id[result.grievance_id]
                    plan.unit_id, plan.status = result.unit_id, result.status.value
            if on_day:
                on_day(day)
            day = day_end
        self.projection.catch_up()
        return applied

    def _follow(self, plan: Plan, at: datetime, result: Outcome | GrievanceError) -> int:
        if isinstance(result, GrievanceError):
            # Only a supervision escalation between planning and applying a step can cause this;
            # the grievance carries on from where it now stands.
            self.refused.append(result)
            stand = self.chain.grievance(plan.grievance_id)
            plan.unit_id, plan.status = stand.unit_id, stand.status.value
            heapq.heappush(self.queue, Pending(self._after(at, 1), plan.index, plan))
            return 0
        plan.unit_id, plan.status = result.unit_id, result.status.value
        if result.status is Status.WAITING and result.kind == "rate":
            # Reopened: the next closure is the final one, and the resident rates it again.
            plan.dissatisfied_once = plan.rated = False
        if result.kind != "rate" or result.status is Status.WAITING:
            heapq.heappush(self.queue, Pending(self._after(at, self._delay(plan)), plan.index, plan))
        return 1
