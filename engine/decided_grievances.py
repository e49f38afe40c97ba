"""The grievances this process decided or read lately, each as of its last stored version: a command on a grievance
with a long history then reads only the events stored since, not the whole history again.

The cache is only ever a starting point: every load still reads, in the same query as the rest of its batch, the
cached version's own event (to confirm the store still has it) and the events stored after it (by this process or
any other), so what is decided is never stale (engine/service_chain.py, `_load_many`). Entries hold residents'
personal fields as stored (sealed), never opened.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from uuid import UUID

from engine.grievance import Grievance

DEFAULT_SIZE = 10_000


class DecidedGrievances:
    """A bounded, thread-safe map from grievance id to the grievance at its last stored version; least lately used
        ones are dropped first. Grievances come out as copies, so no caller's changes reach what is held or another
    caller; what goes in is held itself, and must not be changed afterwards."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError("the cache's size must be zero (no cache) or more")
        self.size = size
        self._entries: OrderedDict[UUID, Grievance] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, grievance_id: UUID) -> Grievance | None:
        """A copy of the grievance as last stored here, or None if it is not held."""
        with self._lock:
            found = self._entries.get(grievance_id)
            if found is None:
                return None
            self._entries.move_to_end(grievance_id)
        return copy.deepcopy(found)

    def put(self, grievance: Grievance) -> None:
        """Hold `grievance` itself (the caller must not change it afterwards), unless it has events waiting to be
        stored or a later version is held."""
        if self.size == 0 or grievance.pending_events:
            return
        with self._lock:
            held = self._entries.get(grievance.id)
            if held is not None and held.version > grievance.version:
                return
            self._entries[grievance.id] = grievance
            self._entries.move_to_end(grievance.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Hold nothing: the next load of every grievance reads its whole history."""
        with self._lock:
            self._entries.clear()
