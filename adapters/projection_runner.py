"""Follows the chain's event log into the dashboard views, one page of events a transaction."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters.log_follower import follow_log
from adapters.view_store import DashboardViewsMixin
from engine.grievance import Grievance
from engine.service_chain import ServiceChain
from projections.dashboard import Lineages, project

PageCallback = Callable[[int, int], None]  # (events in the page, position reached)


class DashboardProjection:
    """Reads pages of notifications after the views' tracked position and writes their changes.

    A page's changes and its position commit together, so a crash at any point leaves the views at
    the end of some page, and the next run carries on from there. Two runners on one store cannot
    both commit a page: the tracking record refuses a position that is not past the stored one.
    """

    def __init__(self, chain: ServiceChain, views: DashboardViewsMixin, *, page_size: int = 2000) -> None:
        self.chain = chain
        self.views = views
        self.page_size = page_size
        self.lineages = Lineages(chain.chart)

    def step(self) -> int:
        """Project the next page; the number of events it held (0 when the views are up to date)."""
        position = self.views.position()
        notifications = self.chain.recorder.select_notifications(start=position + 1, limit=self.page_size)
        if not notifications:
            return 0
        events: list[Any] = [self.chain.mapper.to_domain_event(n) for n in notifications]
        touched = {e.originator_id for e in events if not isinstance(e, Grievance.Reported)}
        try:
            changes = project(events, self.views.rows_of(touched) if touched else {}, self.lineages)
        except LookupError:
            if self.views.position() != position:
                return len(notifications)  # another runner projected this page while we read it
            raise
        # If another runner committed this page first, the tracking record refuses our position and the
        # whole transaction rolls back: carry on from wherever the views now are.
        with contextlib.suppress(IntegrityError):
            self.views.write(changes, notifications[-1].id)
        return len(notifications)

    def catch_up(self, on_page: PageCallback | None = None) -> int:
        """Project pages until the views hold every stored event; the number of events projected."""
        total = 0
        while count := self.step():
            total += count
            if on_page:
                on_page(count, self.views.position())
        return total

    def rebuild(self, on_page: PageCallback | None = None) -> int:
        """Empty the views and project the whole log again, building the list's indexes once at the end.
        (A rebuild that dies half-way leaves them to the next start, which creates what is missing.)"""
        self.views.clear(drop_indexes=True)
        projected = self.catch_up(on_page)
        self.views.create_views()
        self.views.analyze()
        return projected

    def backlog(self) -> int:
        """How many notifications the views have still to project (an upper bound: ids may have gaps)."""
        return max(0, (self.chain.recorder.max_notification_id() or 0) - self.views.position())

    def follow(self, stop: threading.Event, *, idle_wait: float = 0.2) -> None:
        """Keep the views up to date until `stop` is set: woken by PostgreSQL's NOTIFY, or polling SQLite."""
        follow_log(self.chain.recorder, self.catch_up, stop, idle_wait=idle_wait)
