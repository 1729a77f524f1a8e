"""A resource validated a moment before and then changed in a few elements is checked only in
what changed (``Validator.valid_elements``, ``pins_versions``), and that check says yes exactly
when validating the whole changed resource does. Ingest relies on it for each message's signed
Provenance: validated unsigned with its message, then pinned to the stored versions and signed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from adapters.convert import convert
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from bench.ingest import oru_lab
from conformance.validate import Validator, pins_versions
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED
from engine.settings import Settings
from mappings.site import Site

FEED = Path(__file__).resolve().parent.parent / "examples" / "feeds" / "02_FNXRMYY_ORU_R01_blood_count.hl7"
SIGNATURE = {
    "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1",
              "display": "Author's Signature"}],
    "when": "2026-03-10T03:00:00Z",
    "who": {"type": "Device", "identifier": {"system": "urn:huren:node", "value": "node-1"},
            "display": "huren integration engine"},
    "targetFormat": "application/fhir+json",
    "sigFormat": "application/jose",
    "data": "ZXlKaGJHY2lPaUpGWkVSVFFTSjkuLmFiYw==",
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@pytest.fixture(scope="module")
def provenance(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    site = Site.load(Settings(data_dir=tmp_path_factory.mktemp("var")))
    resources = convert(parse(decode_message(FEED.read_bytes())), site).resources
    return next(r for r in resources if r["resourceType"] == "Provenance")


def _pinned(provenance: dict[str, Any], version: str = "1") -> list[dict[str, Any]]:
    return [{**t, "reference": f"{t['reference']}/_history/{version}"} for t in provenance["target"]]


def _signature_mutations() -> list[tuple[str, Any]]:
    """(label, signature list): the shapes a signer could get wrong, and valid ones."""
    out: list[tuple[str, Any]] = [("as signed", [SIGNATURE]), ("two signatures", [SIGNATURE, SIGNATURE])]
    for key, bad in (("when", "2026-02-30T03:00:00Z"), ("when", "yesterday"), ("when", "2026-03-10"),
                     ("when", ""), ("data", ""), ("data", 5), ("sigFormat", "application jose"),
                     ("targetFormat", " application/fhir+json"), ("who", {"reference": "Encounter/1"}),
                     ("type", []), ("type", [{"code": ""}]), ("unknown", "x")):
        out.append((f"{key}={bad!r}", [{**SIGNATURE, key: bad}]))
    for key in SIGNATURE:
        out.append((f"no {key}", [{k: v for k, v in SIGNATURE.items() if k != key}]))
    out += [("empty list", []), ("not a list", SIGNATURE), ("null", None), ("a string", ["x"])]
    return out


@pytest.mark.parametrize(("label", "signature"), _signature_mutations(), ids=[m[0] for m in _signature_mutations()])
def test_the_signature_check_agrees_with_validating_the_whole(validator: Validator, provenance: dict[str, Any],
                                                              label: str, signature: Any) -> None:
    signed = {**provenance, "target": _pinned(provenance), "signature": signature}
    assert validator.is_valid(provenance)
    assert validator.valid_elements("Provenance", {"signature": signature}) == validator.is_valid(signed), label


def test_pinned_targets_are_valid_exactly_when_the_whole_is(validator: Validator, provenance: dict[str, Any]) -> None:
    before = provenance["target"]
    cases: list[tuple[list[Any], bool]] = [(_pinned(provenance), True), (_pinned(provenance, "17"), True),
                                           (before, True)]
    for bad in ("", "a b", "x" * 65, "1/2"):
        cases.append((_pinned(provenance, bad), False))
    unpinned_one = _pinned(provenance)
    unpinned_one[3] = {"reference": before[3]["reference"] + "/_history/"}
    cases.append((unpinned_one, False))
    other_target = _pinned(provenance)
    other_target[0] = {"reference": "Patient/someone-else/_history/1"}
    cases.append((other_target, False))  # valid as a whole, but not a pinning of ``before``: look closer
    cases.append((_pinned(provenance)[:-1], False))
    for after, pinned in cases:
        assert pins_versions(before, after) is pinned
        if pinned:  # what pins_versions accepts, the whole validation accepts
            assert validator.is_valid({**provenance, "target": after})
    for after in (_pinned(provenance, ""), _pinned(provenance, "a b"), _pinned(provenance, "x" * 65)):
        assert not validator.is_valid({**provenance, "target": after})


def test_elements_other_rules_relate_are_never_checked_alone(validator: Validator) -> None:
    # a choice (one effective[x]), an element huren's profile requires or constrains, nested resources
    for rtype, element in (("Observation", "effectiveDateTime"), ("Observation", "subject"),
                           ("Observation", "status"), ("Observation", "category"), ("Observation", "contained"),
                           ("Bundle", "entry"), ("Observation", "noSuchElement")):
        assert validator.valid_elements(rtype, {element: {}}) is False
    assert validator.valid_elements("Observation", {"note": [{"text": "seen"}]}) is True
    assert validator.valid_elements("Observation", {"note": [{"text": ""}]}) is False


def test_ingest_validates_a_signed_provenance_once_and_still_refuses_a_bad_signature(settings: Settings) -> None:
    with Engine(settings) as engine:
        validated: list[str] = []
        plain = engine.validator.validate

        def counting(resource: dict[str, Any]) -> None:
            validated.append(resource["resourceType"])
            plain(resource)

        engine.validator.validate = counting  # type: ignore[method-assign]
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (1, 2)])
        assert [o.code for o in outcomes] == ["AA", "AA"]
        assert validated.count("Provenance") == 2  # one each, unsigned with its message; the signed form by its changes
        for out in outcomes:
            prov = next(r for r in (engine.repository.read(*ref.split("/")) for ref in out.resources)
                        if r["resourceType"] == "Provenance")
            assert prov["signature"] and all("/_history/" in t["reference"] for t in prov["target"])

        signer = engine.ingestor.sign

        def bad_clock(provenance: dict[str, Any], targets: Any) -> dict[str, Any]:
            signed = copy.deepcopy(signer(provenance, targets))
            signed["signature"][-1]["when"] = "2026-02-30T10:00:00Z"
            return signed

        engine.ingestor.sign = bad_clock
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (3, 4)])
        assert [o.code for o in outcomes] == ["AE", "AE"]
        ack = outcomes[0].ack.decode()
        assert "FHIR resource rejected (422)" in ack and "signature" in ack and "2026-02-30" in ack
        assert all(engine.ingestor.messages.get(o.message_id)["status"] == QUARANTINED for o in outcomes)
        engine.ingestor.sign = signer
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
