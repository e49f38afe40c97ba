"""Where the dashboard read model lives: tables beside the event store, written a page at a time.

Each page's view changes and its tracking position are written in one transaction, through the
library's tracking recorders, so a view never counts an event twice or misses one, whatever crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from engine.chart import OrgChart
from projections.dashboard import (
    DAY_COLUMNS,
    MONTH_COLUMNS,
    POINTS_COLUMNS,
    ROW_COLUMNS,
    GrievanceRow,
    PageChanges,
)

PROJECTION = "dashboard"
LINEAGE_COLUMNS = ("street_id", "community_id", "grid_id")
IDS_PER_QUERY = 500

# name, key columns, counter columns
COUNTER_TABLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("dash_status_count", ("unit_id", "status"), ("n",)),
    ("dash_unit_month", ("unit_id", "month"), MONTH_COLUMNS),
    ("dash_unit_day", ("unit_id", "day"), DAY_COLUMNS),
    ("dash_duration", ("unit_id", "measure", "bucket"), ("n",)),
    ("dash_points", ("claimant", "mode"), POINTS_COLUMNS),
    ("dash_due_day", ("unit_id", "due_day"), ("n",)),
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
        "CREATE INDEX IF NOT EXISTS dash_grievance_unit_reported ON dash_grievance (unit_id, reported_at)",
    ]
    for column in LINEAGE_COLUMNS:
        statements += [
            f"CREATE INDEX IF NOT EXISTS dash_grievance_{column}_due ON dash_grievance ({column}, due_at) "
            "WHERE due_at IS NOT NULL",
            f"CREATE INDEX IF NOT EXISTS dash_grievance_{column}_reported ON dash_grievance ({column}, reported_at)",
        ]
    # unit → each of its ancestors (and itself), from the chart: the roll-up queries join on it.
    statements.append(
        "CREATE TABLE IF NOT EXISTS dash_lineage (ancestor_id TEXT, unit_id TEXT, PRIMARY KEY (ancestor_id, unit_id))"
    )
    for table, keys, counters in COUNTER_TABLES:
        cols = ", ".join(
            [*(f"{k} {_column_type(k)}" for k in keys), *(f"{c} BIGINT NOT NULL DEFAULT 0" for c in counters)]
        )
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({', '.join(keys)}))")
    return statements


SECONDARY_INDEXES = tuple(
    statement.split()[5] for statement in _ddl() if statement.startswith("CREATE INDEX IF NOT EXISTS")
)


def _upsert(table: str, keys: Sequence[str], counters: Sequence[str], mark: str) -> str:
    columns = [*keys, *counters]
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    )


def _row_upsert(mark: str) -> str:
    columns = [*ROW_COLUMNS, "due_at"]
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return (
        f"INSERT INTO dash_grievance ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT (grievance_id) DO UPDATE SET {sets}"
    )


def _counter_params(changes: PageChanges) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    sources: dict[str, Mapping[Any, Any]] = {
        "dash_status_count": {k: {"n": v} for k, v in changes.status_counts.items() if v},
        "dash_unit_month": changes.months,
        "dash_unit_day": changes.days,
        "dash_duration": {k: {"n": v} for k, v in changes.durations.items()},
        "dash_points": changes.points,
        "dash_due_day": {k: {"n": v} for k, v in changes.due_days.items() if v},
    }
    for table, _keys, counters in COUNTER_TABLES:
        params = [(*key, *(deltas.get(c, 0) for c in counters)) for key, deltas in sources[table].items()]
        if params:
            yield table, params


def _row_params(row: GrievanceRow) -> tuple[Any, ...]:
    return (str(row.grievance_id), *(getattr(row, c) for c in ROW_COLUMNS[1:]), row.due_at)


def _row_from(record: Any) -> GrievanceRow:
    values = {c: record[c] for c in ROW_COLUMNS}
    values["grievance_id"] = UUID(values["grievance_id"])
    return GrievanceRow(**values)


class DashboardViewsMixin:
    """The dashboard's tables and their one-transaction writes, for either store."""

    mark = "?"
    datastore: Any
    tracking_name = f"{PROJECTION}<-grievances"

    # Provided by the library's tracking recorder each concrete class also inherits from.
    _insert_tracking: Callable[[Any, Tracking], None]
    max_tracking_id: Callable[[str], int | None]

    def _delete_tracking_statement(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            self._enter_schema(cursor)
            yield cursor

    def _enter_schema(self, cursor: Any) -> None:
        """Make the views' unqualified table names resolve where the events are."""

    def position(self) -> int:
        """The last notification id the views include; 0 before the first."""
        return self.max_tracking_id(self.tracking_name) or 0

    def create_views(self) -> None:
        with self._transaction(commit=True) as cursor:
            for statement in _ddl():
                cursor.execute(statement)

    def load_chart(self, chart: OrgChart) -> None:
        """Replace the unit → ancestor pairs the roll-up queries join on with those of `chart`."""
        pairs = [(ancestor, unit.id) for unit in chart for ancestor in chart.lineage(unit.id)]
        with self._transaction(commit=True) as cursor:
            cursor.execute("DELETE FROM dash_lineage")
            # DO NOTHING: a process starting at the same moment may have inserted the same pairs.
            cursor.executemany(
                f"INSERT INTO dash_lineage VALUES ({self.mark}, {self.mark}) ON CONFLICT DO NOTHING", pairs
            )

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

    def write(self, changes: PageChanges, position: int) -> None:
        """A page's changes and the position they bring the views to, in one transaction."""
        with self._transaction(commit=True) as cursor:
            if changes.rows:
                cursor.executemany(_row_upsert(self.mark), [_row_params(r) for r in changes.rows.values()])
            for table, params in _counter_params(changes):
                keys, counters = next((k, c) for t, k, c in COUNTER_TABLES if t == table)
                cursor.executemany(_upsert(table, keys, counters, self.mark), params)
            self._insert_tracking(cursor, Tracking(self.tracking_name, position))

    def clear(self, *, drop_indexes: bool = False) -> None:
        """Empty every view and forget the position, in one transaction: the start of a rebuild. With
        `drop_indexes`, the list's secondary indexes go too, to be built once at the end (`create_views`)
        rather than kept up to date row by row; queries stay right meanwhile, only slower."""
        with self._transaction(commit=True) as cursor:
            if drop_indexes:
                for name in SECONDARY_INDEXES:
                    cursor.execute(f"DROP INDEX IF EXISTS {name}")
            cursor.execute("DELETE FROM dash_grievance")
            for table, _keys, _counters in COUNTER_TABLES:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute(self._delete_tracking_statement(), [self.tracking_name])

    def analyze(self) -> None:
        """Refresh the planner's statistics of the views, which a bulk rebuild leaves far out of date."""
        tables = ["dash_grievance", "dash_lineage", *(t for t, _k, _c in COUNTER_TABLES)]
        with self._transaction(commit=True) as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {table}")

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A read-only cursor, for the dashboard's queries."""
        with self._transaction(commit=False) as cursor:
            yield cursor


class SQLiteDashboardViews(DashboardViewsMixin, SQLiteTrackingRecorder):
    """The dashboard's tables in the SQLite file beside the events."""

    def create_table(self) -> None:
        super().create_table()
        self.create_views()

    def _delete_tracking_statement(self) -> str:
        return "DELETE FROM tracking WHERE application_name = ?"


class PostgresDashboardViews(DashboardViewsMixin, PostgresTrackingRecorder):
    """The dashboard's tables in the PostgreSQL schema beside the events."""

    mark = "%s"

    def _enter_schema(self, cursor: Any) -> None:
        cursor.execute(SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema)))

    def create_table(self) -> None:
        super().create_table()
        self.create_views()

    def _delete_tracking_statement(self) -> Any:
        return SQL("DELETE FROM {0}.{1} WHERE application_name = %s").format(
            Identifier(self.datastore.schema), Identifier(self.tracking_table_name)
        )
