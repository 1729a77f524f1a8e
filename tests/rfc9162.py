"""An auditor's own RFC 9162 inclusion check, written from the RFC and not from huren's code.

The Provenance tests verify signatures the way an outside auditor would, with hashlib and the
published algorithm only; sharing the engine's Merkle code would let one bug hide in both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def root_from_inclusion_path(leaf: bytes, index: int, size: int, path: Iterable[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the tree head a leaf's inclusion path leads to."""
    fn, sn = index, size - 1
    r = hashlib.sha256(b"\x00" + leaf).digest()
    for p in path:
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0, "the path is shorter than the tree is deep"
    return r
