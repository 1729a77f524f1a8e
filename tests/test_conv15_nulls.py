"""HL7's explicit null ``""`` in the PID and PD1 fields that deleted nothing (conv15).

HL7 v2.5.1 2.5.3: a field sent as ``""`` deletes the receiver's value, an empty field changes
nothing. These fields' ``""`` was read as empty, so the stored value stood:
- PID-40 (v2.7+: every telecommunication address of the patient) ``""``: all stored numbers and
  addresses but those the message states again (PID-13/14 in the same message);
- PID-30 (death indicator) ``""``: ``deceasedBoolean`` (a PID-29 date stays: convfix15);
- PID-24 (multiple birth indicator) ``""``: the boolean; PID-25 (birth order) the integer (convfix15);
- PID-6 (mother's maiden name), PID-17 (religion), PID-22 (ethnic group): their extensions only;
- PD1-4 (primary care provider) ``""``: ``generalPractitioner``.
Real bytes over MLLP into the real store, read back through ``/fhir``; each failed on 37bca6e.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

RELIGION = "http://hl7.org/fhir/StructureDefinition/patient-religion"
ETHNIC = "urn:huren:StructureDefinition:patient-ethnic-group"
MAIDEN = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"


def adt(control: str, mrn: str, fields: dict[int, str], pd1: str = "") -> bytes:
    """An ADT (A01, then A08s) for ``mrn`` with the given PID fields (v2.7: PID-40 exists)."""
    pid = {1: "1", 3: f"{mrn}^^^FNXRMYY^MR", 5: "王^建国^^^^^L", 7: "198504120830", 8: "M", **fields}
    event = "A01" if control.endswith("1") else "A08"
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^ADT_A01|{control}|P|2.7\r"
            f"EVN|{event}|20261101090000\r"
            "PID|" + "|".join(pid.get(i, "") for i in range(1, max(pid) + 1)) + "\r"
            + (f"PD1||||{pd1}\r" if pd1 else "") + "PV1|1|O\r").encode()


def patient(fhir: TestClient, mrn: str) -> dict[str, Any]:  # noqa: F811
    response = fhir.get("/fhir/Patient", params={"identifier": mrn})
    assert response.status_code == 200
    (found,) = [e["resource"] for e in response.json()["entry"]]
    return found


def test_pid40_null_deletes_every_number_not_stated_again(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    numbers = "^PRN^PH^^^^051288001~^WPN^PH^^^^051288002~^PRN^CP^^^^13900000001~^NET^Internet^w@example.cn"
    acks = send(engine, adt("T1", "ZY15T", {40: numbers}),
                adt("T2", "ZY15T", {}),  # PID-40 empty: no change
                adt("T3", "ZY15T", {13: "^PRN^CP^^^^13900000001", 40: '""'}))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    found = patient(fhir, "ZY15T")
    assert found["telecom"] == [{"system": "phone", "value": "13900000001", "use": "mobile"}]
    assert engine.identity.phones([found["id"]]) == ["13900000001"]  # no sign-in code to a deleted number
    (ack,) = send(engine, adt("T4", "ZY15T", {40: '""'}))
    assert ack_code_of(ack) == "AA"
    assert "telecom" not in patient(fhir, "ZY15T")


def test_a_null_indicator_deletes_what_it_indicates(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("D1", "ZY15D", {29: "20261101", 30: "Y", 24: "Y", 25: "2"}),
                adt("E1", "ZY15E", {30: "Y", 24: "Y"}),
                adt("D2", "ZY15D", {30: '""', 24: '""'}),
                adt("E2", "ZY15E", {30: '""', 25: '""'}))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    # an indicator's "" deletes the indicator, not the date or birth order the other field stated (convfix15)
    dead_twin = patient(fhir, "ZY15D")
    assert {k: v for k, v in dead_twin.items() if k.startswith(("deceased", "multipleBirth"))} == {
        "deceasedDateTime": "2026-11-01", "multipleBirthInteger": 2}
    # PID-25 "" deletes the birth order only: PID-24's indicator, stated by the first message, stays
    assert {k: v for k, v in patient(fhir, "ZY15E").items()
            if k.startswith(("deceased", "multipleBirth"))} == {"multipleBirthBoolean": True}
    # the date of death sent again beside PID-30 "": that statement stands
    (ack,) = send(engine, adt("D3", "ZY15D", {29: "20261102", 30: '""'}))
    assert ack_code_of(ack) == "AA"
    assert patient(fhir, "ZY15D")["deceasedDateTime"] == "2026-11-02"


def test_a_null_field_deletes_its_own_extension_and_primary_care_provider(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("X1", "ZY15X", {6: "李", 17: "BUD^佛教^L", 22: "01^汉族^GB3304"},
                            pd1="D001^张^医生"),
                adt("X2", "ZY15X", {17: '""'}, pd1="D001^张^医生"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    found = patient(fhir, "ZY15X")
    assert [e["url"] for e in found["extension"]] == [MAIDEN, ETHNIC]
    # the birth time is the birth date's extension (R4's context for it; convfid27)
    assert [e["url"] for e in found["_birthDate"]["extension"]] == [BIRTH_TIME]
    assert len(found["generalPractitioner"]) == 1
    (ack,) = send(engine, adt("X3", "ZY15X", {6: '""', 22: '""'}, pd1='""'))
    assert ack_code_of(ack) == "AA"
    found = patient(fhir, "ZY15X")
    assert "extension" not in found
    # PID-7's birth time is not PID-6's (nor PID-22's)
    assert [e["url"] for e in found["_birthDate"]["extension"]] == [BIRTH_TIME]
    assert "generalPractitioner" not in found
