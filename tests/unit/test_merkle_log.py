"""The Merkle log against RFC 9162's definitions: the published test vectors of the RFC 6962 test suites, an
independent recursive reading of the RFC (below, written straight from its text and sharing no code with the
engine's), and properties: every proof verifies, and no altered byte does."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.storage.merkle_log import (
    EMPTY_ROOT,
    TILE_HEIGHT,
    Head,
    MemoryLog,
    MissingNode,
    TileCut,
    appended_tiles,
    consistency_proof,
    edge_tiles,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    leaf_hashes,
    tree_head,
    verify_consistency,
    verify_inclusion,
)

# The reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 as written, by recursion over the list of entries.


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


# The vectors of the RFC 6962 test suites (certificate-transparency, transparency-dev/merkle proof/verify_test.go).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
# (leaf index, tree size, proof)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (old size, new size, proof)
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def log_of(entries: list[bytes], chunks: int = 1, height: int = TILE_HEIGHT) -> MemoryLog:
    """A log with `entries` appended in `chunks` appends (appending in pieces must store the same tree), in tiles
    of 2^`height` hashes (small ones fill and stack up tile levels with few entries)."""
    log = MemoryLog(height)
    step = max(1, -(-len(entries) // chunks))
    for i in range(0, len(entries), step):
        log.append(b"".join(leaf_hash(e) for e in entries[i : i + step]))
    return log


VECTOR_LOG = log_of(LEAVES)


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_heads_are_the_published_roots(size: int) -> None:
    assert tree_head(size, VECTOR_LOG) == ROOTS[size - 1] == ref_mth(LEAVES[:size])


def test_the_empty_tree_head_is_the_hash_of_nothing() -> None:
    assert (
        tree_head(0, MemoryLog())
        == EMPTY_ROOT
        == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones(index: int, size: int, proof: list[str]) -> None:
    made = inclusion_proof(index, size, VECTOR_LOG)
    assert [p.hex() for p in made] == proof
    assert verify_inclusion(index, size, leaf_hash(LEAVES[index]), made, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones(old: int, new: int, proof: list[str]) -> None:
    made = consistency_proof(old, new, VECTOR_LOG)
    assert [p.hex() for p in made] == proof
    assert verify_consistency(old, new, made, ROOTS[old - 1], ROOTS[new - 1])


def test_degenerate_consistency_is_the_rfcs() -> None:
    root = ROOTS[2]
    assert verify_consistency(3, 3, [], root, root)
    assert not verify_consistency(3, 3, [], root, ROOTS[3])
    assert not verify_consistency(3, 3, [root], root, root)
    assert verify_consistency(0, 5, [], EMPTY_ROOT, ROOTS[4])
    assert not verify_consistency(4, 3, [], ROOTS[3], ROOTS[2])
    assert not verify_consistency(2, 5, [], ROOTS[1], ROOTS[4])


def test_a_leaf_outside_the_tree_has_no_proof() -> None:
    with pytest.raises(ValueError, match="not in a tree of 8"):
        inclusion_proof(8, 8, VECTOR_LOG)
    assert not verify_inclusion(8, 8, leaf_hash(LEAVES[0]), [], ROOTS[7])
    with pytest.raises(MissingNode):
        inclusion_proof(3, 9, VECTOR_LOG)


entries = st.lists(st.binary(max_size=40), min_size=1, max_size=140)


@settings(max_examples=150, deadline=None)
@given(entries, st.data())
def test_proofs_match_the_rfcs_recursion_and_verify(d: list[bytes], data: st.DataObject) -> None:
    log = log_of(d, chunks=data.draw(st.integers(1, 7)), height=data.draw(st.sampled_from([1, 2, 3, TILE_HEIGHT])))
    size = data.draw(st.integers(1, len(d)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    root, old_root = tree_head(size, log), tree_head(old, log)
    assert root == ref_mth(d[:size])
    assert old_root == ref_mth(d[:old])
    inclusion = inclusion_proof(index, size, log)
    assert inclusion == ref_path(index, d[:size])
    assert verify_inclusion(index, size, leaf_hash(d[index]), inclusion, root)
    assert inclusion_proofs([index, size - 1, index], size, log) == [inclusion, ref_path(size - 1, d[:size]), inclusion]
    consistency = consistency_proof(old, size, log)
    assert consistency == ref_proof(old, d[:size])
    assert verify_consistency(old, size, consistency, old_root, root)


def flipped(b: bytes, at: int, bit: int) -> bytes:
    return b[:at] + bytes([b[at] ^ (1 << bit)]) + b[at + 1 :]


@settings(max_examples=150, deadline=None)
@given(entries, st.data())
def test_no_altered_byte_of_an_inclusion_proof_verifies(d: list[bytes], data: st.DataObject) -> None:
    log, size = log_of(d, height=data.draw(st.sampled_from([2, TILE_HEIGHT]))), len(d)
    index = data.draw(st.integers(0, size - 1))
    root, leaf, proof = tree_head(size, log), leaf_hash(d[index]), inclusion_proof(index, size, log)
    bit = data.draw(st.integers(0, 7))
    at = data.draw(st.integers(0, 31))
    assert not verify_inclusion(index, size, flipped(leaf, at, bit), proof, root)
    assert not verify_inclusion(index, size, leaf, proof, flipped(root, at, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        altered = [flipped(p, at, bit) if i == which else p for i, p in enumerate(proof)]
        assert not verify_inclusion(index, size, leaf, altered, root)
        assert not verify_inclusion(index, size, leaf, proof[:-1], root)
    assert not verify_inclusion(index, size, leaf, [*proof, root], root)
    other = data.draw(st.integers(0, size - 1))
    if other != index and d[other] != d[index]:
        assert not verify_inclusion(other, size, leaf, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=2, max_size=140), st.data())
def test_no_altered_byte_of_a_consistency_proof_verifies(d: list[bytes], data: st.DataObject) -> None:
    log, size = log_of(d), len(d)
    old = data.draw(st.integers(1, size - 1))
    root, old_root, proof = tree_head(size, log), tree_head(old, log), consistency_proof(old, size, log)
    bit = data.draw(st.integers(0, 7))
    at = data.draw(st.integers(0, 31))
    which = data.draw(st.integers(0, len(proof) - 1))
    altered = [flipped(p, at, bit) if i == which else p for i, p in enumerate(proof)]
    assert not verify_consistency(old, size, altered, old_root, root)
    assert not verify_consistency(old, size, proof, flipped(old_root, at, bit), root)
    assert not verify_consistency(old, size, proof, old_root, flipped(root, at, bit))
    assert not verify_consistency(old, size, proof[:-1], old_root, root)
    assert not verify_consistency(old, size, [*proof, root], old_root, root)


@given(entries)
def test_a_streamed_head_is_the_stored_trees(d: list[bytes]) -> None:
    head = Head()
    for e in d:
        head.append(leaf_hash(e))
    assert head.size == len(d)
    assert head.root() == ref_mth(d) == tree_head(len(d), log_of(d, chunks=3))


def test_a_log_of_three_tile_levels_has_the_streamed_heads_and_proofs_that_verify() -> None:
    # 2^16 + 1,000 leaves in tiles of 256: two full levels of tiles and a third begun, appended in uneven pieces.
    d = [i.to_bytes(4, "big") for i in range((1 << 16) + 1000)]
    log, head, at = MemoryLog(), Head(), 0
    heads: dict[int, bytes] = {}
    for step in (1, 255, 3000, 61_000, 1, 2279):
        log.append(leaf_hashes(d[at : at + step]))
        for e in d[at : at + step]:
            head.append(leaf_hash(e))
        at += step
        heads[at] = head.root()
    assert at == log.size == len(d)
    assert {(t, k) for t, k in log.tiles if t == 2} == {(2, 0)}
    for size, root in heads.items():
        assert tree_head(size, log) == root
    for index in (0, 255, 256, 65_535, 65_536, len(d) - 1):
        proof = inclusion_proof(index, len(d), log)
        assert verify_inclusion(index, len(d), leaf_hash(d[index]), proof, heads[len(d)])
    consistency = consistency_proof(3256, len(d), log)
    assert verify_consistency(3256, len(d), consistency, heads[3256], heads[len(d)])


def test_an_append_to_a_cut_edge_tile_is_refused() -> None:
    log = log_of([i.to_bytes(2, "big") for i in range(300)])
    assert edge_tiles(300) == [((0, 1), 44), ((1, 0), 1)]
    cut = {**log.tiles, (0, 1): log.tiles[(0, 1)][:-32]}
    with pytest.raises(TileCut, match=r"tile \(0, 1\) holds 43 hashes, not 44"):
        appended_tiles(300, cut, leaf_hash(b"x"))
    with pytest.raises(TileCut, match=r"tile \(1, 0\) holds 0 hashes, not 1"):
        appended_tiles(300, {(0, 1): log.tiles[(0, 1)]}, leaf_hashes([b"x"] * 212))
