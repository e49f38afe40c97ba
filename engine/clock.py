"""When things happen: the server's clock, which decides what is overdue, and the bounds on times that come
from outside (a command's `occurred_at`, stamped by a phone that may be offline or wrong).

The defaults: a command may be stamped at most 5 minutes ahead of the server (phones' clocks drift a little)
and at most 72 hours behind it (a grid worker's phone queues commands while offline; a weekend without signal
is the longest gap seen in practice, and a limit to claim is 1 to 5 days, so anything older could make a
grievance overdue the moment it arrives). Historic playback (the demo, the benchmarks, a migration from an
old system) goes through an operator at the store, or runs with a clock of its own (`PlaybackClock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import InvalidValue
from engine.times import EARLIEST

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The server's own clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """How far ahead of, and behind, the server's clock a command may be stamped."""

    skew: timedelta = timedelta(minutes=5)
    lag: timedelta = timedelta(hours=72)
    # Even a historic import goes no further back than any time from outside may (engine/times.py says why).
    earliest: datetime = EARLIEST

    def check(self, at: datetime, now: datetime, *, historic: bool = False) -> None:
        """Refuse (`InvalidValue` on `occurred_at`) a time ahead of `now` by more than the skew, before
        `earliest`, or, unless the command comes from a historic import, behind `now` by more than the lag."""
        if at > now + self.skew:
            raise InvalidValue("occurred_at", f"{at.isoformat()} is in the future (the server's clock reads "
                               f"{now.isoformat()}; at most {_span(self.skew)} ahead is accepted)")  # fmt: skip
        if at < self.earliest:
            raise InvalidValue("occurred_at", f"{at.isoformat()} is before {self.earliest:%Y-%m-%d}, earlier than "
                               "anything this engine records")  # fmt: skip
        if not historic and at < now - self.lag:
            raise InvalidValue("occurred_at", f"{at.isoformat()} is more than {_span(self.lag)} before the "
                               f"server's clock ({now.isoformat()}); older ones come through an operator")  # fmt: skip


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} hours" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} minutes"


class PlaybackClock:
    """A clock a process is given to play history back (the demo's year, a migration): it reads what it was
    last set to, so that limits, overdue judgements and time bounds follow the history being played."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise InvalidValue("clock", "must carry a timezone (a naive time is ambiguous)")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        """Move the clock to `moment`; it never goes back."""
        self.now = max(self.now, moment)
