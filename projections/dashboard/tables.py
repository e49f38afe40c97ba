"""The dashboard read model's tables, in SQLite's and PostgreSQL's dialects, beside the event store: written a
page at a time.

Each page's view changes and its tracking position are written in one transaction, through the
library's tracking recorders, so a view never counts an event twice or misses one, whatever crashes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError, ProgrammingError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.errors import InsufficientPrivilege
from psycopg.sql import SQL, Identifier

from engine.chart import OrgChart
from engine.errors import ConfigurationError
from projections.dashboard.changes import (
    DAY_COLUMNS,
    MONTH_COLUMNS,
    POINTS_COLUMNS,
    ROW_COLUMNS,
    SETTLED_COLUMNS,
    GrievanceRow,
    PageChanges,
)
from schemas.dashboard import SetAsideEvent

PROJECTION = "dashboard"
# What the views' tables mean. Views of another version are dropped and projected again from zero when a
# process opens them. 2: a unit's counters are the totals of the unit and everything below it (1 kept
# each unit's own and summed the chart's lineage at query time). 3: the funnel and the durations by level
# have tables of their own. 4: the views record the chart they are totalled along. 5: grievances are
# counted by category too. 6: events that cannot be projected are set aside in a table of their own. 7: the
# points ledger is kept by the unit where the points were earned, rolled up the chart. 8: a unit's list index
# holds the list's whole order (newest first, then by id). 9: a grievance's row keeps when its last event
# occurred (Open311's updated_datetime), and the funnel counts the closures later reopened too.
VIEWS_VERSION = 9
LINEAGE_COLUMNS = ("street_id", "community_id", "grid_id")
log = structlog.get_logger("grievance.views")
LIVE_PREFIX, BESIDE_PREFIX = "dash_", "dashnew_"
# Between a rebuild's tracking name and its parts' (`DashboardViews.for_part`).
PART_MARK = " part "
IDS_PER_QUERY = 500

# name, key columns, counter columns
COUNTER_TABLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("dash_status_count", ("unit_id", "status"), ("n",)),
    ("dash_category_count", ("unit_id", "category"), ("n",)),
    ("dash_unit_month", ("unit_id", "month"), MONTH_COLUMNS),
    ("dash_unit_day", ("unit_id", "day"), DAY_COLUMNS),
    ("dash_duration", ("unit_id", "measure", "bucket"), ("n",)),
    ("dash_points", ("unit_id", "claimant", "mode"), POINTS_COLUMNS),
    ("dash_due_day", ("unit_id", "due_day"), ("n",)),
    ("dash_settled", ("unit_id", "level"), SETTLED_COLUMNS),
    ("dash_level_duration", ("level", "measure", "bucket"), ("n",)),
)
_TEXT_COLUMNS = {"grievance_id", "status", "level", "unit_id", "category", "channel", "title", "reported_unit",
                 "claim_mode", "claimant", "rating", "month", "day", "measure", "mode", "street_id", "community_id",
                 "grid_id"}  # fmt: skip


def _column_type(name: str) -> str:
    return "TEXT" if name in _TEXT_COLUMNS else "BIGINT"


def _ddl() -> list[str]:
    columns = ", ".join(f"{c} {_column_type(c)}" for c in (*ROW_COLUMNS, "due_at"))
    statements = [
        f"CREATE TABLE IF NOT EXISTS dash_grievance ({columns}, PRIMARY KEY (grievance_id))",
        "CREATE INDEX IF NOT EXISTS dash_grievance_due ON dash_grievance (due_at) WHERE due_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS dash_grievance_unit_due ON dash_grievance (unit_id, due_at) "
        "WHERE due_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS dash_grievance_unit_reported ON dash_grievance "
        "(unit_id, reported_at DESC, grievance_id)",
        # The whole chart's list, newest first, in the list's own order: without it, a sort of every row.
        "CREATE INDEX IF NOT EXISTS dash_grievance_reported ON dash_grievance (reported_at DESC, grievance_id)",
    ]
    # The whole chart's list of one status, level or category, in the list's order: without them a rare value
    # is found by walking every row (see projections/dashboard/list_plan.py).
    statements += [
        f"CREATE INDEX IF NOT EXISTS dash_grievance_{column}_reported ON dash_grievance "
        f"({column}, reported_at DESC, grievance_id)"
        for column in ("status", "level", "category")
    ]
    for column in LINEAGE_COLUMNS:
        statements += [
            f"CREATE INDEX IF NOT EXISTS dash_grievance_{column}_due ON dash_grievance ({column}, due_at) "
            "WHERE due_at IS NOT NULL",
            # In the list's own order, ties too: a unit's page is read off the index, never sorted.
            f"CREATE INDEX IF NOT EXISTS dash_grievance_{column}_reported ON dash_grievance "
            f"({column}, reported_at DESC, grievance_id)",
        ]
    for table, keys, counters in COUNTER_TABLES:
        cols = ", ".join(
            [*(f"{k} {_column_type(k)}" for k in keys), *(f"{c} BIGINT NOT NULL DEFAULT 0" for c in counters)]
        )
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({', '.join(keys)}))")
    # Open grievances due from today on, the part not yet overdue: a few days' worth whatever the history.
    statements.append("CREATE INDEX IF NOT EXISTS dash_due_day_from ON dash_due_day (due_day)")
    # The chart the counters are totalled along, and its digest, which every page's write checks (see
    # `total_along`).
    statements.append("CREATE TABLE IF NOT EXISTS dash_chart (unit_id TEXT PRIMARY KEY, parent_id TEXT, level TEXT)")
    statements.append("CREATE TABLE IF NOT EXISTS dash_chart_digest (digest TEXT NOT NULL)")
    # Events that could not be read or projected, by their place in the log.
    statements.append("CREATE TABLE IF NOT EXISTS dash_set_aside (position BIGINT PRIMARY KEY, grievance_id TEXT, "
                      "version BIGINT, event TEXT, error TEXT)")  # fmt: skip
    return statements


VIEW_TABLES = (
    "dash_grievance",
    *(table for table, _keys, _counters in COUNTER_TABLES),
    "dash_chart",
    "dash_chart_digest",
    "dash_set_aside",
)
# Tables earlier versions of the views had: dropped with them.
RETIRED_TABLES = ("dash_lineage",)
SECONDARY_INDEXES = tuple(
    statement.split()[5] for statement in _ddl() if statement.startswith("CREATE INDEX IF NOT EXISTS")
)


class ChartChanged(ConfigurationError):
    """This process totals along another chart than the one the views were last recorded along."""


@dataclass(frozen=True)
class Upsert:
    """How a page's values go into one view table: the new row where the key is missing, else `on_conflict`."""

    table: str
    columns: tuple[str, ...]
    on_conflict: str


def _counter_upsert(table: str, keys: Sequence[str], counters: Sequence[str]) -> Upsert:
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    return Upsert(table, (*keys, *counters), f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}")


_ROW_TABLE_COLUMNS = (*ROW_COLUMNS, "due_at")
ROW_UPSERT = Upsert(
    "dash_grievance",
    _ROW_TABLE_COLUMNS,
    "ON CONFLICT (grievance_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _ROW_TABLE_COLUMNS[1:]),
)
COUNTER_UPSERTS = {table: _counter_upsert(table, keys, counters) for table, keys, counters in COUNTER_TABLES}


def _counter_params(changes: PageChanges) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    single: dict[str, Mapping[Any, int]] = {
        "dash_status_count": changes.status_counts,
        "dash_category_count": changes.category_counts,
        "dash_duration": changes.durations,
        "dash_due_day": changes.due_days,
        "dash_level_duration": changes.level_durations,
    }
    several: dict[str, Mapping[Any, Mapping[str, int]]] = {
        "dash_unit_month": changes.months,
        "dash_unit_day": changes.days,
        "dash_points": changes.points,
        "dash_settled": changes.settled,
    }
    for table, _keys, counters in COUNTER_TABLES:
        if table in single:
            # A zero delta (a grievance that came and went within the page) would be a write for nothing.
            params = [(*key, n) for key, n in single[table].items() if n]
        else:
            zeros = (0,) * len(counters)
            params = [(*key, *map(deltas.get, counters, zeros)) for key, deltas in several[table].items()]
        if params:
            params.sort()  # in key order, each upsert finds its row's page of the index near the last one's
            yield table, params


_ROW_VALUES = attrgetter(*ROW_COLUMNS[1:])


def _row_params(row: GrievanceRow) -> tuple[Any, ...]:
    return (str(row.grievance_id), *_ROW_VALUES(row), row.due_at)


def _row_from(record: Any) -> GrievanceRow:
    values = {c: record[c] for c in ROW_COLUMNS}
    values["grievance_id"] = UUID(values["grievance_id"])
    return GrievanceRow(**values)


class DashboardViews:
    """The dashboard's tables and their one-transaction writes, for either store."""

    mark = "?"
    datastore: Any
    # Whether the database does its work in a server process of its own (rather than in this one).
    server_side = False
    # Text compared by code point, as Python compares it (SQLite's default; PostgreSQL's follows the locale).
    by_code_point = ""
    tracking_name = f"{PROJECTION}<-grievances"
    # Every table of the views is named with this prefix; views rebuilt beside these use another.
    prefix = LIVE_PREFIX

    # The chart this process totals along (unit: parent, level), and its digest, once `total_along` has
    # recorded them.
    chart_digest: str | None = None
    _chart_units: Mapping[str, tuple[str | None, str]] = {}

    # Provided by the library's tracking recorder each concrete class also inherits from.
    _insert_tracking: Callable[[Any, Tracking], None]
    max_tracking_id: Callable[[str], int | None]

    def _delete_tracking_statement(self, *, like: bool = False) -> Any:
        """Delete the tracking record named (`like`: those whose names match the pattern)."""
        raise NotImplementedError

    def _start_tracking_statement(self) -> Any:
        """Record position 0 unless a position is recorded: `write` needs a record to hold from the start."""
        raise NotImplementedError

    def _hold_position_statement(self) -> Any:
        """Lock the views' tracking record if it is at the given position, returning it; else return nothing."""
        raise NotImplementedError

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            self._enter_schema(cursor)
            yield cursor if self.prefix == LIVE_PREFIX else _Renamed(cursor, self.prefix)

    # ----------------------------------------------------------------------------- rebuilding beside

    def beside(self) -> DashboardViews:
        """Views of the same shape beside these (tables `dashnew_*`, a tracking record of their own), to rebuild
        into while these go on answering; `take_over` then puts them in these ones' place."""
        shadow = copy.copy(self)
        shadow.prefix, shadow.tracking_name = BESIDE_PREFIX, f"{PROJECTION}-rebuild<-grievances"
        return shadow

    def start_afresh(self, chart: OrgChart) -> None:
        """Empty views of the current version, totalled along `chart`, at position 0, without the list's secondary
        indexes (built once, at `take_over`): the start of a rebuild beside the live views."""
        units = {u.id: (u.parent, u.level.value) for u in chart}
        with self._transaction(commit=True) as cursor:
            self._serialise_creation(cursor)
            cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
            cursor.execute(self._delete_tracking_statement(like=True), [f"{self.tracking_name}{PART_MARK}%"])
            cursor.execute(self._start_tracking_statement(), [self.tracking_name])
            for table in VIEW_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _ddl():
                if not statement.startswith("CREATE INDEX"):
                    cursor.execute(statement)
            self._record_chart(cursor, units, _digest(units))
        self.chart_digest, self._chart_units = _digest(units), units

    def for_part(self, index: int, parts: int) -> DashboardViews:
        """These views, as written by a process projecting one of `parts` parts of the log (`runner.Part`): a
        tracking record of its own, at the last event of its part it projected."""
        part = copy.copy(self)
        part.tracking_name = f"{self.tracking_name}{PART_MARK}{index} of {parts}"
        return part

    def start_part(self) -> None:
        """Put this part's tracking record at position 0, for its first page to write from."""
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
            cursor.execute(self._start_tracking_statement(), [self.tracking_name])

    def join_parts(self, parts: int, stop: int) -> None:
        """Once each of `parts` parts is projected up to `stop`, the views are at `stop`, their parts' records gone."""
        with self._transaction(commit=True) as cursor:
            self._begin_writing(cursor)
            for index in range(parts):
                cursor.execute(self._delete_tracking_statement(), [self.for_part(index, parts).tracking_name])
            cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
            cursor.execute(self._start_tracking_statement(), [self.tracking_name])
            if stop:
                self._insert_tracking(cursor, Tracking(self.tracking_name, stop))

    def expect_chart(self, chart: OrgChart) -> None:
        """Write pages only while the views are totalled along `chart` (a process projecting a part of views that
        another started afresh): else `ChartChanged`, as in `total_along`."""
        units = {u.id: (u.parent, u.level.value) for u in chart}
        self.chart_digest, self._chart_units = _digest(units), units

    def take_over(self, rebuilt: DashboardViews) -> None:
        """Put views rebuilt beside these in their place, in one transaction: readers see the old views until it
        commits and the rebuilt ones after, never anything emptier. The position becomes the rebuilt one's; a
        runner still following the old views is refused its next page, reads the new position and goes on."""
        reached = rebuilt.position()
        with self._transaction(commit=True) as cursor:
            self._begin_writing(cursor)
            cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
            cursor.execute(self._start_tracking_statement(), [self.tracking_name])
            if reached:
                self._insert_tracking(cursor, Tracking(self.tracking_name, reached))
            for table in VIEW_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute(f"ALTER TABLE {rebuilt.prefix}{table.removeprefix(LIVE_PREFIX)} RENAME TO {table}")
                self._rename_key_index(cursor, table, rebuilt.prefix)
            for statement in _ddl():
                cursor.execute(statement)  # the secondary indexes, under their own names
            cursor.execute(self._delete_tracking_statement(), [rebuilt.tracking_name])
        self.chart_digest, self._chart_units = rebuilt.chart_digest, rebuilt._chart_units

    def _rename_key_index(self, cursor: Any, table: str, prefix: str) -> None:
        """Give a renamed table's primary key index the name the next rebuild's table will not ask for again
        (SQLite names it after the table itself)."""

    def _enter_schema(self, cursor: Any) -> None:
        """Make the views' unqualified table names resolve where the events are."""

    def position(self) -> int:
        """The last notification id the views include; 0 before the first."""
        return self.max_tracking_id(self.tracking_name) or 0

    def create_table(self) -> None:
        """The library's tracking table, then the views' own (called when the recorder is constructed)."""
        super().create_table()  # type: ignore[misc]
        self.create_views()

    def create_views(self) -> None:
        """Create whatever of the views is missing; views of another `VIEWS_VERSION` are dropped first and
        their position forgotten, so that the next catch-up projects them again from zero."""
        # The tracking record first, then the tables, as a page's write takes them (the record, then the
        # tables): in the other order, a runner writing a page meanwhile and this transaction deadlock.
        with self._transaction(commit=True) as cursor:
            self._begin_writing(cursor)
            cursor.execute("CREATE TABLE IF NOT EXISTS dash_version (version BIGINT NOT NULL)")
            cursor.execute("SELECT version FROM dash_version")
            found = cursor.fetchone()
            outdated = found is None or int(found["version"]) != VIEWS_VERSION
            if outdated:
                cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
                cursor.execute(self._start_tracking_statement(), [self.tracking_name])
                for table in (*VIEW_TABLES, *RETIRED_TABLES):
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute("DELETE FROM dash_version")
                cursor.execute(f"INSERT INTO dash_version VALUES ({self.mark})", [VIEWS_VERSION])
            for statement in _ddl():
                cursor.execute(statement)
            if outdated and self.chart_digest is not None:
                self._record_chart(cursor, self._chart_units, self.chart_digest)  # it went with the tables

    def _begin_writing(self, cursor: Any) -> None:
        """Start a transaction that reads the views before it changes them by writing first: SQLite then holds
        the write lock from the start, where a transaction that has read cannot take it while another process
        writes, and fails at once rather than waiting. The write ensures the tracking record exists."""
        self._serialise_creation(cursor)
        cursor.execute(self._start_tracking_statement(), [self.tracking_name])

    def _serialise_creation(self, cursor: Any) -> None:
        """Make processes opening the views at the same moment take turns (SQLite's writers already do)."""

    def rows_of(self, grievance_ids: Iterable[UUID]) -> dict[UUID, GrievanceRow]:
        """The stored list rows of these grievances (those it has)."""
        ids = [str(g) for g in grievance_ids]
        found: dict[UUID, GrievanceRow] = {}
        with self._transaction(commit=False) as cursor:
            for i in range(0, len(ids), IDS_PER_QUERY):
                chunk = ids[i : i + IDS_PER_QUERY]
                marks = ", ".join([self.mark] * len(chunk))
                cursor.execute(f"SELECT * FROM dash_grievance WHERE grievance_id IN ({marks})", chunk)
                for record in cursor.fetchall():
                    row = _row_from(record)
                    found[row.grievance_id] = row
        return found

    def write(self, changes: PageChanges, position: int, *, previous: int) -> None:
        """A page's changes and the position they bring the views to, in one transaction, provided the views
        are still at `previous`, where the page was read from; else IntegrityError and nothing is written.

        The library's tracking record only refuses a position that does not move forward. That is not
        enough when two runners read pages of different sizes: one at 0 writes 1-11, the other at 0 then
        writes 1-17, and events 1-11 would count twice. Holding the record at `previous` first also makes
        runners queue on it rather than on the counters' rows.
        """
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._hold_position_statement(), [self.tracking_name, previous])
            if cursor.fetchone() is None:
                raise IntegrityError(f"{self.tracking_name}: the views have moved past {previous}")
            if self.chart_digest is not None:
                cursor.execute("SELECT digest FROM dash_chart_digest")
                recorded = cursor.fetchone()
                if recorded is None or recorded["digest"] != self.chart_digest:
                    raise ChartChanged(
                        "the views are now totalled along another chart, recorded by a process started since; "
                        "restart this one with GRIEVANCE_CHART as that one has it"
                    )
            if changes.rows:
                self._upsert_many(cursor, ROW_UPSERT, [_row_params(r) for r in changes.rows.values()])
            for table, params in _counter_params(changes):
                self._upsert_many(cursor, COUNTER_UPSERTS[table], params)
            if changes.set_aside:
                marks = ", ".join([self.mark] * 5)
                cursor.executemany(
                    f"INSERT INTO dash_set_aside (position, grievance_id, version, event, error) VALUES ({marks})",
                    [(s.position, s.grievance_id, s.version, s.event, s.error) for s in changes.set_aside],
                )
            if position != previous:  # a write that leaves the views where they are adds its changes alone
                self._insert_tracking(cursor, Tracking(self.tracking_name, position))

    def set_aside(self, *, limit: int = 20) -> tuple[int, list[SetAsideEvent]]:
        """How many events the views set aside, and the latest `limit` of them, newest first."""
        with self._transaction(commit=False) as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM dash_set_aside")
            count = int(cursor.fetchone()["n"])
            cursor.execute(f"SELECT * FROM dash_set_aside ORDER BY position DESC LIMIT {self.mark}", [limit])
            latest = [
                SetAsideEvent(position=int(r["position"]), grievance_id=r["grievance_id"], version=int(r["version"]),
                              event=r["event"], error=r["error"])
                for r in cursor.fetchall()
            ]  # fmt: skip
        return count, latest

    def _upsert_many(self, cursor: Any, upsert: Upsert, params: list[tuple[Any, ...]]) -> None:
        """Upsert rows of values, each in `upsert.columns` order (no two with the same key)."""
        cursor.executemany(_insert_values(upsert, self.mark), params)

    def clear(self, *, drop_indexes: bool = False) -> None:
        """Empty every view and forget the position, in one transaction: the start of a rebuild. With
        `drop_indexes`, the list's secondary indexes go too, to be built once at the end (`create_views`)
        rather than kept up to date row by row; queries stay right meanwhile, only slower."""
        with self._transaction(commit=True) as cursor:
            self._empty(cursor, drop_indexes=drop_indexes)

    def _empty(self, cursor: Any, *, drop_indexes: bool = False) -> None:
        # The tracking record before the tables, as a page's write takes them (see `create_views`).
        cursor.execute(self._delete_tracking_statement(), [self.tracking_name])
        cursor.execute(self._start_tracking_statement(), [self.tracking_name])
        if drop_indexes:
            for name in SECONDARY_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("DELETE FROM dash_grievance")
        cursor.execute("DELETE FROM dash_set_aside")
        for table, _keys, _counters in COUNTER_TABLES:
            cursor.execute(f"DELETE FROM {table}")

    def total_along(self, chart: OrgChart) -> bool:
        """Record the chart the counters are totalled along, and write pages only while it stays recorded.

        If the recorded one differs in a unit's parent or level, or lacks a unit it had, the totals and each
        grievance's street, community and grid no longer match: the views are emptied and their position
        forgotten, so that the next catch-up projects them again from zero (True). Units new to the chart
        change no total and are only recorded. Either way a process still writing along the old chart is
        refused from its next page on (ChartChanged).
        """
        units = {u.id: (u.parent, u.level.value) for u in chart}
        digest = _digest(units)
        with self._transaction(commit=True) as cursor:
            self._begin_writing(cursor)
            cursor.execute("SELECT unit_id, parent_id, level FROM dash_chart")
            recorded = {r["unit_id"]: (r["parent_id"], r["level"]) for r in cursor.fetchall()}
            moved = any(units.get(unit) != place for unit, place in recorded.items())
            if moved:
                self._empty(cursor)
                cursor.execute("DELETE FROM dash_chart")
            self._record_chart(cursor, {u: p for u, p in units.items() if moved or u not in recorded}, digest)
        self.chart_digest, self._chart_units = digest, units
        return moved

    def _record_chart(self, cursor: Any, new: Mapping[str, tuple[str | None, str]], digest: str) -> None:
        if new:
            marks = ", ".join([self.mark] * 3)
            cursor.executemany(
                f"INSERT INTO dash_chart (unit_id, parent_id, level) VALUES ({marks})",
                [(unit, parent, level) for unit, (parent, level) in new.items()],
            )
        cursor.execute("DELETE FROM dash_chart_digest")
        cursor.execute(f"INSERT INTO dash_chart_digest (digest) VALUES ({self.mark})", [digest])

    def analyze(self) -> None:
        """Refresh the planner's statistics of the views, which a bulk rebuild leaves far out of date."""
        with self._transaction(commit=True) as cursor:
            for table in VIEW_TABLES:
                cursor.execute(f"ANALYZE {table}")

    @contextmanager
    def reading(self, *, in_list_order: bool = False) -> Iterator[Any]:
        """A read-only cursor, for the dashboard's queries; `in_list_order`, for a page of the grievance list that
        is to be read off an index in the list's order, whatever the store's planner guesses."""
        with self._transaction(commit=False) as cursor:
            if in_list_order:
                self._read_in_index_order(cursor)
            yield cursor

    def _read_in_index_order(self, cursor: Any) -> None:
        """SQLite's planner walks an index that gives the ORDER BY when a LIMIT is asked; nothing to do."""

    @contextmanager
    def in_list_order(self, cursor: Any) -> Iterator[None]:
        """Within a read transaction of `reading`, the statements run meanwhile read a page in the list's order, as
        `reading(in_list_order=True)` has them; the statements after, as the store's planner chooses."""
        self._read_in_index_order(cursor)
        try:
            yield
        finally:
            self._planner_chooses(cursor)

    def _planner_chooses(self, cursor: Any) -> None:
        """Undo `_read_in_index_order` for the rest of the transaction."""


@cache
def _insert_values(upsert: Upsert, mark: str) -> str:
    marks = ", ".join([mark] * len(upsert.columns))
    return f"INSERT INTO {upsert.table} ({', '.join(upsert.columns)}) VALUES ({marks}) {upsert.on_conflict}"


@cache
def _insert_unnested(upsert: Upsert) -> str:
    arrays = ", ".join(f"%b::{_column_type(c)}[]" for c in upsert.columns)
    return (
        f"INSERT INTO {upsert.table} ({', '.join(upsert.columns)}) SELECT * FROM unnest({arrays}) {upsert.on_conflict}"
    )


@cache
def _staging(upsert: Upsert) -> str:
    # Temporary, so unlogged and the session's own; emptied at each commit (PostgreSQL skips that in transactions
    # that touch no temporary table). Its "already exists" notice is not worth a message a write.
    return (
        f"SET LOCAL client_min_messages = warning; CREATE TEMPORARY TABLE IF NOT EXISTS staged_{upsert.table} "
        f"(LIKE {upsert.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


@cache
def _copy_into_staging(upsert: Upsert) -> str:
    return f"COPY staged_{upsert.table} ({', '.join(upsert.columns)}) FROM STDIN"


@cache
def _insert_staged(upsert: Upsert) -> str:
    columns = ", ".join(upsert.columns)
    return f"INSERT INTO {upsert.table} ({columns}) SELECT {columns} FROM staged_{upsert.table} {upsert.on_conflict}"


def _digest(units: Mapping[str, tuple[str | None, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted(units.items())).encode()).hexdigest()


class _Renamed:
    """A cursor whose statements name the views' tables with another prefix (views rebuilt beside the live
    ones): every table and index the views' SQL names starts `dash_`, and no value is written into it."""

    def __init__(self, cursor: Any, prefix: str) -> None:
        self._cursor = cursor
        self._prefix = prefix

    def _sql(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # The statement comes first, or by name (psycopg's `query`, as the library passes it).
        if args:
            return (self._renamed(args[0]), *args[1:]), kwargs
        return args, {k: self._renamed(v) if k in ("query", "sql") else v for k, v in kwargs.items()}

    def _renamed(self, statement: Any) -> Any:
        return statement.replace(LIVE_PREFIX, self._prefix) if isinstance(statement, str) else statement

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._sql(args, kwargs)
        return self._cursor.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._sql(args, kwargs)
        return self._cursor.executemany(*args, **kwargs)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._sql(args, kwargs)
        return self._cursor.copy(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class SQLiteDashboardViews(DashboardViews, SQLiteTrackingRecorder):
    """The dashboard's tables in the SQLite file beside the events."""

    def _delete_tracking_statement(self, *, like: bool = False) -> str:
        return f"DELETE FROM tracking WHERE application_name {'LIKE' if like else '='} ?"

    def _start_tracking_statement(self) -> str:
        return "INSERT INTO tracking (application_name, notification_id) VALUES (?, 0) ON CONFLICT DO NOTHING"

    def _hold_position_statement(self) -> str:
        return (
            "UPDATE tracking SET notification_id = notification_id WHERE application_name = ? AND notification_id = ? "
            "RETURNING notification_id"
        )


class PostgresDashboardViews(DashboardViews, PostgresTrackingRecorder):
    """The dashboard's tables in the PostgreSQL schema beside the events."""

    mark = "%s"
    server_side = True
    by_code_point = ' COLLATE "C"'

    # Whether the views' role may create temporary tables in this database, asked at the first write (and again
    # after a write it refused).
    _may_stage: bool | None = None

    def write(self, changes: PageChanges, position: int, *, previous: int) -> None:
        try:
            super().write(changes, position, previous=previous)
        except ProgrammingError as error:
            if not (self._may_stage and isinstance(error.__cause__, InsufficientPrivilege)):
                raise
            # TEMPORARY revoked while this process runs: that transaction wrote nothing; ask again, and write it.
            self._may_stage = None
            super().write(changes, position, previous=previous)

    def _upsert_many(self, cursor: Any, upsert: Upsert, params: list[tuple[Any, ...]]) -> None:
        # COPY into a table of this transaction's own, then one INSERT ... SELECT: psycopg formats COPY's rows in C,
        # where binding column arrays spends microseconds of Python on every value (and executemany, tens on every
        # row). A rebuild's page of 3,750 list rows: 6-7 rather than 12-13 us a row, and a third of the client's
        # CPU; a write of ten rows costs a quarter of a millisecond more. A database that revokes TEMPORARY from
        # the role gets the column arrays. (Keys are unique within a page, as ON CONFLICT DO UPDATE needs within
        # one statement.)
        if self._may_stage is None:
            cursor.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY') AS may")
            self._may_stage = bool(cursor.fetchone()["may"])
            if not self._may_stage:
                log.warning("this role may not create temporary tables here: the views are written the slower way, "
                            "with column arrays (GRANT TEMPORARY ON DATABASE to the role for COPY)")  # fmt: skip
        if not self._may_stage:
            cursor.execute(_insert_unnested(upsert), [list(column) for column in zip(*params, strict=True)])
            return
        cursor.execute(_staging(upsert))
        with cursor.copy(_copy_into_staging(upsert)) as rows_in:
            for row in params:
                rows_in.write_row(row)
        cursor.execute(_insert_staged(upsert))

    def _enter_schema(self, cursor: Any) -> None:
        cursor.execute(SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema)))

    def _read_in_index_order(self, cursor: Any) -> None:
        # The list's masked filters (list_plan.py) have no statistics, so PostgreSQL takes them to match 0.5 % of
        # rows: at 50,000 grievances it then scanned the table and sorted 11,639 rows (41 ms) rather than walk
        # the street's index for the first 51. The views' counts chose the walk; these keep to it.
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true), "
                       "set_config('enable_bitmapscan', 'off', true), "
                       "set_config('enable_sort', 'off', true)")  # fmt: skip

    def _planner_chooses(self, cursor: Any) -> None:
        cursor.execute("SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT; "
                       "SET LOCAL enable_sort TO DEFAULT")  # fmt: skip

    def _rename_key_index(self, cursor: Any, table: str, prefix: str) -> None:
        old = f"{prefix}{table.removeprefix(LIVE_PREFIX)}_pkey"
        cursor.execute(f"ALTER INDEX IF EXISTS {old} RENAME TO {table}_pkey")

    def _serialise_creation(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{self.datastore.schema}.dash_version"])

    def _delete_tracking_statement(self, *, like: bool = False) -> Any:
        return SQL("DELETE FROM {0}.{1} WHERE application_name " + ("LIKE" if like else "=") + " %s").format(
            *self._tracking_table()
        )

    def _start_tracking_statement(self) -> Any:
        return SQL(
            "INSERT INTO {0}.{1} (application_name, notification_id) VALUES (%s, 0) ON CONFLICT DO NOTHING"
        ).format(*self._tracking_table())

    def _hold_position_statement(self) -> Any:
        # In READ COMMITTED a writer that queued on the row re-reads it once the first commits, so the
        # second of two runners finds the position moved and changes nothing.
        return SQL(
            "UPDATE {0}.{1} SET notification_id = notification_id WHERE application_name = %s AND notification_id = %s "
            "RETURNING notification_id"
        ).format(*self._tracking_table())

    def _tracking_table(self) -> tuple[Identifier, Identifier]:
        return Identifier(self.datastore.schema), Identifier(self.tracking_table_name)
