"""The store-wide Merkle log of RFC 9162 §2.1: tree heads, inclusion and consistency proofs, and their checks.

Pure functions over stored nodes. A node is named (level, index): the complete subtree over leaves
[index·2^level, (index+1)·2^level). Only complete subtrees are ever needed, because they never change once
their last leaf is appended; any tree head or proof is a fold of O(log n) of them. They are stored in tiles
(`appended_tiles`): a node's hash is read from the one tile that holds the bottom of its subtree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
# Stored hashes come in tiles, as Go's tlog and C2SP's tlog-tiles store them: tile (t, k) holds the hashes of nodes
# (t·TILE_HEIGHT, k·2^TILE_HEIGHT ...) up to 2^TILE_HEIGHT of them, so that an event rarely adds a row of its own
# and any node is found in one tile. A full tile also keeps the nodes above its bottom row, row by row (they are
# hashed anyway to reach its root), so a proof reads them rather than hashing up to 255 of them per tile; the
# partial tile at a level's edge keeps its bottom row only, and its nodes are hashed from it.
TILE_HEIGHT = 8
TileKey = tuple[int, int]
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


def inclusion_proofs(indexes: Sequence[int], size: int, source: NodeSource) -> list[list[bytes]]:
    """The RFC 9162 inclusion proof of each leaf in `indexes` in the tree of `size` leaves, read in one call: the
    tiles near the root that every proof crosses are read once."""
    spans = [inclusion_spans(i, size) for i in indexes]
    hashes = iter(span_hashes([s for ss in spans for s in ss], source))
    return [[next(hashes) for _ in ss] for ss in spans]


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


def subtree_hash(run: bytes) -> bytes:
    """MTH of a complete subtree from its bottom hashes, concatenated (a power of two of them, left to right)."""
    while len(run) > HASH_SIZE:
        run = subtree_row(run)
    return run


def leaf_hashes(entries: Iterable[bytes]) -> bytes:
    """The leaf hashes of `entries`, concatenated: the bottom row of the log's tiles."""
    sha256 = hashlib.sha256
    return b"".join([sha256(b"\x00" + e).digest() for e in entries])


def subtree_row(run: bytes) -> bytes:
    """The row of nodes above `run` (an even number of hashes, concatenated): each pair's node hash."""
    sha256 = hashlib.sha256
    return b"".join([sha256(b"\x01" + run[i : i + 2 * HASH_SIZE]).digest() for i in range(0, len(run), 2 * HASH_SIZE)])


def full_tile_size(height: int = TILE_HEIGHT) -> int:
    """The bytes of a full tile: its 2^height bottom hashes and the 2^height - 2 nodes above them, below its root."""
    return HASH_SIZE * ((2 << height) - 2)


def tile_width(data: bytes, height: int = TILE_HEIGHT) -> int:
    """How many bottom hashes a stored tile holds."""
    return 1 << height if len(data) == full_tile_size(height) else len(data) // HASH_SIZE


def full_tile(bottom: bytes) -> tuple[bytes, bytes]:
    """A full tile as stored (its bottom row, then each row above it up to the two below its root), and its root."""
    rows = [bottom]
    while len(rows[-1]) > HASH_SIZE:
        rows.append(subtree_row(rows[-1]))
    return b"".join(rows[:-1]), rows[-1]


def tile_of(key: NodeKey, height: int = TILE_HEIGHT) -> tuple[TileKey, int, int]:
    """Where node `key`'s hash is found: its tile, the offset of its first bottom hash there, and how many."""
    level, index = key
    t, r = divmod(level, height)
    first = index << r
    return (t, first >> height), first & ((1 << height) - 1), 1 << r


def edge_tiles(size: int, height: int = TILE_HEIGHT) -> list[tuple[TileKey, int]]:
    """The partial tile at the right edge of each tile level of a log of `size` leaves, with the hashes it holds
    (levels whose edge is empty left out): the only tiles an append rewrites, and the only ones it reads."""
    found: list[tuple[TileKey, int]] = []
    t, n, mask = 0, size, (1 << height) - 1
    while n:
        if n & mask:
            found.append(((t, n >> height), n & mask))
        n >>= height
        t += 1
    return found


class TileCut(LookupError):
    """A tile an append joins is missing, or holds fewer or more hashes than the log's size says."""

    def __init__(self, key: TileKey, width: int, held: int) -> None:
        super().__init__(f"tile {key} holds {held} hashes, not {width}")
        self.key = key


def appended_tiles(size: int, edge: Mapping[TileKey, bytes], leaves: bytes, height: int = TILE_HEIGHT
                   ) -> dict[TileKey, bytes]:  # fmt: skip
    """The tiles that appending `leaves` (leaf hashes, concatenated) to a log of `size` leaves writes, whole: each
    edge tile extended, and any completed (`full_tile`); `edge` holds the log's edge tiles (`edge_tiles`). A
    completed tile's root is the next hash of the tile level above."""
    # Every edge tile is checked, not only those this append extends: a cut one is found at the next write.
    for key, width in edge_tiles(size, height):
        if len(held := edge.get(key, b"")) != width * HASH_SIZE:
            raise TileCut(key, width, len(held) // HASH_SIZE)
    written: dict[TileKey, bytes] = {}
    tile_bytes = HASH_SIZE << height
    t, n, new, mask = 0, size, leaves, (1 << height) - 1
    while new:
        k, width = n >> height, n & mask
        run = (edge[(t, k)] if width else b"") + new
        roots = []
        for j in range(0, len(run), tile_bytes):
            bottom = run[j : j + tile_bytes]
            if len(bottom) == tile_bytes:
                written[(t, k + j // tile_bytes)], root = full_tile(bottom)
                roots.append(root)
            else:
                written[(t, k + j // tile_bytes)] = bottom
        new = b"".join(roots)
        n >>= height
        t += 1
    return written


def nodes_in_tiles(keys: Iterable[NodeKey], tiles: Mapping[TileKey, bytes], height: int = TILE_HEIGHT
                   ) -> dict[NodeKey, bytes]:  # fmt: skip
    """The hash of each key whose bottom hashes `tiles` holds (the others left out)."""
    found: dict[NodeKey, bytes] = {}
    full = full_tile_size(height)
    for key in keys:
        tile, offset, count = tile_of(key, height)
        data = tiles.get(tile)
        if data is None:
            continue
        if len(data) == full:
            # Row r of a full tile starts after the 2^height + ... + 2^(height-r+1) hashes of the rows below it.
            r = count.bit_length() - 1
            at = (2 << height) - ((2 << height) >> r) + (offset >> r)
            found[key] = data[at * HASH_SIZE : (at + 1) * HASH_SIZE]
        elif len(data) >= (offset + count) * HASH_SIZE:
            found[key] = subtree_hash(data[offset * HASH_SIZE : (offset + count) * HASH_SIZE])
    return found


class MemoryLog:
    """A Merkle log's tiles held in memory: what a store writes as its log grows, and (for a check that rebuilds
    the tree from the events themselves, and tests) a NodeSource of its own."""

    def __init__(self, height: int = TILE_HEIGHT) -> None:
        self.height = height
        self.size = 0
        self.tiles: dict[TileKey, bytes] = {}

    def append(self, leaves: bytes) -> dict[TileKey, bytes]:
        """Append leaf hashes (concatenated); the tiles written, whole."""
        written = appended_tiles(self.size, self.tiles, leaves, self.height)
        self.tiles.update(written)
        self.size += len(leaves) // HASH_SIZE
        return written

    def nodes(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        return nodes_in_tiles(keys, self.tiles, self.height)


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
