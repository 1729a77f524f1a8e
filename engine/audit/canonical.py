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


_FAST = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_ASTRAL = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")  # UTF-8 lead bytes of characters beyond U+FFFF
_SPACES = bytes.maketrans(b"{}[]:,", b"      ")  # JSON structure -> separators between tokens
_LITERALS = (b"true", b"false")


def _checked(value: Any) -> bytes:
    """The type walk then orjson, or ``rfc8785`` when the walk finds anything it is unsure of."""
    if _plain(value):
        return orjson.dumps(value, default=_as_jcs, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``: orjson first, checked on its own output, else ``_checked``.

    Walking a signed 12-OBX message in Python (``_plain``: ~900 values, ~75 µs warm and twice that
    on the freshly stored resources of an ingest batch) cost more than serialising it. So orjson
    writes first, with the walk's refusals made its own: a non-string key, an unknown type, a
    ``FhirDecimal`` without a JCS twin (``_as_jcs``) and an integer beyond 2**53 - 1
    (``OPT_STRICT_INTEGER``) raise. What orjson writes but JCS might not is then found in the
    output: a float whose text differs (each float token outside strings is asked of ``_same_float``),
    NaN or infinity (orjson writes ``null``: a ``null`` outside strings goes the slow way) and a
    character beyond U+FFFF (the only case where sorting keys by UTF-16 code units, as JCS does,
    differs from orjson's code-point order). Non-ASCII keys of the Basic Multilingual Plane and
    subclasses of str, int, list and dict are written alike by both (``rfc8785`` converts by
    ``isinstance``). Anything doubtful is redone by ``_checked``, the walk as before.
    """
    try:
        out = orjson.dumps(value, default=_as_jcs, option=_FAST)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _checked(value)
    # With no quote after a backslash, every '"' opens or closes a string: the even pieces of a
    # split on '"' are what lies outside strings (a few hundred bytes of structure and numbers).
    if b'\\"' in out or any(lead in out for lead in _ASTRAL):
        return _checked(value)
    outside = b"".join(out.split(b'"')[::2])
    for token in outside.translate(_SPACES).split():
        if token in _LITERALS or token.lstrip(b"-").isdigit():
            continue
        try:  # a float written as JCS writes it; anything else (null: NaN, infinity) goes the slow way
            if _same_float(float(token)):
                continue
        except ValueError:
            pass
        return _checked(value)
    return out
