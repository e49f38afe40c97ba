"""Projects the chain's event log into the dashboard views, one page of events a transaction (catching up, or
rebuilding from zero); `adapters.storage.log_follower` keeps it following the log."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from eventsourcing.persistence import IntegrityError, Notification, OperationalError

from engine.collector import collector_paused
from engine.service_chain import ServiceChain
from projections.dashboard.changes import (
    GrievanceRow,
    Lineages,
    PageChanges,
    Tally,
    Unprojectable,
    project,
    without_counters,
)
from projections.dashboard.event_shapes import GRIEVANCE_EVENTS, REPORTS, reader
from projections.dashboard.tables import DashboardViews
from schemas.dashboard import SetAsideEvent

log = structlog.get_logger("grievance.views")
PageCallback = Callable[[int, int], None]  # (events in the page, position reached)
# About 0.8 KiB a row (measured: 41 MiB for 50,000), so some 16 MiB: more than the open grievances of a
# city district, whose rows are the ones that come back.
REMEMBERED_ROWS = 20_000
# Units' own counter rows a rebuild holds before it writes them, a bound on its memory: a rebuild of 20,000
# grievances held 81,000 rows rolled up in all, written at once; a bigger store's are written every few hundred
# thousand events.
TALLIED_ROWS = 150_000
# Below this many events a rebuild stays in one process: starting another (an interpreter, the chain's imports and
# connections) takes about a second, the time this process projects some 50,000 events in.
PARTED_REBUILD_EVENTS = 200_000
# Times a page's write is tried while another process holds SQLite's write lock (each try waits out the store's own
# lock timeout, 10 s, first).
LOCKED_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class Part:
    """One of `parts` parts of the log up to `stop`: the events of the aggregates the store puts in part `index`
    (by their ids, each aggregate wholly in one part), projected into the views alone, beside the other parts."""

    index: int
    parts: int
    stop: int


class PartedLog(Protocol):
    """A store that reads a part of its log (adapters/storage/event_stores.py)."""

    def select_notifications_of_part(
        self, start: int, limit: int, *, stop: int, part: int, parts: int
    ) -> Sequence[Notification]: ...


class ElsewhereParts(Protocol):
    """Projects parts of the log into the views rebuilt beside the live ones in other processes, while this one
    projects its own part: `start` them, then `join` waits for every one and gives the events they projected
    (raising what one raised); `stop` ends any still running."""

    processes: int

    def start(self, parts: Sequence[Part]) -> None: ...

    def join(self) -> int: ...

    def stop(self) -> None: ...


class RecentRows:
    """The list rows a runner projected last, up to a bound (the least recently projected go first): a
    grievance's next events usually come soon after its last, and then need no read from the views. Keyed by
    the integer of the grievance's id, as `project` keys them."""

    def __init__(self, bound: int = REMEMBERED_ROWS) -> None:
        self.bound = bound
        self.position = 0  # the position these rows are as of (its pages written, or handed to the writer)
        self._rows: OrderedDict[int, GrievanceRow] = OrderedDict()

    def get(self, grievance_id: int) -> GrievanceRow | None:
        return self._rows.get(grievance_id)

    def remember(self, rows: Iterable[tuple[int, GrievanceRow]], position: int) -> None:
        for grievance_id, row in rows:
            self._rows[grievance_id] = row
            self._rows.move_to_end(grievance_id)
        while len(self._rows) > self.bound:
            self._rows.popitem(last=False)
        self.position = position

    def forget(self) -> None:
        self._rows.clear()
        self.position = 0


@dataclass
class Page:
    """What became of a page of events: how many, the last one's position, and whether it was written."""

    events: int
    last: int
    written: bool


class PageWrites:
    """Writes pages of view changes in order and each in its own transaction: at once, or `behind` by one
    page in a thread of its own. Behind suits views in a database server: its work on one page then runs on
    another core while this process projects the next. (Not SQLite: there the writes run in this process,
    and a second thread only contends for the interpreter.)"""

    def __init__(self, views: DashboardViews, *, behind: bool) -> None:
        self.views = views
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="view-writer") if behind else None
        self._pending: Future[None] | None = None

    def write(self, changes: PageChanges, position: int, *, previous: int) -> None:
        """Write a page, or hand it to the writer once the one before is written; raises what the write of an
        earlier page raised, and then this page is not written."""
        self.flush()
        if self._writer is None:
            _write_when_unlocked(self.views, changes, position, previous=previous)
        else:
            self._pending = self._writer.submit(_write_when_unlocked, self.views, changes, position, previous=previous)

    def flush(self) -> None:
        """Wait until every page handed over is written; raises what a write raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> PageWrites:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A page already handed over still commits whole (or not at all) if the caller failed meanwhile.
        if self._writer is not None:
            self._writer.shutdown(wait=True)


def _write_when_unlocked(views: DashboardViews, changes: PageChanges, position: int, *, previous: int) -> None:
    """Write a page, trying again while another process holds SQLite's write lock past its lock timeout (a rebuild's
    other part writing its tally, say): the failed transaction wrote nothing, and the page is still the next."""
    for attempt in range(1, LOCKED_WRITE_ATTEMPTS + 1):
        try:
            views.write(changes, position, previous=previous)
            return
        except OperationalError as error:
            if "database is locked" not in str(error) or attempt == LOCKED_WRITE_ATTEMPTS:
                raise
            log.warning("a page of the views waits: another process holds the store's write lock", position=position,
                        attempt=attempt)  # fmt: skip


class DashboardProjection:
    """Reads pages of notifications after the views' tracked position and writes their changes.

    A page's changes and its position commit together, so a crash at any point leaves the views at
    the end of some page, and the next run carries on from there. Two runners on one store cannot
    both commit a page: a page commits only while the views are still where it was read from.
    """

    def __init__(
        self, chain: ServiceChain, views: DashboardViews, *, page_size: int = 2000, tallied_rows: int = 0,
        part: Part | None = None,
    ) -> None:  # fmt: skip
        self.chain = chain
        self.views = views if part is None else views.for_part(part.index, part.parts)
        self.page_size = page_size
        # With a part, only that part of the log is read, up to its stop: the views rebuilt beside in several
        # processes, each its own part (`rebuild`).
        self.part = part
        # With `tallied_rows`, pages' counters are held and written together once that many counter rows are
        # held, and when the log is read to its end: for views rebuilt beside, which nobody reads until they are
        # whole. (A rebuild that dies meanwhile is started afresh, so what was held dies with it harmlessly.)
        self.tallied_rows = tallied_rows
        self.lineages = Lineages(chain.chart)
        self.tally = Tally(self.lineages) if tallied_rows else None
        self.recent = RecentRows()
        # The views hold no personal data: leave residents' names sealed rather than open each one.
        self.mapper = chain.sealed_mapper()
        self.read_event = reader(self.mapper)

    def step(self) -> int:
        """Project the next page; the number of events it held (0 when the views are up to date)."""
        page = self._next_page(self._position(), PageWrites(self.views, behind=False))
        return page.events

    def catch_up(self, on_page: PageCallback | None = None) -> int:
        """Project pages until the views hold every stored event; the number of events projected."""
        total = 0
        with PageWrites(self.views, behind=self.views.server_side) as writes:
            position = self._position()
            while True:
                page = self._next_page(position, writes)
                if page.written:
                    position = page.last
                    total += page.events
                    if on_page:
                        on_page(page.events, position)
                    continue
                if not page.events and self.tally is not None and self.tally.pages:
                    # The log's end: what the tally holds is written, leaving the views where they are.
                    writes.write(self.tally.taken(PageChanges(lineages=self.lineages)), position, previous=position)
                    continue
                if not page.events and self._flushed(writes):
                    return total
                # Another runner moved the views: read on from wherever they now are.
                position = self._position()

    def _next_page(self, position: int, writes: PageWrites) -> Page:
        """Read, project and write (or hand over) the page after `position`.

        The cyclic garbage collector waits meanwhile. A page holds thousands of new objects alive until it
        is written, so the collector, run every 700 allocations, found them all alive, moved them to older
        generations and kept going over them again: a seventh of a rebuild. The page's objects are
        dropped before it resumes, so that their counts free them and it finds only what is left.
        """
        with collector_paused():
            notifications, events = self._read(position)
            if not notifications:
                return Page(0, position, written=False)
            page = Page(len(notifications), notifications[-1].id, written=False)
            page.written = self._project(position, notifications, events, writes)
            del notifications, events
        return page

    def _position(self) -> int:
        position = self.views.position()
        if position != self.recent.position:
            # Another runner (or a rebuild) moved the views: what we remember may be out of date.
            self.recent.forget()
        return position

    def _read(self, position: int) -> tuple[Sequence[Notification], list[Any]]:
        """The page of notifications after `position`, and their events (None for one that cannot be read)."""
        if self.part is None:
            notifications = self.chain.recorder.select_notifications(start=position + 1, limit=self.page_size)
        else:
            store: PartedLog = self.chain.recorder  # type: ignore[assignment]
            notifications = store.select_notifications_of_part(
                position + 1, self.page_size, stop=self.part.stop, part=self.part.index, parts=self.part.parts
            )
        events: list[Any] = []
        for n in notifications:
            try:
                events.append(self.read_event(n))
            except Exception as error:  # a stored event no mapper reads: set aside, like one it cannot project
                log.error("event set aside: it cannot be read", position=n.id, error=str(error))
                events.append(None)
        return notifications, events

    def _project(
        self, position: int, notifications: Sequence[Notification], events: list[Any], writes: PageWrites
    ) -> bool:
        """Project a page read after `position` and write it (or hand it to the writer); False if another
        runner moved the views meanwhile, and then nothing of the page is written.

        An event that cannot be read or projected is set aside, recorded with its position and error in the
        page's own transaction, and the page is projected again without it: one event never stops the views.
        """
        reached = notifications[-1].id
        set_aside = {i: _set_aside(n, None, "cannot be read") for i, (n, e) in enumerate(zip(notifications, events,
                     strict=True)) if e is None}  # fmt: skip
        # The roster's events (engine/roster.py) share the log: the views count grievances, and pass them by.
        others = {i for i, e in enumerate(events) if e is not None and not isinstance(e, GRIEVANCE_EVENTS)}
        try:
            while True:
                kept = [i for i in range(len(events)) if i not in set_aside and i not in others]
                page = [events[i] for i in kept]
                try:
                    changes = project(page, self._rows_before(page, writes), self.lineages,
                                      rolled_up=self.tally is None)  # fmt: skip
                    break
                except Unprojectable as bad:
                    writes.flush()
                    if self.views.position() != position:
                        return False  # another runner projected this page while we read it
                    i = kept[bad.index]
                    set_aside[i] = _set_aside(notifications[i], events[i], f"{type(bad.error).__name__}: {bad.error}")
                    log.error("event set aside: it cannot be projected", position=notifications[i].id,
                              error=set_aside[i].error)  # fmt: skip
            changes.set_aside = [set_aside[i] for i in sorted(set_aside)]
            if self.tally is not None:
                self.tally.add(changes)
                full = self.tally.keys >= self.tallied_rows
                changes = self.tally.taken(changes) if full else without_counters(changes)
            writes.write(changes, reached, previous=position)
        except IntegrityError:
            if self.tally is not None:
                raise  # another runner wrote views a tally was held for: they cannot be made whole
            # The tracking record refused a position of ours: that page's transaction rolled back whole.
            self.recent.forget()
            return False
        self.recent.remember(changes.rows.items(), reached)
        return True

    def _flushed(self, writes: PageWrites) -> bool:
        """Whether every page handed to `writes` is now written (False if another runner got there first)."""
        try:
            writes.flush()
        except IntegrityError:
            if self.tally is not None:
                raise  # as in `_project`
            self.recent.forget()
            return False
        return True

    def _rows_before(self, events: list[Any], writes: PageWrites) -> dict[int, GrievanceRow]:
        """The stored rows of the grievances whose events these are, bar those first reported here, by the integer
        of their ids."""
        touched = {e.originator_id.int: e.originator_id for e in events}
        for e in events:
            if type(e) in REPORTS:
                touched.pop(e.originator_id.int, None)
        known: dict[int, GrievanceRow] = {}
        unknown = []
        recent = self.recent.get
        for key, grievance_id in touched.items():
            row = recent(key)
            if row is None:
                unknown.append(grievance_id)
            else:
                known[key] = row
        if unknown:
            writes.flush()  # the views must hold every page projected so far before we read rows from them
            known.update((grievance_id.int, row) for grievance_id, row in self.views.rows_of(unknown).items())
        return known

    def set_aside(self, *, limit: int = 20) -> tuple[int, list[SetAsideEvent]]:
        """How many events the views have set aside, and the latest `limit` of them."""
        return self.views.set_aside(limit=limit)

    def rebuild(self, on_page: PageCallback | None = None, *, elsewhere: ElsewhereParts | None = None) -> int:
        """Project the whole log again into views beside the live ones, then put them in their place in one
        transaction: supervisors read the old views meanwhile, never emptier ones, and the list's indexes are
        built once, at the switch. A rebuild that dies half-way leaves the live views as they were (and its
        own half to the next rebuild, which starts it afresh).

        With processes `elsewhere`, a log of `PARTED_REBUILD_EVENTS` or more is split into parts by grievance, one
        a process, this one included: a grievance's row and every counter are its own events' alone, and
        counters add up, so parts projected side by side give what one process gives, on every core."""
        beside = self.views.beside()
        beside.start_afresh(self.chain.chart)
        projected = 0
        stop = self.chain.recorder.max_notification_id() or 0
        if elsewhere is not None and elsewhere.processes and stop >= PARTED_REBUILD_EVENTS:
            projected += self._parted(beside, stop, elsewhere, on_page)
        projected += DashboardProjection(
            self.chain, beside, page_size=self.page_size, tallied_rows=TALLIED_ROWS
        ).catch_up(on_page)
        self.views.take_over(beside)
        self.recent.forget()
        self.views.analyze()
        return projected

    def _parted(
        self, beside: DashboardViews, stop: int, elsewhere: ElsewhereParts, on_page: PageCallback | None
    ) -> int:
        """Project the log up to `stop` into `beside` in parts, the first here and the rest `elsewhere`; the events
        projected. `beside` is then at `stop`, for the rest of the log to follow as usual."""
        parts = [Part(i, elsewhere.processes + 1, stop) for i in range(elsewhere.processes + 1)]
        for part in parts:
            beside.for_part(part.index, part.parts).start_part()
        elsewhere.start(parts[1:])
        try:
            projected = DashboardProjection(
                self.chain, beside, page_size=self.page_size, tallied_rows=TALLIED_ROWS, part=parts[0]
            ).catch_up(on_page)
            projected += elsewhere.join()
        finally:
            elsewhere.stop()
        beside.join_parts(len(parts), stop)
        if on_page:
            on_page(projected, stop)  # this process's part ends short of `stop`; the views are there now
        return projected

    def backlog(self) -> int:
        """How many notifications the views have still to project (an upper bound: ids may have gaps)."""
        return max(0, (self.chain.recorder.max_notification_id() or 0) - self.views.position())


def _set_aside(notification: Notification, event: Any, error: str) -> SetAsideEvent:
    return SetAsideEvent(
        position=notification.id,
        grievance_id=str(notification.originator_id),
        version=notification.originator_version,
        event=type(event).__name__ if event is not None else notification.topic.rsplit(".", 1)[-1],
        error=error[:1000],
    )
