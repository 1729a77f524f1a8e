"""The fast canonical form is byte-for-byte RFC 8785 (checked against the ``rfc8785`` package)."""

from __future__ import annotations

import hashlib
import random

import pytest
import rfc8785

from engine.audit.canonical import _plain, canonical, canonical_strings
from engine.audit.events import build_event, requestor_agent
from engine.audit.provenance import manifest
from engine.fhirjson import FhirDecimal, number

ODD = ["", "张三 阜宁县人民医院", "\x00\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", "/\\\"'", "\ud7ff\ue000\U0001f600",
       "é", "<script>"]


def random_json(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "bool", "null", "float", "decimal"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(ODD) + str(rng.randint(0, 99))
    if kind == "int":
        return rng.choice([0, -1, 7, 2**53, -(2**53), 2**31, rng.randint(-10**12, 10**12)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "float":
        return rng.choice([0.5, 1e21, 1e-7, -0.0, 13.2, 1 / 3, 145.0, 1e16, 6.2, 3.5e-05, 0.43, 1e-4, 2.0**60])
    if kind == "decimal":  # exact numbers as the HL7 converters and fhirjson make them
        return FhirDecimal(rng.choice(["145", "1.50", "1e2", "0.10", "-3", "9007199254740993", "1e300", "4.80",
                                       "123456789012345678901234", "0.0000010", "1E-7", "2.50e+21"]))
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["a", "B", "_x", "id", "z9", "\u00e9", "\U0001f600", "\ue000", "resourceType"]
    return {rng.choice(keys) + str(i): random_json(rng, depth + 1) for i in range(rng.randint(0, 5))}


def test_agrees_with_rfc8785_on_random_documents() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        doc = random_json(rng)
        try:
            expected = rfc8785.dumps(doc)
        except rfc8785.CanonicalizationError:  # e.g. an integer beyond 2**53 - 1: refused by both
            with pytest.raises(rfc8785.CanonicalizationError):
                canonical(doc)
            continue
        assert canonical(doc) == expected


def test_agrees_on_audit_events() -> None:
    for i, text in enumerate(ODD):
        ev = build_event(action="search", origin="o", agents=requestor_agent(kind="patient", subject=text,
                                                                              address="::1"),
                         patient_ids=[f"p{i}"], query=f"Observation?name={text}", detail={"why": text})
        assert canonical(ev) == rfc8785.dumps(ev)


def test_exact_lab_values_take_the_fast_path_and_agree() -> None:
    """Integral and trailing-zero lab values (FhirDecimal) are written as JCS writes their double."""
    values = [number(t) for t in ("145", "6.2", "0.43", "1.50", "335", "90", "4.80", "1e2")]
    assert any(isinstance(v, FhirDecimal) for v in values)
    assert _plain(values)  # not the pure-Python rfc8785 path
    doc = [{"resourceType": "Observation", "id": f"o{i}", "valueQuantity": {"value": v, "unit": "g/L"}}
           for i, v in enumerate(values)]
    assert canonical(doc) == rfc8785.dumps(doc)


def test_agrees_with_rfc8785_on_random_doubles() -> None:
    """orjson writes first and its output is checked for the forms that differ from JCS: every
    double (random bit patterns, and the edges of each form) comes out as ``rfc8785`` writes it."""
    import struct

    rng = random.Random(754)
    edges = [1e16, 1e21, 9.999999999999998e15, 9.999999999999999e20, 1e-6, 1e-5, 9.99e-7, 2.5e-6,
             9.999999999999999e-6, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 2.0**53, 2.0**53 + 2, -0.0, 0.0]
    doubles = edges + [-d for d in edges]
    doubles += [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000)]
    doubles += [rng.uniform(-1e6, 1e6) for _ in range(5_000)] + [float(rng.randint(-10**17, 10**17)) for _ in range(5_000)]
    doubles += [10.0 ** rng.randint(-330, 308) * rng.choice([1, 1.5, 2.25, 7]) for _ in range(5_000)]
    for d in doubles:
        for doc in (d, [d], {"a": d, "b": "x"}, {"value": [d, 1]}):
            try:
                expected = rfc8785.dumps(doc)
            except rfc8785.CanonicalizationError:  # NaN, infinities
                with pytest.raises(rfc8785.CanonicalizationError):
                    canonical(doc)
                continue
            assert canonical(doc) == expected, d


def test_strings_that_look_like_the_risky_forms_are_written_exactly() -> None:
    """A string holding one of the patterns that send a value down the careful path (``.0,``,
    ``e+``, ``e-6]``, ``null``, a character beyond U+FFFF) costs the detour, never a wrong byte."""
    doc = {"text": "v2.0, 3.0] 1e+5 x e-6} null \U0001f600", "keys": {"\U0001f600": 1, "\ue000": 2, "a": None},
           "n": [145.0, 1e16, 2.5e-6, FhirDecimal("1.50")], "id": "4fe9463b-6fb3-5e77-8b40-c1fcc360e137"}
    assert canonical(doc) == rfc8785.dumps(doc)
    assert canonical({"text": "ok"}) == b'{"text":"ok"}'


def test_strings_only_json_is_written_as_rfc8785_without_the_output_check() -> None:
    """``canonical_strings`` (the Provenance manifest's form): ASCII keys, lists and strings of every
    kind -- controls, quotes, characters beyond U+FFFF, strings that look like numbers or null --
    are byte for byte what ``rfc8785`` writes, and what ``manifest`` signs is that form."""
    rng = random.Random(9162)
    tricky = [*ODD, "null", "145.0", "1e+16", "2.5e-6", "Observation/x/_history/1"]
    for _ in range(2000):
        doc = {"targets": [{"reference": rng.choice(tricky) + str(rng.randint(0, 9)),
                            "sha256": rng.choice(tricky)} for _ in range(rng.randint(0, 6))],
               rng.choice(["a", "Z", "_k", "m1"]): [rng.choice(tricky) for _ in range(rng.randint(0, 3))]}
        assert canonical_strings(doc) == rfc8785.dumps(doc)
    refs, bodies = ["Patient/p1/_history/2", "Observation/\U0001f600/_history/1"], [b"{}", b'{"a":1}']
    expected = [{"reference": r, "sha256": hashlib.sha256(b).hexdigest()} for r, b in zip(refs, bodies, strict=True)]
    assert manifest(refs, bodies) == rfc8785.dumps({"targets": expected})
