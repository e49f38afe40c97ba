"""Following the event log: woken by PostgreSQL's NOTIFY on each insert, or polling a SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import psycopg
import structlog
from eventsourcing.persistence import ApplicationRecorder, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from adapters.backoff import wait_after

log = structlog.get_logger("grievance.views")
# What a store raises while it cannot be reached or written for a while; the library wraps its drivers'
# errors in its own, but waiting for PostgreSQL's NOTIFY uses the driver directly.
TRANSIENT_FAILURES = (OperationalError, InterfaceError, psycopg.OperationalError, sqlite3.OperationalError)


def follow_log(
    recorder: ApplicationRecorder, catch_up: Callable[[], int], stop: threading.Event, *, idle_wait: float = 0.2
) -> None:
    """Call `catch_up` until `stop` is set, waiting for new events (at most `idle_wait` s) whenever it
    returns 0. On PostgreSQL the wait ends early with the NOTIFY the event store sends after an insert."""
    if isinstance(recorder, PostgresApplicationRecorder):
        with recorder.datastore.get_connection() as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
            while not stop.is_set():
                catch_up()
                for _ in conn.notifies(timeout=idle_wait, stop_after=1):
                    pass
        return
    while not stop.is_set():
        if catch_up() == 0:
            stop.wait(idle_wait)


def keep_following(
    recorder: ApplicationRecorder,
    catch_up: Callable[[], int],
    stop: threading.Event,
    *,
    idle_wait: float = 0.2,
    retry_wait: float = 1.0,
) -> None:
    """`follow_log` until `stop` is set, riding out a store that fails for a while (a lost connection, a locked
    file): each failure is logged and tried again after a wait that doubles from `retry_wait`
    (adapters.backoff), and from the start once a catch-up succeeds. What `catch_up` wrote stays whole as long
    as it commits whole or not at all. Anything else it raises (a changed chart, say) is not retried."""
    failures = 0

    def caught_up() -> int:
        nonlocal failures
        projected = catch_up()
        failures = 0
        return projected

    while not stop.is_set():
        try:
            follow_log(recorder, caught_up, stop, idle_wait=idle_wait)
        except TRANSIENT_FAILURES as failure:
            failures += 1
            wait = wait_after(failures, first=retry_wait)
            log.error("projection failed; retrying", error=str(failure), retry_in_s=wait)
            stop.wait(wait)
