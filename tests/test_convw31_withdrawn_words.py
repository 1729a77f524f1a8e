"""A result the sender withdrew (OBX-11 W "post original as wrong", D "deletes the OBX record") adds
no words to what its report states, and OBX-11 B (appended) is mapped (thirty-first round, convw31).

The converter wrote the words of every impression OBX into the stored ``DiagnosticReport.conclusion``
and every text OBX into the text document (``presentedForm``, the imaging report's
DocumentReference), withdrawn ones too: a clinician or another system reading the repository read a
finding the hospital had posted as wrong as the report's conclusion. The residents' page hid them
(pagesfix31); the record kept them. Each test sends real HL7 over ``POST /hl7v2`` and reads the
stored resources back over ``/fhir``."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_engine, module_http, post, written

__all__ = ["module_engine", "module_http"]

PATIENT = "PID|1||CW31{n}^^^FNXRMYY^MR||赵^六||19700305|F"


def _msg(app: str, control: str, n: str, *segments: str) -> str:
    head = f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261202100000||ORU^R01^ORU_R01|{control}|P|2.5.1"
    return "\r".join([head, PATIENT.format(n=n), *segments]) + "\r"


def _xray(control: str, n: str, *obx: str) -> str:
    return _msg("PACS", control, n, f"ORC|RE|CW31-DR-{n}^HIS|CW31-DR-{n}F^PACS||CM",
                f"OBR|1|CW31-DR-{n}^HIS|CW31-DR-{n}F^PACS|DR001^胸部正位片^L|||20261202090000|||||||||"
                f"D2001^吴^强||CW31-DR-{n}F||||20261202095000||DX|F", *obx)


def _accepted(ack: bytes) -> None:
    assert b"MSA|AA" in ack, ack


def _text(attachment: dict) -> str:
    return base64.b64decode(attachment["data"]).decode("utf-8")


def _one(engine: Engine, http: TestClient, control: str, rtype: str) -> dict:
    found = written(engine, http, control, rtype)
    assert len(found) == 1, found
    return found[0]


def test_a_withdrawn_impression_is_not_the_reports_conclusion_nor_in_its_text(engine: Engine, http: TestClient) -> None:
    ack = post(http, _xray("CW31-1", "1",
                           "OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。||||||F|||20261202093000",
                           "OBX|2|TX|IMP^诊断意见^L|1|左肺下叶结节，建议复查。||||||W|||20261202093000",
                           "OBX|3|TX|IMP^诊断意见^L|2|心肺膈未见明显异常。||||||F|||20261202093000"))
    _accepted(ack)
    report = _one(engine, http, "CW31-1", "DiagnosticReport")
    assert report["conclusion"] == "心肺膈未见明显异常。", report
    forms = [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]
    assert forms == ["双肺纹理清晰。\n心肺膈未见明显异常。"], forms
    # the imaging report's document (DocumentReference) is the same text
    document = _one(engine, http, "CW31-1", "DocumentReference")
    texts = [_text(c["attachment"]) for c in document["content"] if c["attachment"].get("data")]
    assert texts and all("左肺下叶结节" not in t and "双肺纹理清晰" in t for t in texts), texts
    # the withdrawn result itself is stored, as sent, entered-in-error
    withdrawn = [o for o in written(engine, http, "CW31-1", "Observation") if o["status"] == "entered-in-error"]
    assert [o.get("valueString") for o in withdrawn] == ["左肺下叶结节，建议复查。"], withdrawn


def test_a_withdrawn_line_of_a_lab_text_report_is_not_in_its_document(engine: Engine, http: TestClient) -> None:
    ack = post(http, _msg("LIS", "CW31-2", "2", "ORC|RE|CW31-BM-2^HIS|CW31-BM-2F^LIS||CM",
                          "OBR|1|CW31-BM-2^HIS|CW31-BM-2F^LIS|BM^骨髓细胞形态学^L|||20261202080000||||||||BM||||||"
                          "20261202095000|||F",
                          "OBX|1|TX|BM1^骨髓增生程度^L||增生明显活跃。||||||F|||20261202090000",
                          "OBX|2|TX|BM2^粒系^L||可见原始粒细胞约35%。||||||D|||20261202090000",
                          "OBX|3|TX|BM3^红系^L||红系比例减低。||||||F|||20261202090000"))
    _accepted(ack)
    report = _one(engine, http, "CW31-2", "DiagnosticReport")
    forms = [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]
    assert forms == ["增生明显活跃。\n红系比例减低。"], forms
    assert "conclusion" not in report, report


def test_a_later_message_withdrawing_a_line_takes_it_out_of_the_stored_conclusion(
        engine: Engine, http: TestClient) -> None:
    """The report said two impressions; the radiologist posts the second as wrong, re-sending only it
    (OBX-11 W). The withdrawal is a statement about that line: the conclusion keeps the first line
    (which the later, thinner message did not erase) and loses the second."""
    _accepted(post(http, _xray("CW31-3", "3",
                               "OBX|1|TX|IMP^诊断意见^L|1|主动脉硬化。||||||F|||20261202093000",
                               "OBX|2|TX|IMP^诊断意见^L|2|右肺上叶占位，考虑肺癌。||||||F|||20261202093000")))
    first = _one(engine, http, "CW31-3", "DiagnosticReport")
    assert first["conclusion"] == "主动脉硬化。\n右肺上叶占位，考虑肺癌。", first
    _accepted(post(http, _xray("CW31-3B", "3",
                               "OBX|2|TX|IMP^诊断意见^L|2|右肺上叶占位，考虑肺癌。||||||W|||20261202093000")))
    report = http.get(f"/fhir/DiagnosticReport/{first['id']}").json()
    assert report["conclusion"] == "主动脉硬化。", report


def test_a_correction_of_one_impression_keeps_the_others(engine: Engine, http: TestClient) -> None:
    """A correction (OBX-11 C) of one of two impressions, the other not re-sent: the conclusion holds
    the corrected line and the one that stands, not the corrected line alone nor the old wording."""
    _accepted(post(http, _xray("CW31-4", "4",
                               "OBX|1|TX|IMP^诊断意见^L|1|主动脉硬化。||||||F|||20261202093000",
                               "OBX|2|TX|IMP^诊断意见^L|2|右肺上叶结节。||||||F|||20261202093000")))
    first = _one(engine, http, "CW31-4", "DiagnosticReport")
    _accepted(post(http, _xray("CW31-4B", "4",
                               "OBX|2|TX|IMP^诊断意见^L|2|右肺上叶结节，约8mm，建议三月后复查。||||||C|||20261202093000")))
    report = http.get(f"/fhir/DiagnosticReport/{first['id']}").json()
    assert report["conclusion"] == "主动脉硬化。\n右肺上叶结节，约8mm，建议三月后复查。", report


def test_an_appended_result_is_amended(engine: Engine, http: TestClient) -> None:
    """OBX-11 B (appended, v2.8): final values reviewed, information added, values unchanged. The IG's
    ConceptMap leaves B without a target; R4's ``amended`` is "modified after final, including new
    information". It was stored ``unknown`` with an OBX-11 warning."""
    ack = post(http, _msg("LIS", "CW31-5", "5", "ORC|RE|CW31-GL-5^HIS|CW31-GL-5F^LIS||CM",
                          "OBR|1|CW31-GL-5^HIS|CW31-GL-5F^LIS|GLU^血糖^L|||20261202080000||||||||BLD||||||"
                          "20261202095000|||F",
                          "OBX|1|NM|GLU^血糖^L||6.8|mmol/L|3.9-6.1|H|||B|||20261202090000"))
    _accepted(ack)
    assert not [e for e in err_lines(ack) if "OBX^1^11" in e], err_lines(ack)
    result = _one(engine, http, "CW31-5", "Observation")
    assert result["status"] == "amended", result
    assert result["valueQuantity"]["value"] == 6.8, result


def test_a_later_message_withdrawing_a_text_line_takes_it_out_of_the_stored_document(
        engine: Engine, http: TestClient) -> None:
    segments = ("ORC|RE|CW31-BM-6^HIS|CW31-BM-6F^LIS||CM",
                "OBR|1|CW31-BM-6^HIS|CW31-BM-6F^LIS|BM^骨髓细胞形态学^L|||20261202080000||||||||BM||||||"
                "20261202095000|||F")
    _accepted(post(http, _msg("LIS", "CW31-6", "6", *segments,
                              "OBX|1|TX|BM1^骨髓增生程度^L||增生明显活跃。||||||F|||20261202090000",
                              "OBX|2|TX|BM2^粒系^L||可见原始粒细胞约35%。||||||F|||20261202090000")))
    first = _one(engine, http, "CW31-6", "DiagnosticReport")
    _accepted(post(http, _msg("LIS", "CW31-6B", "6", *segments,
                              "OBX|2|TX|BM2^粒系^L||可见原始粒细胞约35%。||||||W|||20261202090000")))
    report = http.get(f"/fhir/DiagnosticReport/{first['id']}").json()
    forms = [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]
    assert forms == ["增生明显活跃。"], forms
    withdrawn = [o for o in written(engine, http, "CW31-6B", "Observation")]
    assert [(o["status"], o.get("valueString")) for o in withdrawn] == [("entered-in-error", "可见原始粒细胞约35%。")]


def test_a_later_withdrawal_takes_the_line_out_of_the_imaging_document_too(engine: Engine, http: TestClient) -> None:
    _accepted(post(http, _xray("CW31-7", "7",
                               "OBX|1|TX|FINDINGS^检查所见^L||双肺纹理增粗。||||||F|||20261202093000",
                               "OBX|2|TX|IMP^诊断意见^L||右肺上叶占位，考虑肺癌。||||||F|||20261202093000")))
    document = _one(engine, http, "CW31-7", "DocumentReference")
    _accepted(post(http, _xray("CW31-7B", "7",
                               "OBX|2|TX|IMP^诊断意见^L||右肺上叶占位，考虑肺癌。||||||W|||20261202093000")))
    report = _one(engine, http, "CW31-7B", "DiagnosticReport")
    assert "conclusion" not in report, report
    forms = [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]
    assert forms == ["双肺纹理增粗。"], forms
    now = http.get(f"/fhir/DocumentReference/{document['id']}").json()
    texts = [_text(c["attachment"]) for c in now["content"] if c["attachment"].get("data")]
    assert texts == ["双肺纹理增粗。"], texts
