"""What the HL7 v2-to-FHIR IG maps and huren lost or put elsewhere (hl7probe17), each sent over MLLP
and read back through ``/fhir``.

- OBR-8 (observation end date/time): a 24-hour urine collected from OBR-7 to OBR-8 was stored as a
  report dated at its start alone; the IG makes the two ``DiagnosticReport.effectivePeriod`` ("IF OBR-8
  VALUED"). A second group of the same report without OBR-8 no longer adds an ``effectiveDateTime``
  beside that period (R4 allows one ``effective[x]``). A v2.3 specimen named by OBR-15 is collected
  over that period too (``collectedPeriod``), no longer at its start.
- OBX-2 ``DR`` and ``NR``: a date/time range and a numeric range were kept as text (``"a^b"``) with a
  warning; the IG maps them to ``valuePeriod`` and ``valueRange``.
- OBX-11 ``X`` (results cannot be obtained) and ``N`` (not asked) on a result without a value: stored
  with no reason at all; the IG gives ``dataAbsentReason`` ``cannot-be-obtained`` and ``not-asked``.
- OBR-32 (principal result interpreter, NDL): the reporting doctor was kept only on an ImagingStudy and
  on a remote-reading report; the IG makes it ``DiagnosticReport.resultsInterpreter``. v2.7+ withdrew
  OBR-32: an order group's PRT with PRT-4 ``PRI`` says it there, and was only the order's performer.
- TXA-18 (document confidentiality) and TXA-16 (unique document file name) were dropped; the IG maps
  them to ``DocumentReference.securityLabel`` and ``identifier``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields

MSH = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{c}|P|2.5.1\r"
PID = "PID|1||ZY17P^^^FNXRMYY^MR||王^建国||19850412|M\r"


def obr(n: int, start: str, end: str, source: str = "") -> str:
    """OBR-1, 2, 3, 4, 7, 8, 15 (specimen source), 22 (issued) and 25 (F)."""
    return (f"OBR|{n}|ORD-U|LAB-U|UPRO24^24小时尿蛋白^L|||{start}|{end}" + "|" * 7 + source + "|" * 7
            + "20261201112900|||F\r")


def test_an_observation_end_makes_the_report_a_period(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    one = (MSH.format(c="P1") + PID + obr(1, "20261130080000", "20261201080000")
           + "OBX|1|NM|UPRO^尿蛋白^L||0.15|g/24h|||||F\r"
           + obr(2, "20261130090000", "") + "OBX|1|NM|UVOL^尿量^L||1500|mL|||||F\r").encode()
    (ack,) = send(engine, one)
    assert ack_code_of(ack) == "AA", ack
    (report,) = written(engine, fhir, "P1", "DiagnosticReport")
    assert report["effectivePeriod"] == {"start": "2026-11-30T08:00:00+08:00", "end": "2026-12-01T08:00:00+08:00"}
    assert "effectiveDateTime" not in report
    # without OBR-8 the report is dated by OBR-7 alone, as before
    (ack,) = send(engine, (MSH.format(c="P2") + PID + obr(1, "20261130080000", "").replace("-U|", "-V|")
                           + "OBX|1|NM|UPRO^尿蛋白^L||0.15|g/24h|||||F\r").encode())
    (report,) = written(engine, fhir, "P2", "DiagnosticReport")
    assert report["effectiveDateTime"] == "2026-11-30T08:00:00+08:00" and "effectivePeriod" not in report


def test_date_and_numeric_ranges_are_periods_and_ranges(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    message = (MSH.format(c="R1") + PID + obr(1, "20261201080000", "").replace("-U|", "-R|")
               + "OBX|1|DR|ABX^抗生素使用期^L||20261125080000^20261128^||||||F\r"
               + "OBX|2|NR|TGT^目标范围^L||3.90^6.10|mmol/L|||||F\r"
               + "OBX|3|NR|OPEN^下限^L||^5.0|mmol/L|||||F\r").encode()
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA", ack
    assert not [e for e in err_fields(ack) if "kept as text" in e[-1]], ack
    by_code = {o["code"]["coding"][0]["code"]: o for o in written(engine, fhir, "R1", "Observation")}
    assert by_code["ABX"]["valuePeriod"] == {"start": "2026-11-25T08:00:00+08:00", "end": "2026-11-28"}
    unit = {"unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    assert by_code["TGT"]["valueRange"] == {"low": {"value": 3.90, **unit}, "high": {"value": 6.10, **unit}}
    assert by_code["OPEN"]["valueRange"] == {"high": {"value": 5.0, **unit}}
    assert "valueString" not in by_code["TGT"]


def test_a_range_keeps_its_decimals_as_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, (MSH.format(c="R2") + PID + obr(1, "20261201080000", "").replace("-U|", "-D|")
                           + "OBX|1|NR|TGT^目标范围^L||3.90^6.10|mmol/L|||||F\r").encode())
    assert ack_code_of(ack) == "AA", ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "R2"))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    body = fhir.get(f"/fhir/{ref}").text
    assert '"low":{"value":3.90,' in body.replace(" ", "") and '"value":6.10,' in body.replace(" ", "")


def document(control: str, confidentiality: str) -> bytes:
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^T02^MDM_T02|{control}|P|2.5.1\r"
            "EVN|T02|20261201091500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明||||DOC-{control}|||ds_{control}.rtf|AU"
              f"|{confidentiality}\r"
            + "OBX|1|TX|18842-5^出院小结^LN||第一段~第二段||||||F\r").encode()


def test_a_document_keeps_its_confidentiality_and_file_name(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """TXA-18 (document confidentiality, table 0272) and TXA-16 (unique document file name) were
    dropped: a restricted discharge summary was stored with no security label."""
    acks = send(engine, document("D1", "R"), document("D2", "U"), document("D3", ""))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    (restricted,) = written(engine, fhir, "D1", "DocumentReference")
    confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    assert restricted["securityLabel"] == [{"coding": [{"system": confidentiality, "code": "R", "display": "restricted"}]}]
    assert {"system": "urn:huren:document-file:FNXRMYY", "value": "ds_D1.rtf"} in restricted["identifier"]  # hl7fix17: its sender's
    (usual,) = written(engine, fhir, "D2", "DocumentReference")
    assert usual["securityLabel"] == [{"coding": [{"system": confidentiality, "code": "N", "display": "normal"}]}]
    (unsaid,) = written(engine, fhir, "D3", "DocumentReference")
    assert "securityLabel" not in unsaid


def test_a_result_without_value_says_why_by_its_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    message = (MSH.format(c="X1") + PID + obr(1, "20261201080000", "").replace("-U|", "-X|")
               + "OBX|1|NM|HBA1C^糖化血红蛋白^L|||%|||||X\r"
               + "OBX|2|NM|GLU^葡萄糖^L|||mmol/L|||||N\r"
               + "OBX|3|NM|TG^甘油三酯^L|||mmol/L|||||F\r"
               + "OBX|4|NM|TC^总胆固醇^L|||mmol/L|||||D\r").encode()
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA", ack
    reasons = {o["code"]["coding"][0]["code"]: [c["code"] for c in (o.get("dataAbsentReason") or {}).get("coding", [])]
               for o in written(engine, fhir, "X1", "Observation")}
    assert reasons == {"HBA1C": ["cannot-be-obtained"], "GLU": ["not-asked"], "TG": ["unknown"], "TC": []}


def test_the_principal_result_interpreter_is_on_the_report(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    def report(control: str, interpreter: str, version: str = "2.5.1") -> bytes:
        return (MSH.format(c=control).replace("2.5.1", version) + PID
                + f"OBR|1|ORD-{control}|LAB-{control}|XCG^血常规^L|||20261201094500|||||||||||||||20261201112900|||F"
                  f"|||||||{interpreter}\r"
                + "OBX|1|NM|WBC^白细胞^L||5.10|10*9/L|3.50-9.50||||F|||20261201100000\r").encode()

    v28 = report("I3", "", "2.8").replace(b"\rOBX", "\rPRT||AD||PRI^Principal Result Interpreter^HL70443|D003^钱^伟"
                                                 "\rPRT||AD||TN^Technician^HL70443|T009^孙^技师\rOBX".encode())
    acks = send(engine, report("I1", "D003&钱&伟&&&&&&FNXRMYY"), report("I2", "D003^钱^伟", "2.3"), v28)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], acks
    (first,) = written(engine, fhir, "I1", "DiagnosticReport")
    (second,) = written(engine, fhir, "I2", "DiagnosticReport")
    (third,) = written(engine, fhir, "I3", "DiagnosticReport")
    (doctor,) = first["resultsInterpreter"]
    assert doctor["display"] == "钱伟"
    assert second["resultsInterpreter"] == [doctor] and third["resultsInterpreter"] == [doctor]  # one doctor
    practitioner = fhir.get(f"/fhir/{doctor['reference']}").json()
    assert practitioner["name"][0]["family"] == "钱" and practitioner["name"][0]["given"] == ["伟"]
    assert {"system": "urn:huren:practitioner:FNXRMYY", "value": "D003"} in practitioner["identifier"]


def test_a_timed_collection_is_the_specimen_s_period(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    message = (MSH.format(c="C1").replace("2.5.1", "2.3") + PID
               + obr(1, "20261130080000", "20261201080000", "UR&尿液").replace("-U|", "-C|")
               + "OBX|1|NM|UPRO^尿蛋白^L||0.15|g/24h|||||F\r").encode()
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA", ack
    (specimen,) = written(engine, fhir, "C1", "Specimen")
    assert specimen["collection"] == {"collectedPeriod": {"start": "2026-11-30T08:00:00+08:00",
                                                          "end": "2026-12-01T08:00:00+08:00"}}
