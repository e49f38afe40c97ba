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
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from adapters.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer, sign
from adapters.audit.leaf_census import RUNS, LeafCensus
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

    @property
    def field(self) -> str:
        """What a refusal names as at fault: the store's log, a grievance's history, or the checkpoint."""
        if self.kind == "log_damaged":
            return "log"
        return "history" if self.version is not None else "checkpoint"


@dataclass
class Verdict:
    """What a check against a checkpoint found: the sizes compared and every finding (none when intact)."""

    checkpoint_size: int
    events: int
    findings: list[Finding] = field(default_factory=list)
    # For one grievance's check: how many of its events were written after the checkpoint.
    written_after: int | None = None

    @property
    def unseen(self) -> int:
        """Events written after the checkpoint: a change to them is beyond what the checkpoint can show."""
        return self.written_after if self.written_after is not None else max(0, self.events - self.checkpoint_size)


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

    def __init__(self, store: LoggedStore, census: LeafCensus | None = None) -> None:
        self.store = store
        self.census = census if census is not None else LeafCensus.of(store)

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
        inside: list[tuple[Any, int, bytes]] = []
        previous = GENESIS
        for e in events:
            previous = link(previous, e)
            index = leaves.get(e.originator_version)
            if index is not None and index < checkpoint.size:
                inside.append((e, index, previous))
        logged = self.store.nodes((0, index) for _, index, _ in inside)
        try:
            proofs = inclusion_proofs([index for _, index, _ in inside], checkpoint.size, self.store)
        except MissingNode as missing:
            raise NotExtended(Finding("log_damaged", f"the store's log lacks a node of the proofs of grievance "
                                      f"{grievance_id}: {missing}", None, grievance_id)) from None  # fmt: skip
        proved = []
        for (e, index, chained), proof in zip(inside, proofs, strict=True):
            v = e.originator_version
            self._require_leaf(grievance_id, v, index, chained, logged.get((0, index)), proof, checkpoint)
            proved.append(ProvedEvent(v, index, chained, e.topic, bytes(e.state), proof))
        return proved

    @staticmethod
    def _require_leaf(grievance_id: UUID, v: int, index: int, chained: bytes, logged: bytes | None,
                      proof: Sequence[bytes], checkpoint: Checkpoint) -> None:  # fmt: skip
        """Refuse (NotExtended) a proof of an event whose stored bytes are not what its leaf recorded: a proof
        is only given of what the store holds now, recomputed, never of what its log remembers."""
        where = f"grievance {grievance_id} version {v} (leaf {index})"
        proves = verify_inclusion(index, checkpoint.size, leaf_hash(chained), proof, checkpoint.root)
        if logged is None:
            reason = f"{where}: the store's log lacks its leaf: its nodes were deleted behind the engine's back"
            raise NotExtended(Finding("log_damaged", reason, index, grievance_id, v))
        if logged != leaf_hash(chained) and proves:
            reason = (f"{where}: the store's log's leaf was altered; the event's stored bytes still prove against "
                      "the checkpoint: restore the log's nodes")  # fmt: skip
            raise NotExtended(Finding("log_damaged", reason, index, grievance_id, v))
        if logged != leaf_hash(chained):
            reason = (
                f"{where}: its stored bytes chain to {chained.hex()[:16]}…, not to the hash the log's leaf "
                "was appended with: the event was edited after it was stored (its chain recomputed or not)"
            )
            raise NotExtended(Finding("event_altered", reason, index, grievance_id, v))
        if not proves:
            reason = f"{where}: the store's log's nodes do not join its leaf to the checkpoint's root"
            raise NotExtended(Finding("log_damaged", reason, index, grievance_id, v))

    def consistency(self, old: Checkpoint, new: Checkpoint) -> list[bytes]:
        """The RFC 9162 consistency proof that `old` is a prefix of `new`, from the store's log; refused (as
        NotExtended) when the log no longer has `new`'s root or the proof does not join the two."""
        if old.size > new.size:
            raise NotExtended(Finding("rolled_back", f"the older checkpoint has {old.size:,} leaves, more than the "
                                      f"newer one's {new.size:,}"))  # fmt: skip
        self._require_root(new)
        try:
            proof = consistency_proof(old.size, new.size, self.store)
        except MissingNode as e:
            raise NotExtended(Finding("log_damaged", f"the store's log lacks a node of the proof: {e}")) from None
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
        after = sum(1 for e in events if leaves.get(e.originator_version, -1) >= checkpoint.size)
        verdict = Verdict(checkpoint.size, len(events), written_after=after)
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
        found.extend(self._orphans(grievance_id, events, leaves, checkpoint))
        broken = first_broken_link(grievance_id, events, hashes)
        if broken is not None and not found:
            found.append(
                Finding(
                    "chain_broken", f"version {broken.version}: {broken.reason}", None, grievance_id, broken.version
                )
            )
        return verdict

    def _orphans(self, grievance_id: UUID, events: Sequence[StoredEvent], leaves: Mapping[int, int],
                 checkpoint: Checkpoint) -> list[Finding]:  # fmt: skip
        """A grievance's events deleted with their hash rows leave it nothing to miss; what they leave is leaves of
        the checkpoint that no stored hash claims. Which grievance's they were cannot be told from its rows: its
        check cannot vouch for it while any are gone."""
        if self.census is None or checkpoint.size == 0:
            return []
        if self.census.recorded_below(checkpoint.size) >= min(checkpoint.size, self.store.log_size()):
            return []
        runs = self.census.orphaned_below(min(checkpoint.size, self.store.log_size()))
        if not runs:
            return []
        spans = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)
        lost = sum(b - a + 1 for a, b in runs)
        more = "+" if len(runs) >= RUNS else ""
        last = max((e.originator_version for e in events), default=None)
        stands = f"its last stored event is version {last} at leaf {leaves.get(last)}" if last else "none is stored"
        reason = (f"leaves {spans} of the checkpoint ({lost:,}{more} events) have lost their events together with "
                  f"their hashes; grievance {grievance_id}'s may be among them ({stands}): verify --all --checkpoint "
                  "names whose they were")  # fmt: skip
        return [Finding("events_removed", reason, runs[0][0])]

    def events_in_order(self) -> Iterator[list[Notification]]:
        """Every stored event, in the order stored, a page at a time."""
        start = 1
        while page := self.store.select_notifications(start, PAGE):
            yield list(page)
            start = page[-1].id + 1

    def verify_all(self, checkpoint: Checkpoint, on_page: Callable[[int], None] | None = None) -> Verdict:
        """Rebuild the log from the stored events (each chained hash recomputed) and check that its first `size`
        leaves hash to the checkpoint's root; name the first place the store departs from it (or from its own
        log, after the checkpoint), and say whether what departs is the events or the log's stored nodes."""
        head, last = Head(), dict[UUID, tuple[int, bytes]]()
        at_checkpoint = head.root() if checkpoint.size == 0 else None
        first: Finding | None = None
        first_missing = False
        # Departures after the first: leaves missing from the log, and leaves there that the events do not hash
        # to, inside the checkpoint and after it; (count, first leaf) each.
        later = {"missing": [0, -1], "inside": [0, -1], "after": [0, -1]}
        i = 0
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
                head.append(leaf)
                if i + 1 == checkpoint.size:
                    at_checkpoint = head.root()
                logged = stored.get((0, i))
                if logged != leaf:
                    if first is None:
                        first_missing = logged is None
                        first = self._departure(i, oid, v, prior_v, recorded[oid].get(v), checkpoint, first_missing)
                    else:
                        tally = later["missing" if logged is None else "inside" if i < checkpoint.size else "after"]
                        tally[0] += 1
                        tally[1] = i if tally[1] < 0 else tally[1]
                i += 1
            if on_page:
                on_page(len(page))
        verdict = Verdict(checkpoint.size, i)
        events_match = at_checkpoint == checkpoint.root
        inside = first is not None and first.leaf_index is not None and first.leaf_index < checkpoint.size
        if inside and events_match:
            # The events are the checkpoint's; only the store's own log was changed.
            assert first is not None
            done = "deleted" if first_missing else "altered"
            first = Finding("log_damaged", f"leaf {first.leaf_index} of the store's log was {done}; the events "
                            "still hash to the checkpoint's root: the log's stored nodes were changed, not the "
                            "events", first.leaf_index)  # fmt: skip
        if i < checkpoint.size and not inside:
            verdict.findings.append(self._shortfall(i, log_size, checkpoint))
        elif i >= checkpoint.size and not events_match and not inside:
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
        verdict.findings.extend(self._later_departures(later, events_match))
        if not verdict.findings:
            verdict.findings.extend(self._log_itself(i, log_size, head.root(), checkpoint))
        return verdict

    @staticmethod
    def _later_departures(later: Mapping[str, list[int]], events_match: bool) -> list[Finding]:
        """What the departures after the first are: the log's nodes gone, or events and leaves that disagree."""
        found = []
        if (n := later["missing"][0]) > 0:
            at = later["missing"][1]
            found.append(Finding("log_damaged", f"the store's log lacks the leaves of {n:,} more events (leaf {at} "
                                 "first): rows of its nodes were deleted", at))  # fmt: skip
        if (n := later["inside"][0]) > 0:
            at = later["inside"][1]
            if events_match:
                reason = f"{n:,} more leaves of the store's log inside the checkpoint were altered (leaf {at} first)"
            else:
                reason = f"{n:,} more events inside the checkpoint (leaf {at} first) do not hash to their leaves"
            found.append(Finding("log_damaged" if events_match else "log_disagrees", reason, at))
        if (n := later["after"][0]) > 0:
            at = later["after"][1]
            found.append(Finding("log_disagrees", f"{n:,} events after the checkpoint (leaf {at} first) do not hash "
                                 "to the leaves the store's log recorded for them: the events or the log were "
                                 "changed, which only a later checkpoint can tell", at))  # fmt: skip
        return found

    def _log_itself(self, events: int, log_size: int, root: bytes, checkpoint: Checkpoint) -> list[Finding]:
        """With every leaf as the events say: whether the log's stored interior nodes still join them to its head
        and the checkpoint's root (proofs are read from them), and whether it has leaves whose events are gone."""
        if log_size > events:
            return [Finding("events_removed", f"the store's log has {log_size:,} leaves, the store {events:,} "
                            f"events: the last {log_size - events:,}, written after the checkpoint, were deleted "
                            "with their hashes", events)]  # fmt: skip
        try:
            joined = tree_head(checkpoint.size, self.store) == checkpoint.root and tree_head(events, self.store) == root
        except MissingNode as e:
            return [Finding("log_damaged", f"the store's log lacks an interior node ({e}): rows of its nodes were "
                            "deleted; the events hash to the checkpoint")]  # fmt: skip
        if not joined:
            return [Finding("log_damaged", "the store's log's interior nodes do not join its leaves to its head: "
                            "rows of its nodes were altered; the events hash to the checkpoint")]  # fmt: skip
        return []

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
        self, i: int, oid: UUID, v: int, prior_v: int, recorded: int | None, checkpoint: Checkpoint, missing: bool
    ) -> Finding:
        """What it means that the event now at position i is not leaf i of the log (`missing`: the log has no
        leaf i)."""
        where = "inside the checkpoint" if i < checkpoint.size else "after the checkpoint"
        if recorded is None:
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
        if missing:
            return Finding("log_damaged", f"the store's log lacks leaf {i} ({where}), which grievance {oid} "
                           f"version {v} was appended as: rows of its nodes were deleted", i, oid, v)  # fmt: skip
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
