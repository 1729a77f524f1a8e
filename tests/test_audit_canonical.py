"""The fast canonical form is byte-for-byte RFC 8785 (checked against the ``rfc8785`` package)."""

from __future__ import annotations

import random

import pytest
import rfc8785

from engine.audit.canonical import _plain, canonical
from engine.audit.events import build_event, requestor_agent
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
