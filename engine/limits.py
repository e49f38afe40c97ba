"""How long each link of the chain has to claim a grievance, and then to settle it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from engine.errors import ConfigurationError
from engine.levels import Level

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Limit:
    """Time to claim after arriving at a level, and time to settle (resolve, reply or escalate) once claimed."""

    claim: timedelta
    finish: timedelta


# Modelled on 12345-hotline practice: the lowest links answer within a day and settle small
# matters in days; committees that convene larger bodies get weeks.
DEFAULT_LIMITS: Mapping[Level, Limit] = {
    Level.MEMBER_HOUSEHOLD: Limit(claim=1 * DAY, finish=3 * DAY),
    Level.BUILDING_GROUP: Limit(claim=1 * DAY, finish=5 * DAY),
    Level.GRID_BRANCH: Limit(claim=1 * DAY, finish=7 * DAY),
    Level.COMMUNITY: Limit(claim=2 * DAY, finish=10 * DAY),
    Level.JOINT_COMMITTEE: Limit(claim=3 * DAY, finish=15 * DAY),
    Level.STREET_COMMITTEE: Limit(claim=3 * DAY, finish=20 * DAY),
    Level.LEADING_GROUP: Limit(claim=5 * DAY, finish=30 * DAY),
}


# Ten years: longer than any limit a service chain sets, and far from the dates Python can hold.
MAX_HOURS = 10 * 366 * 24


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """Configured limits per level; every level must have one, and each must be positive."""

    per_level: Mapping[Level, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def __post_init__(self) -> None:
        for level in Level:
            limit = self.per_level.get(level)
            if limit is None:
                raise ConfigurationError(f"limits.{level}: no time limit configured for this level")
            if limit.claim <= timedelta(0) or limit.finish <= timedelta(0):
                raise ConfigurationError(f"limits.{level}: claim and finish limits must be positive")

    def __getitem__(self, level: Level) -> Limit:
        return self.per_level[level]

    @classmethod
    def from_hours(cls, hours: Mapping[str, tuple[float, float]]) -> TimeLimits:
        """Override some levels' (claim, finish) limits, given in hours; the rest keep their defaults."""
        per_level = dict(DEFAULT_LIMITS)
        for name, (claim, finish) in hours.items():
            try:
                level = Level(name)
            except ValueError:
                choices = ", ".join(level.value for level in Level)
                raise ConfigurationError(f"limits: {name!r} is not a level of the chain ({choices})") from None
            for value in (claim, finish):
                # NaN, infinities and years beyond any deadline would only fail later, on the first due time.
                if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= MAX_HOURS:
                    raise ConfigurationError(
                        f"limits.{name}: {value!r} is not a number of hours above 0 and at most {MAX_HOURS:,}"
                    )
            per_level[level] = Limit(claim=timedelta(hours=claim), finish=timedelta(hours=finish))
        return cls(per_level)
