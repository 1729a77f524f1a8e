"""A result sent again without its value never erases the value, and never leaves a stored
Observation saying both "the value is 78" and "the value is unknown" (convert11).

Found over MLLP: a lab re-sends a result with OBX-5 empty (a correction of other fields, or a
resend from a system that dropped the value). The converter marks such an Observation
``dataAbsentReason: unknown``; the merge rules (feeds: keep-if-absent) kept the stored
``valueQuantity`` and added the incoming ``dataAbsentReason`` beside it -- an Observation R4
forbids (obs-6) and that reads as both -- and a later text value kept the stale reason too. The
reference range of the thinner message, whose bounds carried no unit when there was no numeric
value, replaced the stored range with its units. Now a stored value stands over a later reason
(reported in the ACK as not stored, like any value the rules keep out), a later value replaces a
stored reason, and the range's bounds carry OBX-6's unit whether or not there is a value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_ingest_durability import err_fields, exchange, listening


def result(control: str, obx5: str, *, vtype: str = "NM", unit: str = "umol/L", hour: str = "09") -> bytes:
    return (
        # (MSH-7 at ``hour``: "09" then "10" is the lab's order -- it read 19:15 then 10:15 before, the later
        # message older by the lab's clock, which the same sender's older restatement now holds: tfix35)
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{hour}1500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        "PID|1||M0009^^^FNXRMYY^MR||张^三||19800101|M\r"
        "OBR|1|ORD-T|LAB-T|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD||||||||20261101091000|||F\r"
        f"OBX|1|{vtype}|CREA^肌酐^L||{obx5}|{unit}|57-111||||F|||20261101090000\r"
    ).encode()


@pytest.fixture
def fhir(http: TestClient, engine: Engine) -> Iterator[TestClient]:
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
    yield http


def send(engine: Engine, *messages: bytes) -> list[bytes]:
    async def run() -> list[bytes]:
        async with listening(engine) as server:
            return await exchange(server.port, *messages)

    return asyncio.run(run())


def observation(engine: Engine, fhir: TestClient, control: str) -> dict[str, Any]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    response = fhir.get(f"/fhir/{ref}")
    assert response.status_code == 200
    return response.json()


UCUM_UMOL = {"unit": "umol/L", "system": "http://unitsofmeasure.org", "code": "umol/L"}


def test_a_resend_without_the_value_leaves_the_value_alone(engine: Engine, fhir: TestClient) -> None:
    first, thinner = send(engine, result("T1", "78"), result("T2", "", hour="10"))
    assert [ack_code_of(a) for a in (first, thinner)] == ["AA", "AA"]

    # the stored value stands, with no reason for its absence beside it; the ACK says what was not stored
    warned = [e for e in err_fields(thinner) if "dataAbsentReason" in e[-1]]
    assert warned and warned[0][4] == "W" and "a value stated earlier stands" in warned[0][-1]
    obs = observation(engine, fhir, "T2")
    assert obs["valueQuantity"] == {"value": 78, **UCUM_UMOL}
    assert "dataAbsentReason" not in obs
    (rng,) = obs["referenceRange"]
    assert rng["low"] == {"value": 57, **UCUM_UMOL} and rng["high"] == {"value": 111, **UCUM_UMOL}

    # a later value (text this time) replaces the value; no stale reason comes back with it
    (text,) = send(engine, result("T3", "溶血", vtype="ST", unit="", hour="11"))
    assert ack_code_of(text) == "AA"
    obs = observation(engine, fhir, "T3")
    assert obs["valueString"] == "溶血" and "valueQuantity" not in obs and "dataAbsentReason" not in obs


def test_a_value_after_an_absent_one_replaces_the_reason(engine: Engine, fhir: TestClient) -> None:
    empty, valued = send(engine, result("U1", ""), result("U2", "80.50", hour="10"))
    assert ack_code_of(empty) == ack_code_of(valued) == "AA"
    assert not [e for e in err_fields(valued) if "dataAbsentReason" in e[-1]]
    obs = observation(engine, fhir, "U2")
    assert obs["valueQuantity"] == {"value": 80.5, **UCUM_UMOL} and "dataAbsentReason" not in obs


def test_a_range_keeps_its_unit_when_the_result_has_no_number(engine: Engine, fhir: TestClient) -> None:
    (ack,) = send(engine, result("V1", "溶血", vtype="ST"))
    assert ack_code_of(ack) == "AA"
    (rng,) = observation(engine, fhir, "V1")["referenceRange"]
    assert rng == {"text": "57-111", "low": {"value": 57, **UCUM_UMOL}, "high": {"value": 111, **UCUM_UMOL}}


def test_a_correction_of_one_result_keeps_the_others_in_the_report(engine: Engine, fhir: TestClient) -> None:
    """A lab corrects one result of a panel and sends only that OBX (OBX-11 C, OBR-25 C): the
    report kept only the corrected result in ``result`` -- the creatinine, still stored and still
    final, was no longer part of the report that names it."""
    head = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{t}||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            "PID|1||M0009^^^FNXRMYY^MR||张^三||19800101|M\r"
            "OBR|1|ORD-W|LAB-W|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD||||||||20261101{t}|||{status}\r")
    first = (head.format(t="091500", control="W1", status="F")
             + "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111|N|||F|||20261101090000\r"
             + "OBX|2|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1|N|||F|||20261101090000\r").encode()
    correction = (head.format(t="101500", control="W2", status="C")
                  + "OBX|2|NM|GLU^葡萄糖^L||6.6|mmol/L|3.9-6.1|H|||C|||20261101090000\r").encode()
    acks = send(engine, first, correction)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    docs = [engine.ingestor.messages.get(message_id("FNXRMYY", c)) for c in ("W1", "W2")]
    assert all(d is not None for d in docs)
    (report_ref,) = [r for r in docs[1]["resources"] if r.startswith("DiagnosticReport/")]
    report = fhir.get(f"/fhir/{report_ref}").json()
    assert report["status"] == "corrected"
    listed = {r["reference"] for r in report["result"]}
    first_results = {r for r in docs[0]["resources"] if r.startswith("Observation/")}
    assert len(first_results) == 2 and listed == first_results
    values = {fhir.get(f"/fhir/{ref}").json()["code"]["coding"][0]["code"]:
              fhir.get(f"/fhir/{ref}").json()["valueQuantity"]["value"] for ref in listed}
    assert values == {"CREA": 78, "GLU": 6.6}
