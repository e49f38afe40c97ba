"""The store-wide Merkle log of RFC 9162 §2.1: tree heads, inclusion and consistency proofs, and their checks.

Pure functions over stored nodes. A node is named (level, index): the complete subtree over leaves
[index·2^level, (index+1)·2^level). Only complete subtrees are ever stored, because they never change once
their last leaf is appended; any tree head or proof is a fold of O(log n) of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
# A run of leaves [start, end) whose Merkle tree hash (MTH) a proof or a head needs.
Span = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of one leaf, SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def span_nodes(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees, left to right, whose fold is MTH(D[start:end]), for a span RFC 9162's recursion
    produces (its start is a multiple of the largest power of two not above its length)."""
    keys: list[NodeKey] = []
    while start < end:
        width = 1 << ((end - start).bit_length() - 1)
        if start % width:
            msg = f"span [{start}, {end}) is not one of a Merkle tree's subtrees"
            raise ValueError(msg)
        keys.append((width.bit_length() - 1, start // width))
        start += width
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a span from its complete subtrees' hashes (left to right): each joins the fold of those after it."""
    if not hashes:
        return EMPTY_ROOT
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_spans(index: int, size: int) -> list[Span]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]): the spans whose MTHs make the inclusion proof, leaf upwards."""
    if not 0 <= index < size:
        msg = f"leaf {index} is not in a tree of {size}"
        raise ValueError(msg)
    spans: list[Span] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start += k
    return spans[::-1]


def consistency_spans(old_size: int, new_size: int) -> list[Span]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]): the spans whose MTHs make the consistency proof."""
    if not 0 <= old_size <= new_size:
        msg = f"a tree of {old_size} is not a prefix of one of {new_size}"
        raise ValueError(msg)
    if old_size in (0, new_size):
        return []
    spans: list[Span] = []
    # SUBPROOF(m, D[start:end], whole): `whole` while the old tree's head is still the subtree being walked.
    m, start, end, whole = old_size, 0, new_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        spans.append((start, end))
    return spans[::-1]


class NodeSource(Protocol):
    """Stored complete-subtree hashes, read many at a time."""

    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        """The hash of each key; a key not stored is absent from the answer."""
        ...


class MissingNode(LookupError):
    """A node a proof needs is not stored: the log is shorter than asked, or was cut."""


def span_hashes(spans: Sequence[Span], source: NodeSource) -> list[bytes]:
    """The MTH of each span, read from `source` in one call."""
    keys = [span_nodes(s, e) for s, e in spans]
    found = source.nodes({k for ks in keys for k in ks})
    try:
        return [fold([found[k] for k in ks]) for ks in keys]
    except KeyError as e:
        msg = f"node {e.args[0]} is not stored"
        raise MissingNode(msg) from None


def tree_head(size: int, source: NodeSource) -> bytes:
    """MTH(D[size]): the root hash of the log's first `size` leaves."""
    return span_hashes([(0, size)], source)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
    return span_hashes(inclusion_spans(index, size), source)


def consistency_proof(old_size: int, new_size: int, source: NodeSource) -> list[bytes]:
    """The RFC 9162 consistency proof that the tree of `old_size` leaves is a prefix of the one of `new_size`."""
    return span_hashes(consistency_spans(old_size, new_size), source)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether `proof` shows the leaf hash `leaf` at `index` in the tree of `size` with `root`."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2: whether `proof` shows the tree of `old_size` with `old_root` a prefix of the one of
    `new_size` with `new_root`."""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # The empty tree is a prefix of every tree: nothing to prove.
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


@dataclass(frozen=True)
class Node:
    """A complete subtree's hash, as stored."""

    level: int
    index: int
    hash: bytes


def appended(size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]) -> list[Node]:
    """The complete subtrees that appending `leaves` (leaf hashes) to a log of `size` completes, the leaves
    included; `frontier` is the hashes of `span_nodes(0, size)`, the only stored nodes an append joins."""
    keys = span_nodes(0, size)
    if len(frontier) != len(keys):
        msg = f"a log of {size} leaves has a frontier of {len(keys)} nodes, not {len(frontier)}"
        raise ValueError(msg)
    stack = [Node(level, index, h) for (level, index), h in zip(keys, frontier, strict=True)]
    made: list[Node] = []
    for i, leaf in enumerate(leaves, start=size):
        node = Node(0, i, leaf)
        made.append(node)
        while stack and stack[-1].level == node.level:
            left = stack.pop()
            node = Node(node.level + 1, node.index // 2, node_hash(left.hash, node.hash))
            made.append(node)
        stack.append(node)
    return made


class MemoryLog:
    """A Merkle log held in memory: for a check that rebuilds the tree from the events themselves, and tests."""

    def __init__(self) -> None:
        self.size = 0
        self.stored: dict[NodeKey, bytes] = {}

    def append(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes."""
        frontier = [self.stored[k] for k in span_nodes(0, self.size)]
        made = appended(self.size, frontier, leaves)
        self.stored.update(((n.level, n.index), n.hash) for n in made)
        self.size += sum(1 for n in made if n.level == 0)

    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        return {k: self.stored[k] for k in keys if k in self.stored}


class Head:
    """A running MTH over leaves streamed in order, holding only the frontier: O(log n) memory for any size."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        level, h = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            h = node_hash(self._stack.pop()[1], h)
            level += 1
        self._stack.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return fold([h for _, h in self._stack])
