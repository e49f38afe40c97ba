"""Projects the chain's events into the resident's loop, one page of events a transaction; rebuilt from zero
on request. An event that cannot be read is set aside (logged with its position), and the rest go on."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol
from uuid import UUID

import structlog

from engine.service_chain import ServiceChain
from projections.resident_loop.changes import LoopChanges, project

log = structlog.get_logger("grievance.resident_loop")


class LoopViews(Protocol):
    """Where the loop's read models are kept (projections.resident_loop.tables)."""

    def position(self) -> int:
        """The position in the event log the views are as of."""
        ...

    def units_of(self, grievance_ids: Collection[UUID]) -> dict[UUID, str]:
        """The unit each of these grievances waits at, as last projected."""
        ...

    def write(self, changes: LoopChanges, units: Mapping[UUID, str], position: int, *, previous: int) -> bool:
        """Store a page's changes and where its grievances now wait, as of `position`, in one transaction;
        False (and nothing stored) if the views are no longer as of `previous` (another runner moved them)."""
        ...

    def clear(self) -> None:
        """Drop every projected row and the position (what senders delivered stays)."""
        ...


class ResidentLoopProjection:
    """Keeps the loop's views following the chain's events."""

    def __init__(self, chain: ServiceChain, views: LoopViews, *, page_size: int = 1000) -> None:
        self.chain = chain
        self.views = views
        self.page_size = page_size
        # Messages carry no personal data: residents' fields stay sealed as stored.
        self.mapper = chain.sealed_mapper()

    def catch_up(self) -> int:
        """Project pages until the views hold every stored event; the number of events projected."""
        total = 0
        while True:
            position = self.views.position()
            notifications = self.chain.recorder.select_notifications(start=position + 1, limit=self.page_size)
            if not notifications:
                return total
            events: list[Any] = []
            for n in notifications:
                try:
                    events.append(self.mapper.to_domain_event(n))
                except Exception as error:  # one unreadable event never stops the loop: set aside, logged
                    log.error("event set aside: it cannot be read", position=n.id, error=type(error).__name__)
            units = self.views.units_of({e.originator_id for e in events})
            try:
                changes = project(events, units)
            except Exception as error:  # an event that fits no grievance: the page is projected without it
                log.error("page projected event by event", position=notifications[0].id, error=type(error).__name__)
                changes = self._one_by_one(events, units)
            if self.views.write(changes, units, notifications[-1].id, previous=position):
                total += len(notifications)

    def _one_by_one(self, events: list[Any], units: dict[UUID, str]) -> LoopChanges:
        merged = LoopChanges()
        for e in events:
            try:
                part = project([e], units)
            except Exception as error:
                log.error("event set aside: it cannot be projected", grievance_id=str(e.originator_id),
                          version=e.originator_version, error=type(error).__name__)  # fmt: skip
                continue
            merged.messages += part.messages
            merged.closures.update(part.closures)
            merged.ratings += part.ratings
            merged.residents.update(part.residents)
        return merged

    def rebuild(self) -> int:
        """Project every event again from zero."""
        self.views.clear()
        return self.catch_up()
