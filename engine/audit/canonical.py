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
the pure-Python path for them (~1 ms). A ``FhirDecimal`` (an exact HL7/FHIR number such as ``145``
or ``1.50``; JCS writes its double value, ``145`` and ``1.5``) is handed to orjson as the int or
float that writes the same bytes, or goes to ``rfc8785`` when there is none: since lab values
became exact decimals, every integral result (``145 g/L``) sent a signed message down the slow
path again (~1.3 ms of ~7 ms per 12-OBX message). ``tests/test_audit_canonical.py`` checks the
two agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import rfc8785

from engine.fhirjson import FhirDecimal

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
        elif t is FhirDecimal:
            if _jcs_number(v) is None:
                return False
        else:
            return False
    return True


def _jcs_number(value: FhirDecimal) -> int | float | None:
    """The plain int or float orjson writes exactly as JCS writes this decimal's double, or None.

    JCS writes a double with an integral value below 1e21 as its integer digits (``145``), which
    within the safe-integer range is what orjson writes for the int."""
    f = float(value)
    if f.is_integer() and -_LIMIT <= f <= _LIMIT:
        return int(f)
    return f if _same_float(f) else None


def _as_jcs(value: Any) -> Any:
    """orjson's ``default`` for the one non-native type ``_plain`` lets through."""
    if type(value) is FhirDecimal:
        number = _jcs_number(value)
        if number is not None:
            return number
    raise TypeError(f"{type(value).__name__} has no fast canonical form")


def canonical(value: Any) -> bytes:
    if _plain(value):
        return orjson.dumps(value, default=_as_jcs, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)
