"""FHIR JSON in and out, with every number kept exactly as it was written.

A FHIR ``decimal`` is a decimal with implicit precision, not a binary float: ``1.50`` states three
significant figures, ``42.256500`` six decimal places, and a server must give back what it was
sent. Plain JSON libraries read numbers as floats (``1.50`` comes back as ``1.5``,
``66.899999999999991`` as ``66.89999999999999``) and cannot write integers beyond 64 bits. Every
place that turns FHIR JSON bytes into Python values or back goes through ``loads`` / ``dumps``
here, so that rule has one owner.

Numbers whose text is not what ``repr(float)`` would print become ``FhirDecimal``: a ``float``
subclass that remembers its text. Being a float, it compares, sorts, indexes and does arithmetic
like every other number in the engine (code that sees a fast-path ``float`` and code that sees a
``FhirDecimal`` behave alike); ``dumps`` writes its text back verbatim.

Speed: one pass of msgspec's JSON decoder (as fast as orjson, as strict: RFC 8259, no ``NaN``,
no lone surrogates, valid UTF-8), whose ``float_hook`` hands over each float token's text. A token
that ``repr(float)`` prints back unchanged (``1.5``, ``98.6``: nearly all of them) becomes a plain
``float``, so validation and serialisation stay on their fast paths; only the others (``1.50``,
``1e2``) become ``FhirDecimal``. Integers of any size are exact ``int`` (so ``-0`` reads as ``0``). ``dumps`` is orjson with a
``default`` that only runs for a ``FhirDecimal`` (and, on retry, for integers beyond 64 bits).
``bench/fhirjson.py`` prints the cost against plain orjson.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

import msgspec
import orjson

# the FHIR R4 decimal grammar (it is JSON's number grammar)
FHIR_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class DecodeError(ValueError):
    """The bytes are not one JSON document (or hold a number beyond the range of a double)."""


class FhirDecimal(float):
    """A JSON number with its exact text: a float for arithmetic, its ``text`` for JSON.

    ``str()`` gives the text, so a value put into a message or an index key reads as it was
    written. Equality is numeric (``FhirDecimal("1.50") == 1.5``) like every float; use ``same``
    to tell ``1.5`` from ``1.50``.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FhirDecimal:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __repr__(self) -> str:
        return f"FhirDecimal({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[type[FhirDecimal], tuple[str]]:
        return FhirDecimal, (self.text,)

    def __copy__(self) -> FhirDecimal:
        return self

    def __deepcopy__(self, memo: Any) -> FhirDecimal:
        return self


def number(text: str) -> float:
    """The value of a JSON number token: a plain ``float`` when ``repr`` gives the same text back,
    else a ``FhirDecimal`` keeping it (the one rule for both JSON bodies and HL7 values)."""
    value = float(text)
    if repr(value) == text:
        return value
    if value in (_INF, -_INF):
        raise DecodeError(f"the number {text} is out of range")
    return FhirDecimal(text)


_INF = float("inf")
_DECODER = msgspec.json.Decoder(float_hook=number)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse FHIR JSON, keeping every number's exact text. Raises ``DecodeError`` on bad JSON."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from None
    except RecursionError:
        raise DecodeError("the JSON document is nested too deeply") from None


def _default(value: Any) -> Any:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, *, sort_keys: bool = False, indent: bool = False) -> bytes:
    """FHIR JSON bytes; a ``FhirDecimal`` is written as its text (``decimal.Decimal`` as ``str``).
    ``indent`` gives two-space indentation for people reading it on a terminal."""
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, default=_default, option=option)
    except TypeError as exc:  # an int beyond 64 bits (orjson's limit): write it as its digits
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_big_ints(value), default=_default, option=option)


def _big_ints(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _big_ints(v) for k, v in value.items()}
    if t is list:
        return [_big_ints(v) for v in value]
    if t is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    return value


def same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same document, ``1.5`` and ``1.50`` being different.

    ``==`` compares numbers by value (and keys in any order); when it says equal, the sorted
    serialisations decide, which tells the precision of each number apart.
    """
    return a == b and dumps(a, sort_keys=True) == dumps(b, sort_keys=True)


def schema_view(value: Any) -> Any:
    """``value`` with each ``FhirDecimal`` as ``decimal.Decimal`` (exact), for libraries that only
    take the plain JSON types (jsonschema-rs refuses float subclasses but validates ``Decimal``)."""
    t = type(value)
    if t is dict:
        return {k: schema_view(v) for k, v in value.items()}
    if t is list:
        return [schema_view(v) for v in value]
    if t is FhirDecimal:
        return decimal.Decimal(value.text)
    return value
