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


def test_the_output_checked_path_equals_the_walked_path() -> None:
    """``canonical`` trusts orjson's output after checking it; it must give exactly what the type
    walk (``_checked``) gives, or raise as it raises, on documents full of what the check looks
    for: floats, nulls and number-like text inside strings, escapes, BMP and astral keys,
    NaN and infinities, tuples and subclasses."""
    from engine.audit.canonical import _checked

    class Text(str):
        pass

    tricky = ['"', '\\"', "null", "1.5", "a\\", '\\\\"x', "1e16", "x\":1.0,\"y", "\u4e2d\u6587", "\ue000", "\uffff"]
    extra = [float("nan"), float("inf"), -float("inf"), None, (1, "a"), Text("t"), -0.0, 5e-324, 1e21, 2**53 - 1]

    def doc(rng: random.Random, depth: int = 0):
        roll = rng.random()
        if depth > 3 or roll < 0.45:
            return rng.choice([random_json(rng, 3), rng.choice(tricky) + rng.choice(tricky), rng.choice(extra)])
        if roll < 0.7:
            return [doc(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        keys = [*tricky, "a", "\u00e9", "\U0001f600", "\ue000b", "resourceType", "\u4e2d"]
        return {rng.choice(keys) + str(i): doc(rng, depth + 1) for i in range(rng.randint(0, 5))}

    edge = [[float("nan")], {"a": float("inf")}, ['"', 145.0], ["a\\", 145.0], ['x"', {"v": -0.0}],
            {"\U0001f600": 1, "\ue000": 2}, {"\u00e9": 1, "a": 2, "\u4e2d": 3}, [None, 6.2], ["null", 1e16],
            {"k": "1.0"}, [2**53], [Text("t"), (1.5, 2)]]
    rng = random.Random(1762)
    for value in edge + [doc(rng) for _ in range(4000)]:
        try:
            expected = _checked(value)
        except Exception as exc:  # noqa: BLE001 - whatever the walk raises, canonical raises too
            with pytest.raises(type(exc)):
                canonical(value)
            continue
        assert canonical(value) == expected, value


def test_a_signed_lab_payload_is_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab result's floats, exact decimals and Chinese text take orjson's path with no type walk;
    number-like text inside strings is not taken for a number."""
    import engine.audit.canonical as module

    walked: list[object] = []
    monkeypatch.setattr(module, "_plain", lambda value: walked.append(value) or _plain(value))
    doc = [{"resourceType": "Observation", "id": f"o{i}", "code": {"text": "血红蛋白 HGB: 1.50, null, 145.0"},
            "valueQuantity": {"value": number(text), "unit": "g/L"}, "referenceRange": [{"low": {"value": 4.3}}]}
           for i, text in enumerate(("145", "6.2", "0.43", "1.50"))]
    assert canonical(doc) == rfc8785.dumps(doc)
    assert walked == []
    assert canonical([{"v": 145.0}]) == rfc8785.dumps([{"v": 145.0}]) and len(walked) == 1  # 145.0: JCS writes 145
