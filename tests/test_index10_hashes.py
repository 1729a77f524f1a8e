"""The row hashes are the layout's: ``h64`` of the whole key, however they are computed.

``token_hash``, ``ref_hash``, ``uri_hash``, ``system_hash`` and ``id_hash`` hash a constant
prefix (kind, type, parameter) and a value by copying the BLAKE2b state after the prefix
(``h64_after``). Every stored ``h`` and ``idh`` must stay what ``h64`` of the whole key gives
(a different value would find nothing in a store written before): held here on values of every
kind of text a feed sends, and across the prefix states being forgotten and made again.
"""

from __future__ import annotations

import random

from engine.repository import sqlite_rows
from engine.repository.sqlite_rows import _SEP, h64, h64_after

VALUES = ["", "718-7", "Patient/123", "a582626d-212e-54e3-8f0a-29a534c833b6", "张三", "Dé", "阜宁县人民医院",
          "\x1f", "a\x1fb", "\ud800", "\udc00x", "😀", " spaced ", "x" * 5000, "http://loinc.org"]


def _texts(n: int) -> list[str]:
    rnd = random.Random(10)
    alphabet = "abcXYZ09-._|/\x1f张三阜宁é\u0301😀\ud800\udfff "
    return VALUES + ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 40))) for _ in range(n)]


def test_each_row_hash_is_h64_of_its_whole_key() -> None:
    texts = _texts(400)
    for rtype, param in (("Observation", "code"), ("Provenance", "target"), ("Patient", "张"), ("", "")):
        for value in texts:
            assert sqlite_rows.token_hash(rtype, param, value) == h64(f"t{_SEP}{rtype}{_SEP}{param}{_SEP}{value}")
            assert sqlite_rows.ref_hash(rtype, param, value) == h64(f"r{_SEP}{rtype}{_SEP}{param}{_SEP}{value}")
            assert sqlite_rows.uri_hash(rtype, param, value) == h64(f"u{_SEP}{rtype}{_SEP}{param}{_SEP}{value}")
            assert sqlite_rows.system_hash(rtype, param, value) == h64(f"s{_SEP}{rtype}{_SEP}{param}{_SEP}{value}")
            assert sqlite_rows.id_hash.__wrapped__(rtype, value) == h64(f"i{_SEP}{rtype}{_SEP}{value}")


def test_a_prefix_state_is_never_changed_by_its_use() -> None:
    """The state after a prefix is copied before each value: the same value hashes alike after
    others, and alike once the states are forgotten and made again."""
    prefix = f"r{_SEP}Observation{_SEP}subject{_SEP}"
    first = [h64_after(prefix, v) for v in VALUES]
    for v in _texts(50):
        h64_after(prefix, v)
    assert [h64_after(prefix, v) for v in VALUES] == first
    for i in range(5000):  # more prefixes than are kept: the states are dropped and made again
        h64_after(f"t{_SEP}T{i}{_SEP}p{_SEP}", "x")
    assert [h64_after(prefix, v) for v in VALUES] == first == [h64(prefix + v) for v in VALUES]


def test_known_values_are_unchanged() -> None:
    """Values the code before the prefix states computed (stores of this layout hold them)."""
    assert sqlite_rows.token_hash("Observation", "code", "718-7") == 6695115069210640648
    assert sqlite_rows.ref_hash("Observation", "subject", "Patient/张三") == -5430298644933775427
    assert sqlite_rows.id_hash.__wrapped__("Patient", "p1") == 7014053652629234695
