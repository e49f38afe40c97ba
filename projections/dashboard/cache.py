"""Dashboard answers remembered until the views move: supervisors' pages ask the same questions again and
again, and an answer can only change when a page of events has been projected.

Every answer is keyed by the question, its arguments and the views' tracked position (read at most every
`recheck_seconds`); "now" is taken to the minute, so the figures of a live page are at most a minute
behind the clock and `recheck_seconds` behind the views. Access is still checked on every request: this
sits behind the HTTP handlers' checks, not in front of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cachetools import LRUCache

from engine.chart import OrgChart
from projections.dashboard.queries import Dashboard
from projections.dashboard.tables import DashboardViews

REMEMBERED = (
    "headline", "counts", "rates", "durations", "durations_by_level", "settled_by_level", "daily",
    "overdue_queue", "grievances", "points", "service_requests", "latest_activity_day",
)  # fmt: skip


class CachedDashboard(Dashboard):
    """A Dashboard whose answers are reused while the views stand still."""

    def __init__(
        self, views: DashboardViews, chart: OrgChart, *, maxsize: int = 4096, recheck_seconds: float = 0.2
    ) -> None:
        super().__init__(views, chart)
        self._answers: LRUCache[tuple[Any, ...], Any] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()
        self._recheck = recheck_seconds
        self._position, self._checked = -1, float("-inf")
        for name in REMEMBERED:
            setattr(self, name, self._remembering(name, getattr(super(), name)))

    def position(self) -> int:
        """The views' position as last read (at most `recheck_seconds` ago)."""
        now = time.monotonic()
        if now - self._checked > self._recheck:
            self._position, self._checked = self.views.position(), now
        return self._position

    def _remembering(self, name: str, ask: Callable[..., Any]) -> Callable[..., Any]:
        def remembered(*args: Any, **kwargs: Any) -> Any:
            if isinstance(kwargs.get("now"), datetime):
                kwargs["now"] = kwargs["now"].replace(second=0, microsecond=0)
            key = (name, self.position(), args, tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))
            with self._lock:
                if key in self._answers:
                    return self._answers[key]
            answer = ask(*args, **kwargs)
            with self._lock:
                self._answers[key] = answer
            return answer

        return remembered


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
