"""RFC 9162 tree hashing and proofs, checked against the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

from engine.audit import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, literally."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def tree(n: int) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    data = [f"record {i}".encode() for i in range(n)]
    f = merkle.Frontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for i, d in enumerate(data):
        h = merkle.leaf_hash(d)
        nodes[(0, i)] = h
        for lvl, idx, nh in f.append(h):
            nodes[(lvl, idx)] = nh
        assert f.root() == mth(data[: i + 1])
    return data, nodes


def test_frontier_root_and_extend_match_the_rfc_definition() -> None:
    data, _ = tree(70)
    f = merkle.Frontier()
    f.extend(merkle.leaf_hash(d) for d in data[:33])
    f.extend(merkle.leaf_hash(d) for d in data[33:])
    assert f.root() == mth(data)
    assert merkle.Frontier().root() == mth([])


def test_every_inclusion_and_consistency_proof_verifies_and_wrong_ones_do_not() -> None:
    data, nodes = tree(37)

    def get(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    for n in range(1, 38):
        root = mth(data[:n])
        assert merkle.range_hash(0, n, get) == root
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, get)
            leaf = merkle.leaf_hash(data[m])
            assert merkle.verify_inclusion(m, n, leaf, proof, root)
            assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(b"forged"), proof, root)
            if n > 1:
                assert not merkle.verify_inclusion((m + 1) % n, n, leaf, proof, root) or data[m] == data[(m + 1) % n]
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, get)
            assert merkle.verify_consistency(m, n, mth(data[:m]), root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, mth(data[: m - 1] + [b"x"]), root, proof)
