"""What a result or registration states, read back through ``/fhir`` after it went over MLLP
(twenty-seventh round, convfid27).

Each message is this round's own, written for a county hospital (阜宁县人民医院, FNXRMYY); the shapes
follow HL7 v2.5.1 chapters 3 and 7 and the HL7 v2-to-FHIR IG's segment maps (OBX → Observation, PID →
Patient). One engine serves the whole file: every test uses its own patient, order and control ids.

Found and mended: a correction that did not repeat OBX-16 erased the observer the first result
named (``merge.yaml`` Observation.performer by the type of resource each entry refers to); valid UCUM
units LIS feeds write as they stand (``mg``, ``mIU/L``, eGFR's ``mL/min/1.73m2``) were kept under the
sender's local unit system (``codes/units.yaml``); PID-7's time of birth was an extension of the
Patient, not of its birthDate (``pid_patient.yaml``); an A08 re-sending PV1-7 alone erased the visit's
referring, consulting and admitting doctors (``merge.yaml`` Encounter.participant by type,
``pv1_encounter.yaml``'s ``""``); ORC-4 (placer group number) was dropped (``servicerequest.yaml``
requisition, ``orc_medicationrequest.yaml`` groupIdentifier). Found and left: the tests at the end, strict
xfails until the twenty-eighth round (convleft28) mended them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_ingest_durability import exchange, listening

UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    from engine.api.app import create_app

    data = Path(tmp_path_factory.mktemp("convfid27")) / "var"
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as engine, TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
        yield engine, client


def send(engine: Engine, *messages: str) -> list[bytes]:
    async def run() -> list[bytes]:
        async with listening(engine) as server:
            return await exchange(server.port, *(m.encode() for m in messages))

    acks = asyncio.run(run())
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), acks
    return acks


def stored(served: tuple[Engine, TestClient], control: str, rtype: str) -> list[tuple[dict[str, Any], str]]:
    """The resources of ``rtype`` the message wrote, as ``/fhir`` serves them: (parsed, text)."""
    engine, client = served
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    out = []
    for ref in sorted(r for r in doc["resources"] if r.startswith(rtype + "/")):
        response = client.get(f"/fhir/{ref}")
        assert response.status_code == 200
        out.append((response.json(), response.text))
    return out


def result(control: str, mrn: str, *obx: str, minute: str = "15") -> str:
    # MSH-7 of 14 digits: 11:50, 12:00, 12:50 for ``minute`` 15, 20, 25 (it had 13, no readable time,
    # which msgfix33 found when a correction's MSH-7 came to be compared: a fixture defect)
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|202611011{minute}000||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{mrn}^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"OBR|1|ORD-{mrn}|LAB-{mrn}|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD"
            "||||||||20261101091000|||F\r"
            + "".join(line + "\r" for line in obx))


def by_code(found: list[tuple[dict[str, Any], str]], code: str) -> tuple[dict[str, Any], str]:
    return next(o for o in found if o[0]["code"]["coding"][0]["code"] == code)


def refers(entries: list[dict[str, Any]], rtype: str) -> list[str]:
    return [e.get("display", "") for e in entries if e["reference"].startswith(rtype + "/")]


# --- mended ----------------------------------------------------------------------------------


def test_a_correction_without_obx16_keeps_the_observer(served: tuple[Engine, TestClient]) -> None:
    """HIGH (value lost on an update). A correction (OBX-11 C) that did not repeat OBX-16 stated the
    performing organisation alone, and the performer list was replaced whole: the doctor the first
    result named was gone. A correction naming another observer replaces the first."""
    engine, _ = served
    send(engine, result("PF1", "PF01", "OBX|1|NM|CREA^肌酐^L||150|umol/L|57-111|H|||F|||20261101090000||D01^王^明"))
    send(engine, result("PF2", "PF01", "OBX|1|NM|CREA^肌酐^L||80|umol/L|57-111|N|||C|||20261101090000", minute="20"))
    ((obs, _),) = stored(served, "PF2", "Observation")
    assert obs["status"] == "corrected" and obs["valueQuantity"]["value"] == 80
    assert refers(obs["performer"], "Practitioner") == ["王明"]  # was [] (erased)
    assert refers(obs["performer"], "Organization") == ["阜宁县人民医院"]
    assert obs["performer"][0]["reference"].startswith("Organization/")  # the performing organisation first

    send(engine, result("PF3", "PF01", "OBX|1|NM|CREA^肌酐^L||81|umol/L|57-111|N|||C|||20261101090000||D02^李^医生",
                        minute="25"))
    ((obs, _),) = stored(served, "PF3", "Observation")
    assert refers(obs["performer"], "Practitioner") == ["李医生"]  # the new observer replaces the first


def test_valid_ucum_units_are_read_as_ucum(served: tuple[Engine, TestClient]) -> None:
    """MED (wrong system). OBX-6 ``mg``, ``mIU/L`` and ``mL/min/1.73m2`` (eGFR) are UCUM or UCUM's
    spelling in every LIS feed, and were kept as codes of the sender's local unit system
    (``urn:huren:unit:FNXRMYY``): a quantity no reader can compare."""
    engine, _ = served
    send(engine, result("PU1", "PU01",
                        "OBX|1|NM|TSH^促甲状腺激素^L||2.10|mIU/L|0.27-4.2||||F|||20261101090000",
                        "OBX|2|NM|EGFR^估算肾小球滤过率^L||92|mL/min/1.73m2|>=90||||F|||20261101090000",
                        "OBX|3|NM|UPRO24^24小时尿蛋白^L||150|mg|||||F|||20261101090000"))
    found = stored(served, "PU1", "Observation")
    tsh, text = by_code(found, "TSH")
    assert tsh["valueQuantity"] == {"value": 2.1, "unit": "mIU/L", "system": UCUM, "code": "m[IU]/L"}
    assert '"value":2.10' in text  # the sender's precision
    egfr, _ = by_code(found, "EGFR")
    assert egfr["valueQuantity"] == {"value": 92, "unit": "mL/min/1.73m2", "system": UCUM, "code": "mL/min/{1.73_m2}"}
    assert egfr["referenceRange"][0]["low"]["code"] == "mL/min/{1.73_m2}"
    protein, _ = by_code(found, "UPRO24")
    assert protein["valueQuantity"] == {"value": 150, "unit": "mg", "system": UCUM, "code": "mg"}


def test_the_birth_time_is_an_extension_of_the_birth_date(served: tuple[Engine, TestClient]) -> None:
    """MED (wrong place). PID-7's time of day was the patient-birthTime extension on Patient.extension;
    R4 defines that extension on Patient.birthDate (``_birthDate.extension``): a reader looking where
    R4 puts it found none."""
    engine, client = served
    send(engine, "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091500||ADT^A04^ADT_A01|PB1|P|2.5.1\r"
                 "EVN|A04|20261101091500\rPID|1||PB01^^^FNXRMYY^MR||王^小宝||20261028083000|M\r"
                 "PV1|1|O|MZ01^^^FNXRMYY\r")
    ((patient, _),) = stored(served, "PB1", "Patient")
    assert patient["birthDate"] == "2026-10-28"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "2026-10-28T08:30:00+08:00"

    # stated with its date: PID-7 empty keeps both, a corrected day sent as a date alone keeps no time
    # of the day before beside it
    def update(control: str, pid7: str) -> str:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101092000||ADT^A08^ADT_A01|{control}|P|2.5.1\r"
                f"EVN|A08|20261101092000\rPID|1||PB01^^^FNXRMYY^MR||王^小宝||{pid7}|M\rPV1|1|O|MZ01^^^FNXRMYY\r")

    send(engine, update("PB2", ""))
    ((patient, _),) = stored(served, "PB2", "Patient")
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "2026-10-28T08:30:00+08:00"
    send(engine, update("PB3", "20261027"))
    ((patient, _),) = stored(served, "PB3", "Patient")
    assert patient["birthDate"] == "2026-10-27" and "_birthDate" not in patient
def visit(control: str, event: str, pv1_7_9: str, pv1_17: str = "", minute: str = "15") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|2026110109{minute}00\r"
            "PID|1||PE01^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"PV1|1|I|W01^101^1^FNXRMYY||||{pv1_7_9}|MED||||7|||{pv1_17}||VPE01^^^FNXRMYY^VN\r")


def test_a_thinner_a08_keeps_the_visits_other_doctors(served: tuple[Engine, TestClient]) -> None:
    """HIGH (values lost on an update). An A08 re-sending PV1-7 (attending) alone replaced
    Encounter.participant whole: the referring (PV1-8), consulting (PV1-9) and admitting (PV1-17)
    doctors the A01 named were gone. An empty field is no change (v2 ch. 2); a new attending
    replaces the stored one; ``""`` deletes that field's kind alone."""
    engine, _ = served
    send(engine, visit("PE1", "A01", "D01^王^明|D02^李^四|D03^赵^五", "D04^钱^六"))
    send(engine, visit("PE2", "A08", "D01^王^明||", minute="20"))
    ((encounter, _),) = stored(served, "PE2", "Encounter")
    roles = {p["type"][0]["coding"][0]["code"]: p["individual"]["display"] for p in encounter["participant"]}
    assert roles == {"ATND": "王明", "REF": "李四", "CON": "赵五", "ADM": "钱六"}  # was {"ATND": "王明"}

    send(engine, visit("PE3", "A08", "D05^孙^七||", minute="25"))
    ((encounter, _),) = stored(served, "PE3", "Encounter")
    attending = [p["individual"]["display"] for p in encounter["participant"]
                 if p["type"][0]["coding"][0]["code"] == "ATND"]
    assert attending == ["孙七"] and len(encounter["participant"]) == 4

    # HL7's explicit null: PV1-8 "" deletes the referring doctor alone (the message's record names it)
    send(engine, visit("PE4", "A08", 'D05^孙^七|""|', minute="30"))
    ((encounter, _),) = stored(served, "PE4", "Encounter")
    assert sorted(p["type"][0]["coding"][0]["code"] for p in encounter["participant"]) == ["ADM", "ATND", "CON"]


def test_the_placer_group_number_is_kept(served: tuple[Engine, TestClient]) -> None:
    """HIGH (value lost). ORC-4 (placer group number: the request form two tests or two drugs were
    ordered on, a HIS's 申请单号) was dropped; the IG maps it to ServiceRequest.requisition and
    MedicationRequest.groupIdentifier."""
    engine, _ = served
    head = "PID|1||PG01^^^FNXRMYY^MR||张^三||19800101|M\rPV1|1|O|MZ01^^^FNXRMYY\r"
    send(engine,
         "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORM^O01^ORM_O01|PG1|P|2.5.1\r" + head
         + "ORC|NW|PG-ORD-1^HIS||SQ-88^HIS|SC\rOBR|1|PG-ORD-1^HIS||SGN^肾功能^L|||20261101083000\r"
         + "ORC|NW|PG-ORD-2^HIS||SQ-88^HIS|SC\rOBR|2|PG-ORD-2^HIS||GLU^血糖^L|||20261101083000\r",
         "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091600||RDE^O11^RDE_O11|PG2|P|2.5.1\r" + head
         + "ORC|NW|PG-RX-1^HIS||CF-7^HIS|IP||||20261101084000|||D01^王^明\r"
         "RXE|^BID&0800,2000^^20261101^20261108|CN-AMOX^阿莫西林胶囊^L|0.5||g^克^UCUM|CAP^胶囊\r"
         "RXR|PO^口服^HL70162\r")
    pgn = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PGN"}]}
    requests = stored(served, "PG1", "ServiceRequest")
    assert [r["requisition"] for r, _ in requests] == [{"value": "SQ-88", "system": "urn:huren:id:HIS", "type": pgn}] * 2
    ((prescription, _),) = stored(served, "PG2", "MedicationRequest")
    assert prescription["groupIdentifier"] == {"value": "CF-7", "system": "urn:huren:id:HIS", "type": pgn}


# --- probed and found right (guards) ----------------------------------------------------------


def test_numbers_comparators_and_dates_read_back_as_sent(served: tuple[Engine, TestClient]) -> None:
    """NM keeps its text where FHIR's decimal grammar allows it ("7.10", "-0.0"; "+5" and ".5" are
    rewritten to the grammar's 5 and 0.5, the same numbers); SN keeps its comparator and ratio; a DT
    of a year stays a year, a DTM keeps its own offset and fraction."""
    engine, _ = served
    send(engine, result("PN1", "PN01",
                        "OBX|1|NM|A^甲^L||7.10|mmol/L|||||F|||20261101090000",
                        "OBX|2|NM|B^乙^L||-0.0|mmol/L|||||F|||20261101090000",
                        "OBX|3|NM|C^丙^L||+5|mmol/L|||||F|||20261101090000",
                        "OBX|4|SN|D^丁^L||>=^10|mg/L|||||F|||20261101090000",
                        "OBX|5|SN|E^戊^L||<^1^:^40||||||F|||20261101090000",
                        "OBX|6|DT|F^己^L||2026||||||F|||20261101090000",
                        "OBX|7|DTM|G^庚^L||20261101123045.12+0100||||||F|||20261101083000+0000"))
    found = stored(served, "PN1", "Observation")
    assert '"value":7.10' in by_code(found, "A")[1]
    assert '"value":-0.0' in by_code(found, "B")[1]
    assert by_code(found, "C")[0]["valueQuantity"]["value"] == 5
    assert by_code(found, "D")[0]["valueQuantity"]["comparator"] == ">="
    assert by_code(found, "E")[0]["valueRatio"] == {"numerator": {"value": 1, "comparator": "<"},
                                                     "denominator": {"value": 40}}
    assert by_code(found, "F")[0]["valueDateTime"] == "2026"
    timed = by_code(found, "G")[0]
    assert (timed["valueDateTime"], timed["effectiveDateTime"]) == ("2026-11-01T12:30:45.12+01:00",
                                                                    "2026-11-01T08:30:00+00:00")


# --- found and left, mended by convleft28 -----------------------------------------------------------


def test_the_performing_organisation_of_obx23_is_kept(served: tuple[Engine, TestClient]) -> None:
    """HIGH (value lost): the IG maps OBX-23 to Observation.performer(Organization)."""
    engine, _ = served
    send(engine, result("PO1", "PO01", "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111||||F|||20261101090000"
                        "|||||||||阜宁县妇幼保健院^^^^^^XX^^^FNYGT|文化路1号^^阜宁^江苏"))
    ((obs, _),) = stored(served, "PO1", "Observation")
    assert refers(obs["performer"], "Organization") == ["阜宁县妇幼保健院"]  # it stands for the sender
    assert obs["performer"][0]["identifier"] == {"system": "urn:huren:performing-organization",
                                                 "value": "FNXRMYY|FNYGT"}  # no member: QC unknown
    ((report, _),) = stored(served, "PO1", "DiagnosticReport")
    assert refers(report["performer"], "Organization") == ["阜宁县妇幼保健院"]


def test_the_senders_words_for_an_interpretation_are_kept(served: tuple[Engine, TestClient]) -> None:
    """LOW (text lost)."""
    engine, _ = served
    send(engine, result("PI1", "PI01", "OBX|1|NM|CREA^肌酐^L||150|umol/L|57-111|H^偏高^HL70078|||F|||20261101090000"))
    ((obs, _),) = stored(served, "PI1", "Observation")
    (interp,) = obs["interpretation"]
    assert interp["coding"][0]["code"] == "H" and interp.get("text") == "偏高"


def test_two_local_coding_systems_stay_apart(served: tuple[Engine, TestClient]) -> None:
    """MED (codes of two systems made one)."""
    engine, _ = served
    send(engine, result("PL1", "PL01",
                        "OBX|1|CWE|ORG^培养结果^L||01^大肠埃希菌^99BAC||||||F|||20261101090000",
                        "OBX|2|CWE|ABO^血型^L||01^A型^99ABO||||||F|||20261101090000"))
    found = stored(served, "PL1", "Observation")
    systems = {by_code(found, c)[0]["valueCodeableConcept"]["coding"][0]["system"] for c in ("ORG", "ABO")}
    assert len(systems) == 2, systems


def test_a_coding_systems_version_is_kept(served: tuple[Engine, TestClient]) -> None:
    """LOW (value lost): the IG maps CWE-7 to Coding.version."""
    engine, _ = served
    send(engine, result("PV1", "PV01", "OBX|1|CWE|ORG^培养结果^L||3092008^金黄色葡萄球菌^SCT^^^^20250301"
                        "||||||F|||20261101090000"))
    ((obs, _),) = stored(served, "PV1", "Observation")
    assert obs["valueCodeableConcept"]["coding"][0].get("version") == "20250301"




def test_a_thinner_a08_keeps_the_prior_bed(served: tuple[Engine, TestClient]) -> None:
    """MED (history lost on an update): merge.yaml location history [completed] (convleft28)."""
    engine, _ = served

    def adt(control: str, event: str, pv1_3: str, pv1_6: str, minute: str) -> str:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
                f"EVN|{event}|2026110109{minute}00\rPID|1||PL01^^^FNXRMYY^MR||张^三||19800101|M\r"
                f"PV1|1|I|{pv1_3}|||{pv1_6}|D01^王^明||||||||||||VPL01^^^FNXRMYY^VN\r")

    send(engine, adt("PL2", "A01", "W01^101^1^FNXRMYY", "", "15"),
         adt("PL3", "A02", "W01^102^1^FNXRMYY", "W01^101^1^FNXRMYY", "20"),
         adt("PL4", "A08", "W01^102^1^FNXRMYY", "", "25"))
    ((encounter, _),) = stored(served, "PL4", "Encounter")
    assert sorted((e["location"]["display"], e["status"]) for e in encounter["location"]) == [
        ("W01 101房 1床", "completed"), ("W01 102房 1床", "active")]
    # an A08 that moves the patient (PV1-3 another bed, no PV1-6): one occupied bed, the prior kept
    send(engine, adt("PL5", "A08", "W01^103^1^FNXRMYY", "", "30"))
    ((encounter, _),) = stored(served, "PL5", "Encounter")
    assert sorted((e["location"]["display"], e["status"]) for e in encounter["location"]) == [
        ("W01 101房 1床", "completed"), ("W01 103房 1床", "active")]
    # back to the prior bed: stated active, no longer kept as completed beside it
    send(engine, adt("PL6", "A08", "W01^101^1^FNXRMYY", "", "35"))
    ((encounter, _),) = stored(served, "PL6", "Encounter")
    assert [(e["location"]["display"], e["status"]) for e in encounter["location"]] == [("W01 101房 1床", "active")]
