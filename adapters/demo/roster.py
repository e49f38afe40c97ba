"""The Yongji demo's roster, sized from DOMAIN.md and the chart: who claims the year's problems.

- a member in each model household (党员示范户), 1,125;
- the 681 community party members registered with Yongji's 22 communities (报到, 双报到), 30 or 31 a
  community, six at each of its four grids and the rest at the community itself; one in three names the
  employer stationed in the community as their workplace;
- a party group for each building (375), a party organisation for each grid branch, community, joint
  committee, street committee and the leading group (136): 485 grassroots party organisations and groups
  with the communities and grids, as in Yongji; each acted for by a member on the roster;
- the units stationed in each community (驻区单位), registered with its joint committee: a property firm,
  a police station, an employer, and a school in every other community; each acted for by one of the
  community's members (one who names no workplace, so on the roster before the employer its colleagues name);
- a grid worker for each grid (88), an area chief for each community, a building chief for each building
  (its 24 households) and two neighbour chiefs in each grid's first building (12 households each).

Ids say what each entry is and where (m-, pg-, po-, ...); names are generated, seeded, and sealed as any
person's are. Nothing here draws on the year's own random numbers, so the year plays as it did before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

from engine.chart import OrgChart, Unit
from engine.levels import Level
from engine.roster import Kind
from engine.roster_commands import Join

COMMUNITY_MEMBERS = 681
MEMBERS_PER_GRID = 6
HOUSEHOLDS_PER_BUILDING = 24
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
    "余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
# What is stationed in each community (a school in every other one), in that order.
STATIONED = (Kind.PROPERTY_FIRM, Kind.POLICE_STATION, Kind.EMPLOYER, Kind.SCHOOL)
GIVEN = "秀英丽敏静伟芳娜强磊军洋勇艳杰娟涛明超霞平刚桂兰建华国庆海燕玉红春梅志宏永利"


def household_member(unit_id: str) -> str:
    """The id of the member living in a model household."""
    return f"m-{unit_id}"


def serving_members(unit_id: str, count: int) -> list[str]:
    """The ids of the community members registered at a grid or community."""
    return [f"m-{unit_id}-{k:02d}" for k in range(1, count + 1)]


def party_body(unit: Unit) -> str:
    """The id of a unit's own party group (a building) or party organisation (every unit above)."""
    return f"{'pg' if unit.level is Level.BUILDING_GROUP else 'po'}-{unit.id}"


def stationed(joint_id: str, kind: Kind) -> str:
    """The id of a unit of `kind` stationed in the community whose joint committee is `joint_id`."""
    return f"{kind.value.split('_')[0]}-{joint_id}"


def _shares(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class DemoRoster:
    """The demo's roster for a chart: the Join commands to play before the year, and who claims where."""

    def __init__(self, chart: OrgChart, *, seed: int = 2020) -> None:
        self.chart = chart
        self.names = random.Random(seed * 7919)
        communities = [u for u in chart if u.level is Level.COMMUNITY]
        self.members_at: dict[str, list[str]] = {}
        for community, share in zip(communities, _shares(COMMUNITY_MEMBERS, len(communities)), strict=True):
            grids = chart.children_of(community.id)
            self.members_at[community.id] = serving_members(community.id, share - MEMBERS_PER_GRID * len(grids))
            for grid in grids:
                self.members_at[grid.id] = serving_members(grid.id, MEMBERS_PER_GRID)
        # Each party group's and organisation's representatives, by its id (who acts for a body, `acts_for`).
        self._acting = {party_body(u): [self.acting_for(u)] for u in chart if u.level is not Level.MEMBER_HOUSEHOLD}

    def reporter(self, unit: Unit) -> str:
        """Who reports a problem raised at a unit: the grid worker of its grid, or the area chief of a community."""
        for above in self.chart.path_to_root(unit.id):
            if above.level is Level.GRID_BRANCH:
                return f"gw-{above.id}"
            if above.level is Level.COMMUNITY:
                return f"ac-{above.id}"
        raise LookupError(f"{unit.id} is above the communities: nobody reports there")

    def _name(self, kind: Kind) -> str:
        surname = self.names.choice(SURNAMES)
        return surname + "".join(self.names.choice(GIVEN) for _ in range(self.names.choice((1, 2, 2))))

    def joins(self, *, actor: str, at: datetime) -> Iterator[Join]:
        """Every entry's Join, in an order in which each names only entries before it."""
        common = {"actor": actor, "occurred_at": at}
        n = 0

        def join(entry_id: str, kind: Kind, unit_id: str, name: str | None = None, **fields: object) -> Join:
            nonlocal n
            n += 1
            return Join(command_id=f"demo-roster:{n}", entry_id=entry_id, kind=kind, unit_id=unit_id,
                        name=name or self._name(kind), **common, **fields)  # type: ignore[arg-type]  # fmt: skip

        names = {Kind.PROPERTY_FIRM: "物业服务有限公司", Kind.POLICE_STATION: "警务室", Kind.EMPLOYER: "驻区企业",
                 Kind.SCHOOL: "小学"}  # fmt: skip
        # The people first, then the stationed units (each acted for by a member already on the roster), then the
        # members who name their employer (which must be on it before them), then the groups and organisations.
        working: list[tuple[str, str, str]] = []
        for unit in self.chart:
            if unit.level is Level.MEMBER_HOUSEHOLD:
                yield join(household_member(unit.id), Kind.MEMBER, unit.id)
            for k, member in enumerate(self.members_at.get(unit.id, [])):
                if k % 3 == 0:
                    working.append((member, unit.id, stationed(self._joint_of(unit), Kind.EMPLOYER)))
                else:
                    yield join(member, Kind.MEMBER, unit.id)
            if unit.level is Level.GRID_BRANCH:
                yield join(f"gw-{unit.id}", Kind.GRID_WORKER, unit.id)
            if unit.level is Level.COMMUNITY:
                yield join(f"ac-{unit.id}", Kind.AREA_CHIEF, unit.id,
                           households=[f"hh-{b.id}-{h:02d}" for g in self.chart.children_of(unit.id)
                                       for b in self.chart.children_of(g.id) for h in (1, 2)])  # fmt: skip
            if unit.level is Level.BUILDING_GROUP:
                households = [f"hh-{unit.id}-{h:02d}" for h in range(1, HOUSEHOLDS_PER_BUILDING + 1)]
                yield join(f"bc-{unit.id}", Kind.BUILDING_CHIEF, unit.id, households=households)
                if unit.id.endswith("-1"):
                    for half in (0, 1):
                        yield join(f"nc-{unit.id}-{half + 1}", Kind.NEIGHBOUR_CHIEF, unit.id,
                                   households=households[half * 12 : (half + 1) * 12])  # fmt: skip
        for joint in (u for u in self.chart if u.level is Level.JOINT_COMMITTEE):
            place = joint.name.removesuffix("联建委员会")
            for kind, body in zip(STATIONED, self.organisations_at(joint)[1:], strict=False):
                yield join(body, kind, joint.id, place + names[kind], representatives=self.acts_for(body))
        for member, unit_id, workplace in working:
            yield join(member, Kind.MEMBER, unit_id, workplace_id=workplace)
        for unit in self.chart.walk():
            if unit.level is Level.MEMBER_HOUSEHOLD:
                continue
            kind = Kind.PARTY_GROUP if unit.level is Level.BUILDING_GROUP else Kind.PARTY_ORGANISATION
            yield join(party_body(unit), kind, unit.id, unit.name, representatives=self.acts_for(party_body(unit)))

    def _joint_of(self, unit: Unit) -> str:
        return next(u.id for u in self.chart.path_to_root(unit.id) if u.level is Level.JOINT_COMMITTEE)

    def acting_for(self, unit: Unit) -> str:
        """Who acts for a unit's own group or organisation: a member registered at or below it (the first one)."""
        for below in self.chart.walk(unit.id):
            if below.level is Level.MEMBER_HOUSEHOLD:
                return household_member(below.id)
            if members := self.members_at.get(below.id):
                return members[0]
        raise LookupError(f"no member at or below {unit.id}")

    def acts_for(self, body_id: str) -> list[str]:
        """Who the roster names as acting for a body: for a unit's own group or organisation, `acting_for` it; for
        a unit stationed in a community, one of the community's members who names no workplace, a different one
        for each of its stationed units."""
        if body_id in self._acting:
            return self._acting[body_id]
        for kind in STATIONED:
            prefix = stationed("", kind)
            if body_id.startswith(prefix):
                joint = self.chart.unit(body_id.removeprefix(prefix))
                community = next(u for u in self.chart.walk(joint.id) if u.level is Level.COMMUNITY)
                free = [m for k, m in enumerate(self.members_at[community.id]) if k % 3]
                return [free[STATIONED.index(kind) % len(free)]]
        raise LookupError(f"{body_id} is no body of the demo's roster")

    def organisations_at(self, unit: Unit) -> list[str]:
        """The organisations that claim at a unit: its own party organisation, and at a joint committee the units
        stationed in its community."""
        own = [party_body(unit)]
        if unit.level is not Level.JOINT_COMMITTEE:
            return own
        number = int(unit.id.rsplit("-", 1)[-1])
        return own + [stationed(unit.id, k) for k in STATIONED if k is not Kind.SCHOOL or number % 2]
