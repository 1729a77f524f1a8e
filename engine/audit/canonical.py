"""RFC 8785 (JCS) canonical JSON, fast for the values audit records are made of.

The ``rfc8785`` package is the reference implementation but pure Python (~120 µs for one
AuditEvent, more than the SQLite append itself). For JSON made only of strings, booleans, null,
integers within ±(2**53 - 1) and objects whose keys are ASCII, JCS output is exactly ``orjson`` with
sorted keys: both write the shortest escapes (``\\b \\f \\n \\r \\t``, ``\\u00xx`` for other
controls, ``\\"`` and ``\\\\``), raw UTF-8 for everything else, no whitespace; integers are plain
decimals; and ASCII keys sort the same by UTF-16 code units (JCS) as by bytes. Anything else —
a non-ASCII key, a huge integer, a float the two would write differently — goes to ``rfc8785``.
A float is let through when orjson writes it byte for byte as ``rfc8785`` does (``6.2``, ``0.43``;
not ``145.0`` nor ``1e+16``): lab values are such floats, and a signed lab message went through
the pure-Python path for them (~1 ms). ``tests/test_audit_canonical.py`` checks the two agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import rfc8785

_LIMIT = 2**53 - 1  # the "safe integer" range; rfc8785 refuses anything beyond


@lru_cache(maxsize=4096)
def _same_float(value: float) -> bool:
    """Does orjson write this float exactly as JCS does? (Asked of rfc8785 itself; cached, since
    a feed's values repeat.)"""
    try:
        return orjson.dumps(value) == rfc8785.dumps(value)
    except Exception:  # NaN, infinities: rfc8785 refuses them, and so must canonical()
        return False


def _plain(value: Any) -> bool:
    """Only str, bool, None, safe ints, lists and ASCII-keyed dicts (an explicit stack: this runs
    for every audit record, and recursion with generators cost more than the append itself)."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is dict:
            for k in v:
                if type(k) is not str or not k.isascii():
                    return False
            extend(v.values())
        elif t is list:
            extend(v)
        elif t is int:
            if not -_LIMIT <= v <= _LIMIT:
                return False
        elif t is float:
            if not _same_float(v):
                return False
        else:
            return False
    return True


def canonical(value: Any) -> bytes:
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)
