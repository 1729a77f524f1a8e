"""A thinner message never erases what an earlier one stated, for lists of kinds and for values
that repeat (merge11).

Found in the merge rules: names, phones and addresses followed "the incoming list replaces" for the
feeds, so an ADT^A08 that sent only the Chinese name dropped the stored pinyin name, and a PID-13
home phone alone dropped PID-14's work phone. They now combine by kind (``by-key``): the incoming
entries replace the stored ones of their kind (name: use + how it is written, Chinese characters
or pinyin; telecom: system + use; address: use + type + how it is written), the other kinds stay.
And an Observation whose OBX-5 repeated (the further values are components with the result's
code) kept the earlier message's extra values as stale components when a later message sent one
value: components now follow the value (``follows: value[x]``).

Real bytes over MLLP into the real store, read back through ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def adt(control: str, event: str, pid5: str, pid13: str, pid14: str = "", pid11: str = "") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{event}|20261101090000\r"
        f"PID|1||ZY11001^^^FNXRMYY^MR||{pid5}||19850412|M|||{pid11}||{pid13}|{pid14}\r"
        "PV1|1|O\r"
    ).encode()


def stored(engine: Engine, fhir: TestClient, control: str, rtype: str) -> dict:  # noqa: F811
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith(rtype + "/")]
    response = fhir.get(f"/fhir/{ref}")
    assert response.status_code == 200
    return response.json()


CHINESE = {"use": "official", "family": "王", "given": ["建国"], "text": "王建国"}
PINYIN = {"use": "official", "family": "WANG", "given": ["JIANGUO"]}


def test_a_registration_with_only_the_chinese_name_keeps_the_pinyin(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine,
                adt("K1", "A01", "王^建国^^^^^L~WANG^JIANGUO^^^^^L", "^PRN^PH^^^^051288001",
                    "^WPN^PH^^^^051288002", "幸福路18号^^阜宁县^江苏省^224400^CHN^H"),
                adt("K2", "A08", "王^建国^^^^^L", "^PRN^PH^^^^051288009"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = stored(engine, fhir, "K2", "Patient")
    assert patient["name"] == [CHINESE, PINYIN]
    # the new home phone replaced the old one; the work phone PID-14 stated earlier stands
    assert patient["telecom"] == [{"system": "phone", "value": "051288009", "use": "home"},
                                  {"system": "phone", "value": "051288002", "use": "work"}]
    assert patient["address"][0]["city"] == "阜宁县"

    # a renamed patient: the new Chinese name replaces the old one of its kind, the pinyin stays
    # until the registration states a new one
    (ack,) = send(engine, adt("K3", "A08", "王^建军^^^^^L", ""))
    assert ack_code_of(ack) == "AA"
    assert stored(engine, fhir, "K3", "Patient")["name"] == [
        {**CHINESE, "given": ["建军"], "text": "王建军"}, PINYIN]
    (ack,) = send(engine, adt("K4", "A08", "WANG^JIANJUN^^^^^L", ""))
    assert stored(engine, fhir, "K4", "Patient")["name"] == [
        {**CHINESE, "given": ["建军"], "text": "王建军"}, {**PINYIN, "given": ["JIANJUN"]}]


def result(control: str, obx5: str, hour: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{hour}1500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        "PID|1||M0011^^^FNXRMYY^MR||张^三||19800101|M\r"
        "OBR|1|ORD-K|LAB-K|BT^血型^L|||20261101083000|||||||20261101083500|BLD||||||||20261101091000|||F\r"
        f"OBX|1|CWE|ABO^血型^L||{obx5}||||||F|||20261101090000\r"
    ).encode()


def test_a_value_that_stops_repeating_leaves_no_stale_component(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first, corrected, thinner = send(engine, result("R1", "A^A型^L~RH+^Rh阳性^L", "09"),
                                     result("R2", "B^B型^L", "10"), result("R3", "", "11"))
    assert [ack_code_of(a) for a in (first, corrected, thinner)] == ["AA", "AA", "AA"]
    obs = stored(engine, fhir, "R2", "Observation")
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "B"
    assert "component" not in obs  # the earlier message's second value is not the corrected result's
    # a resend without the value states nothing about it: the value stands
    obs = stored(engine, fhir, "R3", "Observation")
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "B" and "component" not in obs
