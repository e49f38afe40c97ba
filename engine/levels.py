"""The seven links of the party-building service chain (党建服务链条), lowest first."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """A link of the chain; a grievance climbs them one at a time, never skipping or descending."""

    MEMBER_HOUSEHOLD = "member_household"
    BUILDING_GROUP = "building_group"
    GRID_BRANCH = "grid_branch"
    COMMUNITY = "community"
    JOINT_COMMITTEE = "joint_committee"
    STREET_COMMITTEE = "street_committee"
    LEADING_GROUP = "leading_group"

    @property
    def rank(self) -> int:
        """Position in the chain, 1 (member household) to 7 (leading group)."""
        return _ORDER.index(self) + 1

    @property
    def chinese(self) -> str:
        """The name the source articles use."""
        return _CHINESE[self]

    @property
    def english(self) -> str:
        """The name in English, as DOMAIN.md translates it."""
        return _ENGLISH[self]

    @property
    def above(self) -> Level | None:
        """The next link up, or None at the leading group."""
        i = _ORDER.index(self)
        return _ORDER[i + 1] if i + 1 < len(_ORDER) else None


_ORDER: tuple[Level, ...] = tuple(Level)

_CHINESE: dict[Level, str] = {
    Level.MEMBER_HOUSEHOLD: "党员示范户",
    Level.BUILDING_GROUP: "楼宇党小组",
    Level.GRID_BRANCH: "网格党支部",
    Level.COMMUNITY: "社区党组织",
    Level.JOINT_COMMITTEE: "社区联建委员会",
    Level.STREET_COMMITTEE: "街道共建委员会",
    Level.LEADING_GROUP: "城市基层党建工作领导小组",
}

_ENGLISH: dict[Level, str] = {
    Level.MEMBER_HOUSEHOLD: "Model member household",
    Level.BUILDING_GROUP: "Building party group",
    Level.GRID_BRANCH: "Grid party branch",
    Level.COMMUNITY: "Community party organisation",
    Level.JOINT_COMMITTEE: "Community joint-building committee",
    Level.STREET_COMMITTEE: "Street co-building committee",
    Level.LEADING_GROUP: "City leading group for grassroots party building",
}


def label(level: Level) -> str:
    """The level's names for a person, Chinese then English, as every channel shows them."""
    return f"{level.chinese} {level.english}"


# Residents bring problems to the lower links (DOMAIN.md rule 1); the community office's
# one-stop counter (一站式受理) takes them too. Higher links only receive escalations.
REPORTING_LEVELS: frozenset[Level] = frozenset(
    {Level.MEMBER_HOUSEHOLD, Level.BUILDING_GROUP, Level.GRID_BRANCH, Level.COMMUNITY}
)
