"""The one zone in which times are shown to people (the CLI's lines and tables, the HTML reports, the dashboard
page): China Standard Time unless GRIEVANCE_DISPLAY_TIMEZONE names another, and always labelled, so that a
time on one screen can be set beside a time on another. Machine output (--json, JSON Lines, the API) keeps
RFC 3339 with its offset instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigurationError, InvalidValue
from engine.times import parse_time

DEFAULT_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class DisplayZone:
    """An IANA time zone, and how its times are written for people: `2021-01-01 00:00 CST`."""

    name: str = DEFAULT_ZONE
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigurationError(f"GRIEVANCE_DISPLAY_TIMEZONE: {self.name!r} is not an IANA time zone "
                                     "(such as Asia/Shanghai, Asia/Hong_Kong or UTC)") from None  # fmt: skip
        object.__setattr__(self, "zone", zone)

    def label(self, moment: datetime) -> str:
        """The zone's name at `moment`: its abbreviation (CST, UTC, BST) where it has one, else its offset."""
        local = moment.astimezone(self.zone)
        abbreviation = local.tzname() or ""
        return abbreviation if abbreviation.isalpha() else offset_label(local.utcoffset() or timedelta())

    def minute(self, moment: datetime | str) -> str:
        """`moment` to the minute, in this zone, labelled: `2021-01-01 00:00 CST`."""
        return self._written(moment, "%Y-%m-%d %H:%M")

    def second(self, moment: datetime | str) -> str:
        """`moment` to the second, in this zone, labelled: `2021-01-01 00:00:00 CST`."""
        return self._written(moment, "%Y-%m-%d %H:%M:%S")

    def _written(self, moment: datetime | str, form: str) -> str:
        if isinstance(moment, str):
            # The stores' own records (disclosures, operator actions, token and key files) keep their times as
            # RFC 3339 text; one that is none (a file edited by hand) is shown as it is rather than stop a listing.
            try:
                read = parse_time("time", moment, bounded=False)
            except InvalidValue:
                return moment
        else:
            read = moment
        local = read.astimezone(self.zone)
        return f"{local:{form}} {self.label(local)}"

    def detail(self, key: str, value: object) -> str:
        """An event's detail as shown: its times (`claim_due`, `finish_due`, any `…_at`) in this zone."""
        if isinstance(value, str) and key.endswith(("_due", "_at")):
            return self.minute(value)
        return str(value)

    def labels(self, year: int) -> dict[int, str]:
        """The zone's labels by offset in minutes through `year` (one, or two where clocks change), for the page,
        which shows times in this zone with the same labels."""
        found: dict[int, str] = {}
        moment = datetime(year, 1, 1, tzinfo=UTC)
        while moment.year == year:
            offset = moment.astimezone(self.zone).utcoffset() or timedelta()
            found.setdefault(int(offset.total_seconds() // 60), self.label(moment))
            moment += timedelta(days=7)
        return found


def offset_label(offset: timedelta) -> str:
    """`UTC+08:00` for an offset of eight hours."""
    minutes = int(offset.total_seconds() // 60)
    return f"UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
