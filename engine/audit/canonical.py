"""RFC 8785 (JCS) canonical JSON, fast for the values audit records are made of.

The ``rfc8785`` package is the reference implementation but pure Python (~120 µs for one
AuditEvent, more than the SQLite append itself). For JSON made only of strings, booleans, null,
integers within ±(2**53 - 1) and objects whose keys are ASCII, JCS output is exactly ``orjson`` with
sorted keys: both write the shortest escapes (``\\b \\f \\n \\r \\t``, ``\\u00xx`` for other
controls, ``\\"`` and ``\\\\``), raw UTF-8 for everything else, no whitespace; integers are plain
decimals; and ASCII keys sort the same by UTF-16 code units (JCS) as by bytes. Anything else —
a float, a non-ASCII key, a huge integer — goes to ``rfc8785``. ``tests/test_audit_canonical.py``
checks the two agree.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_LIMIT = 2**53 - 1  # the "safe integer" range; rfc8785 refuses anything beyond


def _plain(value: Any) -> bool:
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return -_LIMIT <= value <= _LIMIT
    if t is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if t is list:
        return all(_plain(v) for v in value)
    return False


def canonical(value: Any) -> bytes:
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)
