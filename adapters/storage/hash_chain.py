"""The tamper-evident chain: each stored event's hash covers the previous event of its grievance.

hash(n) = SHA-256(hash(n-1) ‖ grievance id ‖ n ‖ topic ‖ stored state), with hash(0) = 32 zero bytes.
The state is hashed as stored (encrypted fields as ciphertext), so erasing a resident's key leaves the
chain intact. Editing, deleting or inserting an event breaks the link at that version and at every
later one; `first_broken_link` names the first. What the chain alone cannot show (a grievance's last events
or the whole of it deleted with their hashes, an edit with the chain recomputed after it) shows against a
signed checkpoint of the store-wide Merkle log (adapters.audit.transparency).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from adapters.storage import chained_hash

GENESIS = chained_hash.GENESIS


def link(previous: bytes, event: StoredEvent) -> bytes:
    """The hash of `event`, chained to the hash of the event before it."""
    # A state set to NULL, or rewritten as text (SQLite's replace() on a blob returns text), behind the engine's
    # back hashes as other bytes: a broken link that verify names, never a crash.
    state: object = event.state
    stored = state.encode() if isinstance(state, str) else bytes(state or b"")  # type: ignore[call-overload]
    return chained_hash.chained_hash(previous, originator_uuid(event), event.originator_version, event.topic, stored)


def chain(events: Sequence[StoredEvent], previous: Mapping[UUID, bytes]) -> list[tuple[UUID, int, bytes]]:
    """(grievance, version, hash) of new events, each grievance's in version order, chained to `previous`:
    the hash of the event before each grievance's first new one (absent for a new grievance)."""
    last: dict[UUID, bytes] = {}
    rows = []
    for event in events:
        oid = originator_uuid(event)
        prior = last.get(oid)
        if prior is None:
            prior = previous.get(oid, GENESIS) if event.originator_version > 1 else GENESIS
        h = link(prior, event)
        last[oid] = h
        rows.append((oid, event.originator_version, h))
    return rows


def originator_uuid(event: StoredEvent) -> UUID:
    """The stored event's grievance id as a UUID: the library types it as a UUID or its string."""
    oid = event.originator_id
    return oid if isinstance(oid, UUID) else UUID(str(oid))


@dataclass(frozen=True)
class BrokenLink:
    """Where a grievance's (or a roster record's) stored history stops being what was written."""

    grievance_id: UUID
    version: int
    reason: str
    # What the history is of, as an auditor's report names it (adapters.audit.trail.record_kind).
    kind: str = "grievance"


def first_broken_link(
    grievance_id: UUID, events: Iterable[StoredEvent], hashes: Mapping[int, bytes]
) -> BrokenLink | None:
    """The first version of one grievance whose event or hash is not what was stored, or None if intact."""
    previous = GENESIS
    expected = 1
    for event in events:
        if event.originator_version != expected:
            return BrokenLink(grievance_id, expected, "event missing: the versions skip it")
        stored = hashes.get(expected)
        if stored is None:
            return BrokenLink(grievance_id, expected, "its hash is missing")
        previous = link(previous, event)
        if previous != stored:
            return BrokenLink(grievance_id, expected, "event altered: its hash does not match")
        expected += 1
    if expected in hashes or any(v >= expected for v in hashes):
        return BrokenLink(grievance_id, expected, "event missing: a hash remains for it")
    return None
