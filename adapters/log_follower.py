"""Following the event log: woken by PostgreSQL's NOTIFY on each insert, or polling a SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Callable

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier


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
