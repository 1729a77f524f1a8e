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

**orjson first, checked by its output.** The walk above (``_plain``) is Python over every value:
~70 us for the ~900 values of a 12-OBX lab message's signed targets, where orjson writes them in
~13 us. So ``canonical`` now lets orjson write first (integers held to the safe range by
``OPT_STRICT_INTEGER``, ``FhirDecimal`` through ``_as_jcs``) and looks at its output for the only
forms in which it can differ from JCS, each a pattern no JSON string can end a token with:

- a float with an integral value below 1e16 (``145.0``, ``-0.0``; JCS ``145``, ``0``): ``.0``
  right before ``,`` ``]`` or ``}``;
- a float from 1e16 to below 1e21 (orjson ``1e+16``, JCS ``10000000000000000``), and any other
  positive exponent (from 1e21 on both write ``1e+21``; checked anyway): ``e+``;
- a float from 1e-6 to below 1e-5 (orjson ``2.5e-6``, JCS ``0.0000025``): ``e-6`` right before a
  delimiter (below that both write exponents, above it both write digits);
- ``null``: orjson writes NaN and infinities so, where JCS refuses them (a real ``null`` takes
  the careful path too; FHIR resources have none);
- a character beyond U+FFFF anywhere (a key holding one may sort differently: JCS sorts by UTF-16
  code units, orjson by code points): its UTF-8 lead byte.

Any of them — or orjson refusing the value — sends the value down the careful path (the walk,
then ``rfc8785`` for what the walk does not clear). A string that merely contains such a pattern
costs that detour, never a wrong byte. Four searches and five byte scans of the output take
~25 us for the lab message (~35 us in all against ~85 us). ``tests/test_audit_canonical.py``
checks the two agree on random documents and random doubles.
"""

from __future__ import annotations

import re
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
# orjson output forms that may differ from JCS (see the module's docstring)
_INTEGRAL_FLOAT = re.compile(rb"\.0(?:[,\]}]|\Z)").search
_POSITIVE_EXPONENT = re.compile(rb"e\+").search
_SMALL_EXPONENT = re.compile(rb"e-6(?:[,\]}]|\Z)").search
_NULL = re.compile(rb"null").search  # also what orjson writes for NaN and infinities, which JCS refuses


def _differs(out: bytes) -> bool:
    """Could orjson's ``out`` differ from JCS? (False: it is the JCS form.)"""
    return bool(_INTEGRAL_FLOAT(out) or _POSITIVE_EXPONENT(out) or _SMALL_EXPONENT(out) or _NULL(out)
                or b"\xf0" in out or b"\xf1" in out or b"\xf2" in out or b"\xf3" in out or b"\xf4" in out)


def canonical(value: Any) -> bytes:
    """The RFC 8785 form of ``value``: orjson's output when it is provably the same, else the
    careful path."""
    try:
        out = orjson.dumps(value, default=_as_jcs, option=_FAST)
    except (orjson.JSONEncodeError, TypeError):
        return _careful(value)
    return _careful(value) if _differs(out) else out


def canonical_strings(value: dict[str, Any]) -> bytes:
    """The RFC 8785 form of JSON made only of objects with ASCII keys, lists and **strings** (not
    checked: for callers that build such a value themselves, as the Provenance manifest does).

    Why no check of orjson's output, as ``canonical`` makes: every form it looks for is a number,
    ``null`` or a key that sorts otherwise, and such a value has none; its strings orjson writes
    as JCS does, a character beyond U+FFFF included (raw UTF-8 in both). The check was ~9 us of
    the ~11 us of a 12-OBX message's manifest (four searches and five scans of ~2.7 KB)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _careful(value: Any) -> bytes:
    if _plain(value):
        return orjson.dumps(value, default=_as_jcs, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)
