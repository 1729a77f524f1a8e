"""The review of hl7probe17's conversion changes, mended (hl7fix17); each case sent over MLLP, read via ``/fhir``.

- A site's ``hl7v2/vocabulary.yaml`` copied before the round replaced the shipped one whole: it lacks
  ``observation_absent_reason`` and ``document_confidentiality``, and an ORU with a result without a
  value (OBX-11 X) or an MDM with TXA-18 R was refused AE ("vocabulary table ... is missing"). The
  file is now laid over the shipped one table by table (``mappings.site``).
- An A01 arriving after its A03 stored ``in-progress`` beside the discharge time and disposition (the
  period and hospitalization combine part by part); an A11 on a discharged visit left it ``cancelled``
  with an end. A discharge's ``finished`` stands against later admission-side events; A11, like A13,
  takes the discharge back.
- OBX-2 DR ending before it starts was stored as a valuePeriod breaking R4 per-1, with a plain AA.
- TXA-16 (the file name) had no system and the feeds' union kept every name a document was ever sent
  under: a search by a name found a document that had since moved to another file.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7probe17_visit_parts import adt
from tests.test_ingest_durability import err_fields

SITE_C48F504 = Path(__file__).parent / "fixtures" / "site_c48f504"
PID = "PID|1||ZY17F^^^FNXRMYY^MR||王^建国||19850412|M\r"


def lab(control: str, obx: str, filler: str = "LAB-F") -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"OBR|1|ORD-F|{filler}|PANEL^检验^L|||20261201080000" + "|" * 17 + "F\r" + obx).encode()


def document(control: str, number: str, file_name: str, confidentiality: str = "", pid: str = PID) -> bytes:
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^T02^MDM_T02|{control}|P|2.5.1\r"
            "EVN|T02|20261201091500\r" + pid
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}||||{file_name}|AU"
              f"|{confidentiality}\r"
            + "OBX|1|TX|18842-5^出院小结^LN||第一段||||||F\r").encode()


def test_a_site_vocabulary_from_before_the_round_keeps_the_shipped_tables_it_does_not_name(
        settings: Settings) -> None:
    assert "observation_absent_reason:" not in (SITE_C48F504 / "hl7v2" / "vocabulary.yaml").read_text("utf-8")
    with Engine(settings.with_(site=SITE_C48F504)) as engine:
        acks = send(engine, lab("S1", "OBX|1|NM|X1^t^L||||||||X\r"), document("S2", "DOC-S2", "s2.rtf", "R"),
                    adt("S3", "A01", f44="20261130080000", f19="VS^^^FNXRMYY^VN"),
                    adt("S4", "A03", f45="20261201080000", f19="VS^^^FNXRMYY^VN"),
                    adt("S5", "A13", f19="VS^^^FNXRMYY^VN"))
        assert [ack_code_of(a) for a in acks] == ["AA"] * 5, acks
        with TestClient(create_app(engine)) as reader:
            reader.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
            (result,) = written(engine, reader, "S1", "Observation")
            assert result["dataAbsentReason"]["coding"][0]["code"] == "cannot-be-obtained"
            (doc,) = written(engine, reader, "S2", "DocumentReference")
            assert doc["securityLabel"][0]["coding"][0]["code"] == "R"
            (visit,) = written(engine, reader, "S5", "Encounter")  # the shipped encounter_undoes_by_event
            assert visit["status"] == "in-progress" and "end" not in visit["period"]


def test_an_admission_after_its_discharge_does_not_reopen_the_visit(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    visit = "VR^^^FNXRMYY^VN"
    acks = send(engine, adt("R1", "A03", f19=visit, f36="01^回家", f45="20261201080000"),
                adt("R2", "A01", f19=visit, f14="7^急诊入院", f44="20261130080000"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert any("Encounter.status" in e[-1] and "stands" in e[-1] for e in err_fields(acks[1])), acks[1]
    (stay,) = written(engine, fhir, "R2", "Encounter")
    assert stay["status"] == "finished"
    assert stay["period"] == {"start": "2026-11-30T08:00:00+08:00", "end": "2026-12-01T08:00:00+08:00"}
    assert stay["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"
    # a transfer (A02) after the discharge: the visit stays finished too
    (ack,) = send(engine, adt("R3", "A02", f19=visit, f3="外科^201^1"))
    assert ack_code_of(ack) == "AA", ack
    assert written(engine, fhir, "R3", "Encounter")[0]["status"] == "finished"
    # a result naming the visit (its Encounter "unknown": the placeholder) leaves it, with no warning
    # (the visit's own patient, ZY17V: another record under the visit number is refused, visit20)
    oru = lab("R5", "OBX|1|NM|X1^t^L||7||||||F\r").replace(b"\rOBR|", b"\rPV1|1|I" + b"|" * 17 + b"VR^^^FNXRMYY^VN\rOBR|")
    oru = oru.replace(b"ZY17F^", b"ZY17V^")
    (ack,) = send(engine, oru)
    assert ack_code_of(ack) == "AA" and not any("Encounter" in e[-1] for e in err_fields(ack)), ack
    assert written(engine, fhir, "R5", "Encounter")[0]["status"] == "finished"
    # a cancelled admission takes the discharge back with it: no cancelled visit with an end
    (ack,) = send(engine, adt("R4", "A11", f19=visit))
    assert ack_code_of(ack) == "AA", ack
    (stay,) = written(engine, fhir, "R4", "Encounter")
    assert stay["status"] == "cancelled"
    assert stay["period"] == {"start": "2026-11-30T08:00:00+08:00"}
    assert "dischargeDisposition" not in stay["hospitalization"]


def test_a_range_ending_before_it_starts_is_kept_as_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, lab("D1", "OBX|1|DR|ABX^抗生素使用期^L||20261128^20261125||||||F\r"
                                    "OBX|2|DR|DAY^同日^L||20261128^20261128060000||||||F\r"
                                    "OBX|3|NR|TGT^目标范围^L||6.10^3.90|mmol/L|||||F\r"
                                    "OBX|4|SN|SPAN^区间^L||^10^-^5|mmol/L|||||F\r"))
    assert ack_code_of(ack) == "AA", ack
    warned = {e[2]: e[-1] for e in err_fields(ack)}
    assert "before it starts" in warned["OBX^1^5"] and "above its high" in warned["OBX^3^5"], ack
    assert "above its high" in warned["OBX^4^5"], ack
    by_code = {o["code"]["coding"][0]["code"]: o for o in written(engine, fhir, "D1", "Observation")}
    assert by_code["ABX"]["valueString"] == "20261128^20261125" and "valuePeriod" not in by_code["ABX"]
    assert by_code["TGT"]["valueString"] == "6.10^3.90" and "valueRange" not in by_code["TGT"]
    assert by_code["SPAN"]["valueString"] == "^10^-^5" and "valueRange" not in by_code["SPAN"]
    # a day and a time on it are not reversed, whatever the offsets
    assert by_code["DAY"]["valuePeriod"] == {"start": "2026-11-28", "end": "2026-11-28T06:00:00+08:00"}


def test_a_document_s_file_name_is_its_sender_s_and_a_new_one_replaces_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    other = "PID|1||ZY17G^^^FNXRMYY^MR||李^四||19900101|F\r"
    acks = send(engine, document("F1", "DOC-F1", "report.pdf"), document("F2", "DOC-F1", "report-v2.pdf"),
                document("F3", "DOC-F3", "report.pdf", pid=other))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    (moved,) = written(engine, fhir, "F2", "DocumentReference")
    assert moved["identifier"] == [{"system": "urn:huren:document-file:FNXRMYY", "value": "report-v2.pdf"}]
    found = fhir.get("/fhir/DocumentReference", params={"identifier": "report.pdf"}).json()
    (third,) = written(engine, fhir, "F3", "DocumentReference")
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [third["id"]]
    found = fhir.get("/fhir/DocumentReference",
                     params={"identifier": "urn:huren:document-file:FNXRMYY|report-v2.pdf"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [moved["id"]]
    # a re-send without TXA-16 keeps the name
    (ack,) = send(engine, document("F4", "DOC-F1", ""))
    assert ack_code_of(ack) == "AA", ack
    assert written(engine, fhir, "F4", "DocumentReference")[0]["identifier"] == moved["identifier"]


def test_a_cancel_without_a_value_leaves_a_stated_value_and_says_where(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """OBX-11 X (results cannot be obtained) with OBX-5 empty after a final: reversed by stat39 (thirty-ninth
    round) -- hl7fix17 kept the value ("an empty field is no change"), which left ``cancelled`` beside 7, a
    value beside the lab's statement that none could be obtained. The reason now replaces it (``merge.yaml``
    Observation.dataAbsentReason ``over_value``), no warning; the history keeps 7. A reason without a value
    under another status still leaves the value (``tests/test_stat39_report_status.py``'s control). The
    sender's ``""`` deletes the value and stores the reason, as before."""
    acks = send(engine, lab("X1", "OBX|1|NM|X1^t^L||7||||||F\r"), lab("X2", "OBX|1|NM|X1^t^L||||||||X\r"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert not [e for e in err_fields(acks[1]) if "dataAbsentReason" in e[-1]], acks[1]
    (kept,) = written(engine, fhir, "X2", "Observation")
    assert "valueQuantity" not in kept and kept["status"] == "cancelled", kept
    assert kept["dataAbsentReason"]["coding"][0]["code"] == "cannot-be-obtained", kept
    (ack,) = send(engine, lab("X3", 'OBX|1|NM|X1^t^L||""||||||X\r'))
    assert ack_code_of(ack) == "AA", ack
    (gone,) = written(engine, fhir, "X3", "Observation")
    assert "valueQuantity" not in gone
    assert gone["dataAbsentReason"]["coding"][0]["code"] == "cannot-be-obtained"
