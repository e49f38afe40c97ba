"""Auditors' view of the store: every grievance's history with its chained hashes, and their verification."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from adapters import wire
from adapters.storage.hash_chain import BrokenLink, first_broken_link, originator_uuid
from engine.errors import GrievanceNotFound
from engine.service_chain import ServiceChain
from schemas.events import EventEnvelope


class ChainedStore(Protocol):
    """What the engine's recorders offer for auditing."""

    def select_events_of(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]: ...
    def select_hashes_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, bytes]]: ...
    def select_originator_ids(self, after: UUID | None, limit: int) -> list[UUID]: ...


class AuditTrail:
    """Reads histories with their hashes and checks the chain, grievance by grievance."""

    def __init__(self, chain: ServiceChain) -> None:
        self.chain = chain
        recorder = chain.recorder
        if not all(hasattr(recorder, m) for m in ("select_hashes_of", "select_originator_ids", "select_events_of")):
            raise TypeError("this store keeps no hash chain")
        self.store: ChainedStore = recorder  # type: ignore[assignment]

    def history(self, grievance_id: UUID, *, reveal: bool = False) -> list[EventEnvelope]:
        """Every event of a grievance as an envelope carrying its stored hash, oldest first; residents' personal
        fields masked unless `reveal`."""
        hashes = self.store.select_hashes_of([grievance_id])[grievance_id]
        envelopes = [wire.envelope(e, reveal=reveal) for e in self.chain.history(grievance_id)]
        return [
            msgspec.structs.replace(env, hash=hashes[env.version].hex() if env.version in hashes else None)
            for env in envelopes
        ]

    def verify(self, grievance_id: UUID) -> BrokenLink | None:
        """The first broken link of one grievance's chain, or None if its history is intact."""
        (broken,) = self._verify_many([grievance_id], must_exist=True)
        return broken

    def verify_all(self, on_batch: Callable[[int], None] | None = None, batch: int = 500) -> Iterator[BrokenLink]:
        """The first broken link of every grievance whose history is not intact, in grievance id order."""
        after: UUID | None = None
        while ids := self.store.select_originator_ids(after, batch):
            yield from (b for b in self._verify_many(ids) if b is not None)
            if on_batch:
                on_batch(len(ids))
            after = ids[-1]

    def _verify_many(self, ids: list[UUID], *, must_exist: bool = False) -> list[BrokenLink | None]:
        events: dict[UUID, list[StoredEvent]] = {oid: [] for oid in ids}
        for e in self.store.select_events_of(ids):
            events[originator_uuid(e)].append(e)
        hashes = self.store.select_hashes_of(ids)
        if must_exist and not events[ids[0]] and not hashes[ids[0]]:
            raise GrievanceNotFound("grievance_id", f"no grievance {ids[0]}")
        return [first_broken_link(oid, events[oid], hashes[oid]) for oid in ids]
