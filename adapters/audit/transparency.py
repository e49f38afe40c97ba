"""The store's verifiable history: its Merkle log's signed heads, proofs of a grievance's events, and the check
that the store is still an append-only extension of a checkpoint signed earlier.

Checks recompute every chained hash from the stored events themselves (never trusting `event_hashes`), so an
event edited with its chain recomputed still differs from the leaf a checkpoint covers. What no checkpoint
covers (events written after the newest one given) can only be checked against the store's own log.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from adapters.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer, sign
from adapters.storage.hash_chain import GENESIS, first_broken_link, link, originator_uuid
from adapters.storage.merkle_log import (
    Head,
    MissingNode,
    NodeKey,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    tree_head,
    verify_consistency,
    verify_inclusion,
)
from engine.errors import GrievanceNotFound

PAGE = 1000


class LoggedStore(Protocol):
    """What the engine's recorders offer of their Merkle log."""

    def log_size(self) -> int: ...
    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]: ...
    def select_leaves_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, int]]: ...
    def select_leaf_owner(self, leaf_index: int) -> tuple[UUID, int] | None: ...
    def select_hashes_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, dict[int, bytes]]: ...
    def select_events_of(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]: ...
    def select_notifications(self, start: int | None, limit: int) -> Sequence[Notification]: ...


@dataclass(frozen=True)
class Finding:
    """One way the store is not what a checkpoint (or its own log) says: where, and what."""

    kind: str
    reason: str
    leaf_index: int | None = None
    grievance_id: UUID | None = None
    version: int | None = None


@dataclass
class Verdict:
    """What a check against a checkpoint found: the sizes compared and every finding (none when intact)."""

    checkpoint_size: int
    events: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def unseen(self) -> int:
        """Events written after the checkpoint: a change to them is beyond what the checkpoint can show."""
        return max(0, self.events - self.checkpoint_size)


@dataclass(frozen=True)
class ProvedEvent:
    """One event of a grievance with what proves it is in the checkpointed log."""

    version: int
    leaf_index: int
    chained_hash: bytes
    topic: str
    state: bytes
    inclusion_proof: list[bytes]


class Transparency:
    """The Merkle log of one store: heads, checkpoints, proofs and checks."""

    def __init__(self, store: LoggedStore) -> None:
        self.store = store

    def head(self) -> tuple[int, bytes]:
        """The log's size and root hash now."""
        size = self.store.log_size()
        return size, tree_head(size, self.store)

    def checkpoint(self, signer: Signer) -> SignedCheckpoint:
        """The current head, signed: the signer's name is the log's origin."""
        size, root = self.head()
        return sign(Checkpoint(signer.name, size, root), signer)

    def prove(self, grievance_id: UUID, checkpoint: Checkpoint) -> list[ProvedEvent]:
        """Each event of the grievance inside the checkpoint with its inclusion proof, oldest first; refused (a
        Finding raised as NotExtended) when the store's log no longer has the checkpoint's root."""
        events = list(self.store.select_events_of([grievance_id]))
        leaves = self.store.select_leaves_of([grievance_id])[grievance_id]
        if not events and not leaves:
            raise GrievanceNotFound("grievance_id", f"no grievance {grievance_id}")
        self._require_root(checkpoint)
        inside, previous = [], GENESIS
        for e in events:
            previous = link(previous, e)
            index = leaves.get(e.originator_version)
            if index is not None and index < checkpoint.size:
                inside.append((e, index, previous))
        proofs = inclusion_proofs([index for _, index, _ in inside], checkpoint.size, self.store)
        return [ProvedEvent(e.originator_version, index, chained, e.topic, bytes(e.state), proof)
                for (e, index, chained), proof in zip(inside, proofs, strict=True)]  # fmt: skip

    def consistency(self, old: Checkpoint, new: Checkpoint) -> list[bytes]:
        """The RFC 9162 consistency proof that `old` is a prefix of `new`, from the store's log; refused (as
        NotExtended) when the log no longer has `new`'s root or the proof does not join the two."""
        if old.size > new.size:
            raise NotExtended(Finding("rolled_back", f"the older checkpoint has {old.size:,} leaves, more than the "
                                      f"newer one's {new.size:,}"))  # fmt: skip
        self._require_root(new)
        proof = consistency_proof(old.size, new.size, self.store)
        if not verify_consistency(old.size, new.size, proof, old.root, new.root):
            reason = (
                f"the checkpoint of {old.size:,} leaves is not a prefix of the one of {new.size:,} leaves: "
                "the log was rewritten between them"
            )
            raise NotExtended(Finding("not_consistent", reason))
        return proof

    def _require_root(self, checkpoint: Checkpoint) -> None:
        size = self.store.log_size()
        if size < checkpoint.size:
            raise NotExtended(
                Finding(
                    "rolled_back",
                    f"the store's log has {size:,} leaves, fewer than the checkpoint's {checkpoint.size:,}",
                )
            )
        try:
            root = tree_head(checkpoint.size, self.store)
        except MissingNode as e:
            raise NotExtended(Finding("log_damaged", f"the store's log lacks a node: {e}")) from None
        if root != checkpoint.root:
            raise NotExtended(
                Finding(
                    "log_rewritten",
                    f"the store's log of {checkpoint.size:,} leaves does not have the checkpoint's root hash",
                )
            )

    def verify_grievance(self, grievance_id: UUID, checkpoint: Checkpoint) -> Verdict:
        """Whether the grievance's events inside the checkpoint are those it covers, each by its inclusion proof
        against the checkpoint's root, and its hash chain unbroken."""
        events = list(self.store.select_events_of([grievance_id]))
        leaves = self.store.select_leaves_of([grievance_id])[grievance_id]
        hashes = self.store.select_hashes_of([grievance_id])[grievance_id]
        if not events and not hashes:
            raise GrievanceNotFound(
                "grievance_id",
                f"no grievance {grievance_id} (a grievance deleted with its hashes "
                "is found by verify --all against a checkpoint)",
            )
        verdict = Verdict(checkpoint.size, len(events))
        found = verdict.findings
        if (size := self.store.log_size()) < checkpoint.size:
            found.append(Finding("rolled_back", f"the store's log has {size:,} leaves, fewer than the checkpoint's "
                                 f"{checkpoint.size:,}: rolled back to an earlier copy, or cut"))  # fmt: skip
        stored = {e.originator_version for e in events}
        for version, at in sorted(leaves.items()):
            if version not in stored and at < checkpoint.size:
                found.append(
                    Finding(
                        "event_missing",
                        f"version {version} is gone; leaf {at} of the checkpoint recorded it",
                        at,
                        grievance_id,
                        version,
                    )
                )
        previous, expected = GENESIS, 1
        for e in events:
            v = e.originator_version
            if v != expected:
                found.append(
                    Finding("event_missing", f"versions {expected} to {v - 1} are gone", None, grievance_id, expected)
                )
            expected = v + 1
            previous = link(previous, e)
            index = leaves.get(v)
            if index is None:
                found.append(
                    Finding(
                        "not_in_log",
                        f"version {v} was never appended to the log: stored behind the engine's back",
                        None,
                        grievance_id,
                        v,
                    )
                )
                continue
            if index >= checkpoint.size:
                continue
            try:
                proof = inclusion_proof(index, checkpoint.size, self.store)
            except MissingNode as e:
                found.append(
                    Finding("log_damaged", f"the log lacks a node of leaf {index}'s proof: {e}", index, grievance_id, v)
                )
                continue
            if not verify_inclusion(index, checkpoint.size, leaf_hash(previous), proof, checkpoint.root):
                found.append(
                    Finding(
                        "event_altered",
                        f"version {v} is not what the checkpoint's leaf {index} "
                        "recorded (edited, its chain recomputed or not)",
                        index,
                        grievance_id,
                        v,
                    )
                )
        broken = first_broken_link(grievance_id, events, hashes)
        if broken is not None and not found:
            found.append(
                Finding(
                    "chain_broken", f"version {broken.version}: {broken.reason}", None, grievance_id, broken.version
                )
            )
        return verdict

    def events_in_order(self) -> Iterator[list[Notification]]:
        """Every stored event, in the order stored, a page at a time."""
        start = 1
        while page := self.store.select_notifications(start, PAGE):
            yield list(page)
            start = page[-1].id + 1

    def verify_all(self, checkpoint: Checkpoint, on_page: Callable[[int], None] | None = None) -> Verdict:
        """Rebuild the log from the stored events (each chained hash recomputed) and check that its first `size`
        leaves hash to the checkpoint's root; name the first place the store departs from it (or from its own
        log, after the checkpoint)."""
        head, last = Head(), dict[UUID, tuple[int, bytes]]()
        first: Finding | None = None
        departures = i = 0
        log_size = self.store.log_size()
        for page in self.events_in_order():
            recorded = self.store.select_leaves_of(list({originator_uuid(n) for n in page}))
            stored = self.store.nodes((0, j) for j in range(i, i + len(page)))
            for n in page:
                oid, v = originator_uuid(n), n.originator_version
                prior_v, prior = last.get(oid, (0, GENESIS))
                chained = link(prior if v > 1 else GENESIS, n)
                last[oid] = (v, chained)
                leaf = leaf_hash(chained)
                if i < checkpoint.size:
                    head.append(leaf)
                if stored.get((0, i)) != leaf:
                    departures += 1
                    if first is None:
                        first = self._departure(i, oid, v, prior_v, recorded[oid].get(v), log_size, checkpoint)
                i += 1
            if on_page:
                on_page(len(page))
        verdict = Verdict(checkpoint.size, i)
        inside = first is not None and first.leaf_index is not None and first.leaf_index < checkpoint.size
        if inside and i >= checkpoint.size and head.root() == checkpoint.root:
            # The events are the checkpoint's; only the store's own log was changed.
            assert first is not None
            first = Finding(
                "log_damaged",
                f"leaf {first.leaf_index} of the store's log was altered; the events "
                "still hash to the checkpoint's root",
                first.leaf_index,
            )
        if i < checkpoint.size and not inside:
            verdict.findings.append(self._shortfall(i, log_size, checkpoint))
        elif i >= checkpoint.size and head.root() != checkpoint.root and not inside:
            verdict.findings.append(
                Finding(
                    "log_rewritten",
                    f"the store's first {checkpoint.size:,} events do not hash "
                    "to the checkpoint's root, and its log was made to match them: rolled back "
                    "to an earlier copy and written since, or rewritten with its log",
                )
            )
        if first is not None:
            verdict.findings.append(first)
            if departures > 1:
                verdict.findings.append(
                    Finding("log_disagrees", f"{departures - 1:,} later events disagree with the store's log too")
                )
        return verdict

    def _shortfall(self, events: int, log_size: int, checkpoint: Checkpoint) -> Finding:
        if log_size >= checkpoint.size:
            owner = self.store.select_leaf_owner(events)
            named = f" (leaf {events} was grievance {owner[0]} version {owner[1]})" if owner else ""
            return Finding(
                "tail_cut",
                f"the store holds {events:,} events, the checkpoint covers {checkpoint.size:,}: "
                f"the last {checkpoint.size - events:,} were deleted{named}",
                events,
                owner[0] if owner else None,
                owner[1] if owner else None,
            )
        return Finding(
            "rolled_back",
            f"the store holds {events:,} events and its log {log_size:,} leaves, fewer than "
            f"the checkpoint's {checkpoint.size:,}: rolled back to an earlier copy, or cut with its log",
            events,
        )

    def _stored(self, grievance_id: UUID, version: int) -> bool:
        return any(e.originator_version == version for e in self.store.select_events_of([grievance_id]))

    def _departure(
        self, i: int, oid: UUID, v: int, prior_v: int, recorded: int | None, log_size: int, checkpoint: Checkpoint
    ) -> Finding:
        """What it means that the event now at position i is not leaf i of the log."""
        where = "inside the checkpoint" if i < checkpoint.size else "after the checkpoint"
        if recorded is None or i >= log_size:
            return Finding(
                "forged",
                f"grievance {oid} version {v} stands at leaf {i} ({where}) but was never "
                "appended to the log: stored behind the engine's back",
                i,
                oid,
                v,
            )
        if recorded > i:
            owner = self.store.select_leaf_owner(i)
            if owner is not None and self._stored(*owner):
                return Finding(
                    "reordered",
                    f"grievance {oid} version {v} stands at leaf {i} ({where}) but was "
                    f"appended as leaf {recorded}; leaf {i}'s event (grievance {owner[0]} version "
                    f"{owner[1]}) stands elsewhere",
                    i,
                    oid,
                    v,
                )
            removed = f"{recorded - i:,} events before grievance {oid} version {v} ({where}) were deleted"
            if owner is None:
                return Finding("events_removed", f"{removed}, their hashes too", i, oid, v)
            if not self.store.select_events_of([owner[0]]):
                return Finding("grievance_deleted", f"grievance {owner[0]} is gone, its hashes kept; leaf {i} was its "
                               f"version {owner[1]}: {removed}", i, owner[0], owner[1])  # fmt: skip
            return Finding("events_removed", f"{removed}: leaf {i} was grievance {owner[0]} version {owner[1]}", i,
                           owner[0], owner[1])  # fmt: skip
        if recorded < i:
            return Finding(
                "reordered",
                f"grievance {oid} version {v} stands at leaf {i} ({where}) but was appended as leaf {recorded}",
                i,
                oid,
                v,
            )
        if v != prior_v + 1:
            return Finding(
                "events_removed",
                f"grievance {oid} version {v} ({where}) follows version {prior_v}: the versions between were deleted",
                i,
                oid,
                prior_v + 1,
            )
        return Finding(
            "event_altered",
            f"grievance {oid} version {v} at leaf {i} ({where}) is not what the log "
            "recorded: edited, its chain recomputed or not",
            i,
            oid,
            v,
        )


class NotExtended(Exception):
    """The store is not an append-only extension of a checkpoint: proofs against it cannot be given."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.reason)
        self.finding = finding


def proof_document(grievance_id: UUID, signed: SignedCheckpoint, proved: Sequence[ProvedEvent]) -> dict[str, object]:
    """The JSON an auditor checks offline: the checkpoint note and, for each event, what recomputes its chained
    hash (topic, stored bytes) and its inclusion proof."""
    return {
        "grievance_id": str(grievance_id),
        "checkpoint": signed.note(),
        "tree_size": signed.checkpoint.size,
        "root_hash": signed.checkpoint.root.hex(),
        "events": [
            {
                "version": p.version,
                "leaf_index": p.leaf_index,
                "chained_hash": p.chained_hash.hex(),
                "topic": p.topic,
                "state": base64.b64encode(p.state).decode(),
                "inclusion_proof": [h.hex() for h in p.inclusion_proof],
            }
            for p in proved
        ],
    }
