"""OBX values the converter used to store wrongly, sent over a real MLLP socket and read back
through the FHIR API (convert11).

- An SN whose sender wrote the number whole into SN.1 (``<0.10``, as the HL7 v2-to-FHIR IG's own
  ORU^R01 sample does) was stored as data-absent 'unknown', without a warning: the value was lost.
- A titre's comparator (``<^1^:^128``) was dropped from the Ratio: "<1:128" read back as "1:128".
- An SN FHIR cannot hold (a second number without a separator, an unknown comparator or
  separator, a comparator on a range, half a ratio) lost its second part or became an invalid
  comparator; it is now kept as text with a warning at OBX-5, as an NM that is not a number is.
- OBX-7 does not repeat, so a reference range written ``57~111`` with the "~" unescaped was read as
  its first repetition: the range stored was "57".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import NATIONAL_ID
from tests.test_convert import assert_valid_bundle, one
from tests.test_ingest_durability import err_fields, exchange, listening


def lab(control: str, *obx: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        f"PID|1||{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M\r"
        f"OBR|1|ORD-{control}|LAB-{control}|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD|D001^李^医生"
        "||||||20261101091000|||F\r"
        + "".join(f"{line}\r" for line in obx)
    ).encode()


@pytest.fixture
def fhir(http: TestClient, engine: Engine) -> Iterator[TestClient]:
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
    yield http


def send(engine: Engine, message: bytes) -> bytes:
    async def run() -> bytes:
        async with listening(engine) as server:
            (ack,) = await exchange(server.port, message)
            return ack

    return asyncio.run(run())


def stored_observations(engine: Engine, fhir: TestClient, control: str) -> list[tuple[dict[str, Any], str]]:
    """The message's Observations as the FHIR API serves them: (parsed, the response text)."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    out = []
    for ref in sorted(r for r in doc["resources"] if r.startswith("Observation/")):
        response = fhir.get(f"/fhir/{ref}")
        assert response.status_code == 200
        out.append((response.json(), response.text))
    return out


def by_code(observations: list[tuple[dict[str, Any], str]], code: str) -> tuple[dict[str, Any], str]:
    return next(o for o in observations if o[0]["code"]["coding"][0]["code"] == code)


def test_sn_values_and_a_tilde_range_are_read_back_as_sent(engine: Engine, fhir: TestClient) -> None:
    ack = send(engine, lab(
        "SN1",
        "OBX|1|SN|IGE^IgE^L||<0.10|kU/L|<0.10|N|||F|||20261101090000",
        "OBX|2|SN|TITRE^滴度^L||<^1^:^128||||||F|||20261101090000",
        "OBX|3|NM|CREA^肌酐^L||78.10|umol/L|57~111|N|||F|||20261101090000",
        "OBX|4|SN|GLU^葡萄糖^L||5.60|mmol/L|3.9～6.1|N|||F|||20261101090000",
    ))
    assert ack_code_of(ack) == "AA"
    assert not [e for e in err_fields(ack) if e[2].startswith("OBX")]  # no warning on any of them
    observations = stored_observations(engine, fhir, "SN1")

    ige, ige_text = by_code(observations, "IGE")
    assert "dataAbsentReason" not in ige
    assert ige["valueQuantity"]["comparator"] == "<" and ige["valueQuantity"]["code"] == "kU/L"
    assert '"value":0.10' in ige_text.replace(" ", "")  # the sender's precision, to the digit

    titre, _ = by_code(observations, "TITRE")
    assert titre["valueRatio"] == {"numerator": {"value": 1, "comparator": "<"}, "denominator": {"value": 128}}

    crea, crea_text = by_code(observations, "CREA")
    (rng,) = crea["referenceRange"]
    assert rng["text"] == "57~111"
    assert (rng["low"]["value"], rng["high"]["value"]) == (57, 111)
    assert '"value":78.10' in crea_text.replace(" ", "")

    glu, _ = by_code(observations, "GLU")
    assert glu["valueQuantity"]["value"] == 5.6 and "comparator" not in glu["valueQuantity"]
    (rng,) = glu["referenceRange"]
    assert (rng["text"], rng["low"]["value"], rng["high"]["value"]) == ("3.9～6.1", 3.9, 6.1)


@pytest.fixture(scope="module")
def site() -> Site:
    return Site.load(Settings())


def observe(site: Site, obx: str) -> tuple[dict[str, Any], list[Any]]:
    conv = convert(parse(lab("V1", obx).decode()), site)
    assert_valid_bundle(conv)
    return one(conv, "Observation"), conv.warnings


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("^5^^7", "a second number ('7') without a separator"),
        ("==^5", "comparator '==' has no FHIR equivalent"),
        (">^1^-^5", "comparator '>' with separator '-' has no FHIR equivalent"),
        ("^1^:", "a ratio needs two numbers (1:?)"),
        ("^5^x^6", "separator/suffix 'x' is not one of - + / :"),
        ("^2^+^3", "a second number after the suffix '+' ('3')"),
        ("1:128", "'1:128' is not a number"),
    ],
)
def test_an_sn_fhir_cannot_hold_is_kept_as_text_with_a_warning(site: Site, value: str, why: str) -> None:
    obs, warnings = observe(site, f"OBX|1|SN|TITRE^滴度^L||{value}||||||F|||20261101090000")
    assert obs["valueString"] == value
    assert not any(k.startswith("value") and k != "valueString" for k in obs)
    (warning,) = warnings
    assert (warning.segment, warning.field, warning.severity) == ("OBX", 5, "W")
    assert why in warning.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.10", {"valueQuantity": {"value": 0.1}}),
        ("≥^2", {"valueQuantity": {"value": 2, "comparator": ">="}}),
        ("=^2", {"valueQuantity": {"value": 2}}),
        (">^1^/^64", {"valueRatio": {"numerator": {"value": 1, "comparator": ">"}, "denominator": {"value": 64}}}),
        ("^^-^10", {"valueRange": {"high": {"value": 10}}}),
        ("^2^+", {"valueString": "2+"}),
    ],
)
def test_sn_shapes_fhir_holds(site: Site, value: str, expected: dict[str, Any]) -> None:
    obs, warnings = observe(site, f"OBX|1|SN|TITRE^滴度^L||{value}||||||F|||20261101090000")
    assert {k: v for k, v in obs.items() if k.startswith("value")} == expected
    assert warnings == []


def test_a_tilde_range_is_the_same_from_a_plan(site: Site) -> None:
    """The second result of a description is built from the plan the first left: the range it
    carries is the one the ordinary path reads."""
    line = "OBX|1|NM|CREA^肌酐^L||{}|umol/L|57~111|N|||F|||20261101090000"
    first, _ = observe(site, line.format("78"))
    again = [observe(site, line.format(v))[0] for v in ("80", "81.5")]
    for obs in (first, *again):
        assert json.dumps(obs["referenceRange"], sort_keys=True) == json.dumps(first["referenceRange"], sort_keys=True)
        assert obs["referenceRange"][0]["text"] == "57~111" and obs["referenceRange"][0]["low"]["value"] == 57


@pytest.mark.parametrize(
    ("value", "expected"),
    [("083015.5", "08:30:15.5"), ("0830", "08:30:00"), ("235959.1234", "23:59:59.1234"), ("08", "08:00:00")],
)
def test_a_time_keeps_its_fraction(site: Site, value: str, expected: str) -> None:
    """TM fractions were cut (``083015.5`` became 08:30:15)."""
    obs, warnings = observe(site, f"OBX|1|TM|CLOT^凝固时刻^L||{value}||||||F|||20261101090000")
    assert obs["valueTime"] == expected and warnings == []


@pytest.mark.parametrize("value", ["08301599", "2530", "0860", "0830+0800", "8:30"])
def test_a_time_that_is_not_one_is_kept_as_text(site: Site, value: str) -> None:
    """More digits than TM has were cut off silently (``08301599`` read as 08:30:15) and an hour
    past 23 made a valueTime the validator refuses; both are kept as text with a warning now."""
    obs, warnings = observe(site, f"OBX|1|TM|CLOT^凝固时刻^L||{value}||||||F|||20261101090000")
    assert obs["valueString"] == value and "valueTime" not in obs
    (warning,) = warnings
    assert (warning.segment, warning.field) == ("OBX", 5)
