"""How the dashboard views stand: behind the log by how much, set aside what, kept by a runner that is alive
and moving. `/health`, `grievance check` and `projections status` all ask this."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from eventsourcing.persistence import ApplicationRecorder

from projections.dashboard.tables import DashboardViews
from schemas.dashboard import ViewsHealth

# A runner with events to project whose views have not moved for this long is stuck.
STUCK_AFTER_S = 60.0
# Views this many events behind the log are far behind: supervisors would read a stale city.
FAR_BEHIND = 10_000


class ViewsWatch:
    """Watches the views over time (a position that does not move is only seen over time). `runner_alive`
    tells whether this process's runner is alive; None when another process keeps the views."""

    def __init__(
        self,
        views: DashboardViews,
        recorder: ApplicationRecorder,
        *,
        runner_alive: Callable[[], bool] | None = None,
        stuck_after: float = STUCK_AFTER_S,
        far_behind: int = FAR_BEHIND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.views = views
        self.recorder = recorder
        self.runner_alive = runner_alive
        self.stuck_after = stuck_after
        self.far_behind = far_behind
        self.clock = clock
        self._lock = threading.Lock()
        self._last_position, self._moved_at = -1, clock()

    def health(self) -> ViewsHealth:
        """The views' state now."""
        position = self.views.position()
        backlog = max(0, (self.recorder.max_notification_id() or 0) - position)
        count, latest = self.views.set_aside(limit=5)
        now = self.clock()
        with self._lock:
            if position != self._last_position or backlog == 0:
                self._last_position, self._moved_at = position, now
            still_for = now - self._moved_at
        problems = []
        runner: Literal["running", "stopped", "elsewhere"] = (
            "elsewhere" if self.runner_alive is None else "running" if self.runner_alive() else "stopped"
        )
        if runner == "stopped":
            problems.append("the projection runner of this process has stopped")
        if backlog and still_for > self.stuck_after:
            problems.append(f"the views have not moved for {still_for:.0f} s with {backlog:,} events to project")
        if backlog > self.far_behind:
            problems.append(f"the views are {backlog:,} events behind the log")
        return ViewsHealth(
            status="unhealthy" if problems else "ok",
            healthy=not problems,
            position=position,
            backlog=backlog,
            set_aside=count,
            latest_set_aside=latest,
            runner=runner,
            problems=problems,
        )
