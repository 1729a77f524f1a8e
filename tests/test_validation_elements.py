"""Elements checked alone, in Python where the schema engine would be met cold (the holes of a
compiled plan, ``Validator.valid_planned``), get the schema engine's answer; and a message whose
signed Provenance is broken is still refused with the validator's reason."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest

from bench.ingest import oru_lab
from conformance.validate import Validator, _reachable, _string_check
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED
from engine.settings import Settings


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def test_a_message_whose_signed_provenance_is_broken_is_refused_with_the_reason(settings: Settings) -> None:
    with Engine(settings) as engine:
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (1, 2)])
        assert [o.code for o in outcomes] == ["AA", "AA"]
        for out in outcomes:
            prov = next(r for r in (engine.repository.read(*ref.split("/")) for ref in out.resources)
                        if r["resourceType"] == "Provenance")
            assert prov["signature"] and all("/_history/" in t["reference"] for t in prov["target"])

        signer, signer_many = engine.ingestor.sign, engine.ingestor.sign_many

        def bad_when(signed: dict[str, Any]) -> dict[str, Any]:
            signed = copy.deepcopy(signed)
            signed["signature"][-1]["when"] = "2026-02-30T10:00:00Z"
            return signed

        def bad_clock(provenance: dict[str, Any], targets: Any) -> dict[str, Any]:
            return bad_when(signer(provenance, targets))

        def bad_clock_many(pairs: Any) -> list[dict[str, Any]]:  # a batch's Provenances, signed together
            return [bad_when(s) for s in signer_many(pairs)]

        engine.ingestor.sign, engine.ingestor.sign_many = bad_clock, bad_clock_many
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (3, 4)])
        assert [o.code for o in outcomes] == ["AE", "AE"]
        ack = outcomes[0].ack.decode()
        assert "FHIR resource rejected (422)" in ack and "signature" in ack and "2026-02-30" in ack
        assert all(engine.ingestor.messages.get(o.message_id)["status"] == QUARANTINED for o in outcomes)
        engine.ingestor.sign, engine.ingestor.sign_many = signer, signer_many
        again = engine.ingestor.process([(oru_lab(5), "mllp", "p")])
        assert again[0].code == "AA"
        assert engine.ingestor.messages.get(again[0].message_id)["status"] == PROCESSED


def _strings() -> list[str]:
    """Values a sender or a signer could put in a string element: good ones and every near miss."""
    base = ["2026-03-10T03:00:00Z", "2026-03-10T03:00:00.123456+08:00", "2026-03-10", "2026-03", "2026",
            "2024-02-29", "2023-02-29", "2026-02-30", "2026-13-01", "2026-00-10", "0000-01-01", "0001-01-01",
            "2026-03-10T24:00:00Z", "2026-03-10T23:59:60Z", "2026-03-10T03:00:00+14:00", "2026-03-10T03:00:00+14:59",
            "2026-03-10T03:00:00", "2026-03-10T03:00Z", "2026-3-1", "20260310", "10:30:00", "25:00:00",
            "final", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "a\x0bb", "a\x0cb", "", " ", "\u3000", "检验",
            "urn:oid:1.2.3", "urn:oid:1.02", "urn:uuid:0d6c2f1e-3b0f-5a8e-9d43-5a3f6c1b2e90", "http://x/y z",
            "abc-DEF.09", "x" * 64, "x" * 65, "a/b", "ZXlK+/==", "%%%", "\ud7ff", "emoji \U0001f600", "x\u00a0y"]
    return base + [v + "\n" for v in base[:6]] + [v + "\r" for v in base[:4]]


@pytest.mark.parametrize("name", ["instant", "dateTime", "date", "time", "code", "id", "uri", "url", "canonical",
                                  "oid", "uuid", "string", "markdown", "base64Binary"])
def test_python_string_checks_say_what_the_schema_engine_says(validator: Validator, name: str) -> None:
    check = validator._value_check({"$ref": f"#/definitions/{name}"})
    engine = validator.r4.validator(name)
    for value in _strings():
        assert check(value) is engine.is_valid(value), (name, value)
    for value in (5, None, ["a"], {"a": 1}, True):
        assert check(value) is engine.is_valid(value), (name, value)


def _references() -> list[str]:
    """Reference texts a converter or a client could write: relative, versioned, conditional,
    contained, absolute (of an allowed type, of another type, of no type) and near misses."""
    uuid = "0d6c2f1e-3b0f-5a8e-9d43-5a3f6c1b2e90"
    base = []
    for rtype in ("Patient", "Group", "Observation", "Encounter", "Specimen", "Organization", "Patients", "patient"):
        base += [f"{rtype}/{uuid}", f"{rtype}/{uuid}/_history/2", f"{rtype}/{'x' * 65}", f"{rtype}/a b",
                 f"{rtype}?identifier=1", f"{rtype}?", f"https://other.example/fhir/{rtype}/1",
                 f"http://other.example/{rtype}/1/_history/1", f"https://h/{rtype}/{'x' * 65}", f"{rtype}/",
                 f"/{rtype}/1", f"{rtype}/1/_history/"]
    base += ["#", "#c1", "#c 1", f"urn:uuid:{uuid}", f"urn:uuid:{uuid.upper()}", "urn:oid:1.2.3", "urn:oid:1.02",
             "https://example.org/any/thing", "https://example.org", "http:/x", "ftp://x/Patient/1", "", " ",
             "Patient/1 ", " Patient/1", "Patient//1"]
    return base + [v + "\n" for v in base[:4]]


@pytest.mark.parametrize(("rtype", "element"), [("Observation", "subject"), ("Observation", "specimen"),
                                                ("Observation", "encounter"), ("DiagnosticReport", "result"),
                                                ("ServiceRequest", "requester")])
def test_python_reference_checks_say_what_the_schema_engine_says(validator: Validator, rtype: str, element: str) -> None:
    """A typed Reference (its ``reference`` narrowed to the element's target types, absolute URLs
    included) checked in Python agrees with the schema engine on the same definition."""
    prop = validator.r4.definitions[rtype]["properties"][element]
    ref = (prop.get("items") or prop)["$ref"]
    narrowed = validator.r4.definitions[ref.rsplit("/", 1)[1]]["properties"]["reference"]
    check = validator._value_check(narrowed)
    assert check.__name__ == "<lambda>" and _string_check(narrowed) is not None  # the Python path
    engine = jsonschema_rs.validator_for({"$schema": validator.r4.dialect, **narrowed})
    for value in _references():
        assert check(value) is engine.is_valid(value), (rtype, element, value)
    whole = validator._value_check({"$ref": ref})
    reference_engine = jsonschema_rs.validator_for({"$schema": validator.r4.dialect, "$ref": ref,
                                                    "definitions": _reachable(validator.r4.definitions, {"$ref": ref})})
    for value in _references():
        for candidate in ({"reference": value}, {"reference": value, "display": "x"}, {"reference": value, "x": 1}):
            assert whole(candidate) is reference_engine.is_valid(candidate), (rtype, element, candidate)
