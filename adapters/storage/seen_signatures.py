"""Signatures the command worker has seen, by the place in the log where it saw each: the same signature at
another place is a replay (someone produced a signed message again), while the same place again is Kafka
delivering it again, which the worker's stored positions already make harmless."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.storage.side_table import SideTable

TABLE = "seen_signatures"


class SeenSignatures(SideTable):
    """The signatures of messages applied or refused, kept a little longer than a signature is believed."""

    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore, TABLE, "digest TEXT PRIMARY KEY, place TEXT NOT NULL, seen_at TEXT NOT NULL")

    def replays(self, seen: Sequence[tuple[bytes, str]], now: datetime) -> set[str]:
        """Record (signature, place) pairs not seen before; the places whose signature was seen elsewhere."""
        if not seen:
            return set()
        rows = [(hashlib.sha256(signature).hexdigest(), place) for signature, place in seen]
        with self.datastore.transaction(commit=True) as cursor:
            marks = ", ".join([self.mark] * 3)
            cursor.executemany(f"INSERT INTO {self.table} VALUES ({marks}) ON CONFLICT (digest) DO NOTHING",
                               [(d, p, now.isoformat()) for d, p in rows])  # fmt: skip
        first: dict[str, str] = {}
        for i in range(0, len(rows), 500):
            chunk = [d for d, _ in rows[i : i + 500]]
            marks = ", ".join("?" * len(chunk))
            found = self._execute(f"SELECT digest, place FROM {self.table} WHERE digest IN ({marks})", tuple(chunk))
            first.update((r["digest"], r["place"]) for r in found)
        return {place for digest, place in rows if first.get(digest, place) != place}

    def forget_before(self, moment: datetime) -> None:
        """Drop what was seen before `moment` (signatures that old are refused as expired anyway)."""
        self._execute(f"DELETE FROM {self.table} WHERE seen_at < ?", (moment.isoformat(),))


KEPT_FOR = timedelta(hours=96)
