"""Another process holding a SQLite store's write lock, as one building a store's log or writing a long page does;
and a lock timeout short enough for tests to wait it out."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.settings import Settings


def short_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores opened from settings give up waiting for SQLite's write lock after a second rather than ten."""
    real = Settings.store_env
    monkeypatch.setattr(Settings, "store_env", lambda self: {**real(self), "SQLITE_LOCK_TIMEOUT": "1"})


@contextmanager
def write_lock_held(path: Path, *, release_after: float | None = None) -> Iterator[None]:
    """Another connection holds the write lock of the SQLite file at `path` (made if missing), until the block
    ends or, with `release_after`, that many seconds from its start."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(release_after, holder.rollback) if release_after is not None else None
    if released is not None:
        released.start()
    try:
        yield
    finally:
        if released is not None:
            released.join()
        holder.close()
