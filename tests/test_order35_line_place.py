"""order35: a withdrawn result's line that a later message states again (a correction, a later final, an
equal MSH-7 arriving after) goes back to its place in the report's text -- the DiagnosticReport's
``presentedForm`` and the imaging DocumentReference that copies it -- not after the lines that stood
(``engine.merge_rules`` ``_lines`` / ``_line_place``; msgfix34's report: "it comes back at the END").

Real HL7 through ``POST /hl7v2`` and over a real MLLP socket, stored resources read back over ``/fhir``,
on each storage backend (``tests.module_store``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_convw31_withdrawn_words import _text
from tests.test_rvdocref32_probes import F1, IMP, _doc_texts, _obx, _oru, _report_texts, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (OR35-n...)

FIRST, SECOND, IMPRESSION = "双肺纹理增粗。", "右肺上叶见结节影。", "慢性支气管炎。"
FIXED = "右肺上叶见钙化灶。"


def _ok(ack: bytes) -> None:
    assert b"MSA|AA" in ack, ack


def _withdrawn_second(engine: Engine, http: TestClient, n: str) -> tuple[str, str]:
    """The imaging report (three lines, MSH-7 10:00), its second line withdrawn at 11:00: (document, report)."""
    _ok(post(http, _three(f"OR35-{n}", f"OR35-X{n}")))
    doc_id, report_id = _stored(engine, http, f"OR35-{n}")
    _ok(post(http, _oru(f"OR35-{n}W", f"OR35-X{n}", _obx(2, F1, "2", SECOND, "W"), stamp="20261202110000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    return doc_id, report_id


def test_a_correction_with_the_impression_puts_the_line_back_between_them(engine: Engine, http: TestClient) -> None:
    """The correction (12:00) carries the corrected second line and the impression: the line goes
    back before the impression, as the message orders them -- in the report and its document."""
    doc_id, report_id = _withdrawn_second(engine, http, "1")
    _ok(post(http, _oru("OR35-1C", "OR35-X1", _obx(2, F1, "2", FIXED, "C"), _obx(3, IMP, "", IMPRESSION, "F"),
                        stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}"] == _doc_texts(http, doc_id)


NEW = "附见左侧第5肋陈旧性骨折。"


def test_a_restored_line_with_no_neighbour_in_the_report_goes_back_by_the_reports_result_order(
        engine: Engine, http: TestClient) -> None:
    """The correction carries the corrected line and a new finding, neither of them in the report's
    text (no neighbour the message could place it by): the report's result list (the OBX order)
    places it after the first finding, before the impression; the new finding follows the rest."""
    doc_id, report_id = _withdrawn_second(engine, http, "2")
    _ok(post(http, _oru("OR35-2C", "OR35-X2", _obx(2, F1, "2", FIXED, "C"), _obx(4, F1, "4", NEW, "F"),
                        stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}\n{NEW}"] == _doc_texts(http, doc_id)
    # and a later final of the report after it keeps every line where it is
    _ok(post(http, _oru("OR35-2F", "OR35-X2", _obx(1, F1, "1", FIRST, "F"), _obx(2, F1, "2", SECOND, "C"),
                        _obx(3, IMP, "", IMPRESSION, "F"), _obx(4, F1, "4", NEW, "F"), stamp="20261202130000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{SECOND}\n{IMPRESSION}\n{NEW}"] == _doc_texts(http, doc_id)


def test_a_correction_of_the_withdrawn_line_alone_brings_it_back_into_the_report(
        engine: Engine, http: TestClient) -> None:
    doc_id, report_id = _withdrawn_second(engine, http, "6")
    _ok(post(http, _oru("OR35-6C", "OR35-X6", _obx(2, F1, "2", FIXED, "C"), stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}"] == _doc_texts(http, doc_id)


def test_a_withdrawn_first_line_restored_goes_before_the_others(engine: Engine, http: TestClient) -> None:
    """The first line withdrawn, then corrected with a new finding: no result listed before it stands
    -- it goes before the line of the nearest result after it."""
    _ok(post(http, _three("OR35-3", "OR35-X3")))
    doc_id, report_id = _stored(engine, http, "OR35-3")
    _ok(post(http, _oru("OR35-3W", "OR35-X3", _obx(1, F1, "1", FIRST, "W"), stamp="20261202110000")))
    assert _report_texts(http, report_id) == [f"{SECOND}\n{IMPRESSION}"]
    _ok(post(http, _oru("OR35-3C", "OR35-X3", _obx(1, F1, "1", "双肺纹理清晰。", "C"), _obx(4, F1, "4", NEW, "F"),
                        stamp="20261202120000")))
    assert (_report_texts(http, report_id) == [f"双肺纹理清晰。\n{SECOND}\n{IMPRESSION}\n{NEW}"]
            == _doc_texts(http, doc_id))


def test_the_same_second_resent_after_the_withdrawal_restores_the_line_in_place_over_mllp(
        engine: Engine, http: TestClient) -> None:
    """Over MLLP: the report resent with the withdrawal's own MSH-7 (11:00), received after it -- equal
    times are ordered by arrival, so it is later and restores the line: in its place."""
    doc_id, report_id = _withdrawn_second(engine, http, "4")
    (ack,) = mllp(engine, _three("OR35-4R", "OR35-X4", stamp="20261202110000").encode())
    _ok(ack)
    assert _report_texts(http, report_id) == [f"{FIRST}\n{SECOND}\n{IMPRESSION}"] == _doc_texts(http, doc_id)


def _marrow(control: str, stamp: str, *obx: str) -> str:
    """A lab's bone-marrow morphology report (text results: the report's text document, ``lis._text_of``)."""
    head = f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1"
    return "\r".join([head, "PID|1||OR35BM^^^FNXRMYY^MR||赵^六||19700305|F",
                      "ORC|RE|OR35-BM^HIS|OR35-BMF^LIS||CM",
                      "OBR|1|OR35-BM^HIS|OR35-BMF^LIS|BM^骨髓细胞形态学^L|||20261202080000||||||||BM||||||"
                      "20261202095000|||F", *obx]) + "\r"


BM = (("BM1^骨髓增生程度^L", "增生明显活跃。"), ("BM2^粒系^L", "可见原始粒细胞约35%。"), ("BM3^红系^L", "红系比例减低。"))


def _bm(n: int, status: str, text: str | None = None) -> str:
    code, words = BM[n - 1]
    return f"OBX|{n}|TX|{code}||{text or words}||||||{status}|||20261202090000"


def test_a_lab_text_reports_withdrawn_line_comes_back_in_place_over_mllp(engine: Engine, http: TestClient) -> None:
    """A lab's three-line morphology report; its middle line withdrawn (11:00), then the whole report
    sent final again (12:00) over MLLP: the document's lines are the OBX order again."""
    (ack,) = mllp(engine, _marrow("OR35-5", "20261202100000", _bm(1, "F"), _bm(2, "F"), _bm(3, "F")).encode())
    _ok(ack)
    (report,) = written(engine, http, "OR35-5", "DiagnosticReport")

    def forms() -> list[str]:
        now = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
        return [_text(f) for f in now.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]

    (ack,) = mllp(engine, _marrow("OR35-5W", "20261202110000", _bm(2, "W")).encode())
    _ok(ack)
    assert forms() == ["增生明显活跃。\n红系比例减低。"]
    (ack,) = mllp(engine, _marrow("OR35-5F", "20261202120000", _bm(1, "F"), _bm(2, "C", "可见原始粒细胞约30%。"),
                                  _bm(3, "F")).encode())
    _ok(ack)
    assert forms() == ["增生明显活跃。\n可见原始粒细胞约30%。\n红系比例减低。"]
