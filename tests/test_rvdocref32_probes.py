"""rvdocref32's probes of docref32's change: an imaging report's DocumentReference follows a later
withdrawal (``settle_documents``, ``pacs._withdraws_text``, merge key ``text_of``). Real HL7 over
``POST /hl7v2`` (one test through one ingest batch), stored resources read back over ``/fhir``."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import module_http, post, written
from tests.module_store import module_eng
from tests.test_convw31_withdrawn_words import _text
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid

__all__ = ["engine", "module_http"]

engine = module_eng  # every probe on each storage backend (SQLite, mongomock): fillers of their own


def _obx(n: int, code: str, sub: str, text: str, status: str, when: str = "20261202093000") -> str:
    return f"OBX|{n}|TX|{code}|{sub}|{text}||||||{status}|||{when}"


def _oru(control: str, filler: str, *obx: str, mrn: str = "RV32A", name: str = "钱^七", sender: str = "FNXRMYY",
         stamp: str = "20261202100000", interpreter: str = "D2001^吴^强") -> str:
    head = f"MSH|^~\\&|PACS|{sender}|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1"
    return "\r".join([head, f"PID|1||{mrn}^^^{sender}^MR||{name}||19700305|F",
                      f"ORC|RE|{filler}P^HIS|{filler}^PACS||CM",
                      f"OBR|1|{filler}P^HIS|{filler}^PACS|DR001^胸部正位片^L|||20261202090000|||||||||"
                      f"{interpreter}||{filler}||||20261202095000||DX|F", *obx]) + "\r"


def _wrote(engine: Engine, http: TestClient, sender: str, control: str, rtype: str) -> list[dict]:
    doc = engine.ingestor.messages.get(message_id(sender, control))
    assert doc is not None
    return [http.get(f"/fhir/{r}").json() for r in doc.get("resources") or [] if r.startswith(rtype + "/")]


def _doc(http: TestClient, doc_id: str) -> dict:
    return http.get(f"/fhir/DocumentReference/{doc_id}").json()


def _doc_texts(http: TestClient, doc_id: str) -> list[str]:
    return [_text(c["attachment"]) for c in _doc(http, doc_id).get("content") or () if c["attachment"].get("data")]


def _report_texts(http: TestClient, report_id: str) -> list[str]:
    report = http.get(f"/fhir/DiagnosticReport/{report_id}").json()
    return [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]


F1 = "FINDINGS^检查所见^L"
IMP = "IMP^诊断意见^L"


def _three(control: str, filler: str, **kw: str) -> str:
    return _oru(control, filler, _obx(1, F1, "1", "双肺纹理增粗。", "F"), _obx(2, F1, "2", "右肺上叶见结节影。", "F"),
                _obx(3, IMP, "", "慢性支气管炎。", "F"), **kw)


def _stored(engine: Engine, http: TestClient, control: str) -> tuple[str, str]:
    (doc,) = written(engine, http, control, "DocumentReference")
    (report,) = written(engine, http, control, "DiagnosticReport")
    return doc["id"], report["id"]


def test_another_patients_withdrawal_under_the_same_filler_number_leaves_the_document_alone(
        engine: Engine, http: TestClient) -> None:
    """Patient A's report under filler RV32-X1; a message of patient B (another record number and name)
    under the same filler number withdrawing a line: A's document keeps its text and status, B's message
    is not stored as A's document (settle_documents reads the stored document by the filler-keyed id)."""
    assert b"MSA|AA" in post(http, _three("RV32-1", "RV32-X1"))
    doc_id, _ = _stored(engine, http, "RV32-1")
    before = _doc(http, doc_id)
    ack = post(http, _oru("RV32-1B", "RV32-X1", _obx(2, F1, "2", "右肺上叶见结节影。", "W"), mrn="RV32B", name="孙^八"))
    after = _doc(http, doc_id)
    assert after["subject"] == before["subject"]
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n右肺上叶见结节影。\n慢性支气管炎。"], (ack, after)
    assert after["meta"]["versionId"] == before["meta"]["versionId"], ack
    assert b"MSA|AA" not in ack, ack  # the other patient's message is refused, not said stored


def test_another_institutions_withdrawal_under_the_same_filler_number_writes_no_document(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-2", "RV32-X2"))
    doc_id, _ = _stored(engine, http, "RV32-2")
    ack = post(http, _oru("RV32-2B", "RV32-X2", _obx(2, F1, "2", "右肺上叶见结节影。", "W"), sender="FNZYY"))
    assert b"MSA|AA" in ack, ack
    assert _wrote(engine, http, "FNZYY", "RV32-2B", "DocumentReference") == []
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n右肺上叶见结节影。\n慢性支气管炎。"]


def test_a_replayed_withdrawal_leaves_the_document_as_it_is(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-3", "RV32-X3"))
    doc_id, report_id = _stored(engine, http, "RV32-3")
    withdrawal = _oru("RV32-3B", "RV32-X3", _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                      stamp="20261202110000")
    assert b"MSA|AA" in post(http, withdrawal)
    once = _doc(http, doc_id)
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n慢性支气管炎。"] == _report_texts(http, report_id)
    assert b"MSA|AA" in post(http, withdrawal.replace("RV32-3B", "RV32-3C"))  # resent under a new control id
    twice = _doc(http, doc_id)
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n慢性支气管炎。"], twice
    assert twice["status"] == "current"
    assert twice["meta"]["versionId"] == once["meta"]["versionId"], (once, twice)


def test_an_older_message_arriving_after_the_withdrawal_does_not_bring_the_line_back(
        engine: Engine, http: TestClient) -> None:
    """The report (3 lines, 09:30) is withdrawn in part at 10:00; the 09:30 message arrives again later
    (a resend under another control id): the document says the report's text, the withdrawn line not."""
    assert b"MSA|AA" in post(http, _three("RV32-4", "RV32-X4"))
    doc_id, report_id = _stored(engine, http, "RV32-4")
    assert b"MSA|AA" in post(http, _oru("RV32-4B", "RV32-X4",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    post(http, _three("RV32-4C", "RV32-X4"))
    assert _doc_texts(http, doc_id) == _report_texts(http, report_id)
    assert all("右肺上叶" not in t for t in _doc_texts(http, doc_id)), _doc_texts(http, doc_id)


def test_a_thinner_message_with_text_leaves_the_document_equal_to_the_report(
        engine: Engine, http: TestClient) -> None:
    """A later message resending two of the three lines (final, unchanged): the report keeps the line it
    did not carry (``lines_of``); its document must say the same text, not the message's two lines."""
    assert b"MSA|AA" in post(http, _three("RV32-5", "RV32-X5"))
    doc_id, report_id = _stored(engine, http, "RV32-5")
    assert b"MSA|AA" in post(http, _oru("RV32-5B", "RV32-X5", _obx(1, F1, "1", "双肺纹理增粗。", "F"),
                                        _obx(3, IMP, "", "慢性支气管炎。", "F")))
    assert _doc_texts(http, doc_id) == _report_texts(http, report_id)


def test_a_correction_of_lines_leaves_the_document_equal_to_the_report(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-6", "RV32-X6"))
    doc_id, report_id = _stored(engine, http, "RV32-6")
    assert b"MSA|AA" in post(http, _oru("RV32-6B", "RV32-X6",
                                        _obx(2, F1, "2", "右肺上叶见钙化灶。", "C", "20261202100000"),
                                        _obx(3, IMP, "", "慢性支气管炎，右肺钙化灶。", "C", "20261202100000"),
                                        stamp="20261202110000"))
    texts = _doc_texts(http, doc_id)
    assert texts == _report_texts(http, report_id), texts
    assert all("结节" not in t for t in texts), texts


def test_a_withdrawal_does_not_revive_a_document_a_client_marked_entered_in_error(
        engine: Engine, http: TestClient) -> None:
    """A records office retracts the document (PUT status entered-in-error); a later message carrying only
    a withdrawn line (before docref32 it did not write the document) must not make it current again."""
    assert b"MSA|AA" in post(http, _three("RV32-7", "RV32-X7"))
    doc_id, _ = _stored(engine, http, "RV32-7")
    body = _doc(http, doc_id)
    body["status"] = "entered-in-error"
    assert http.put(f"/fhir/DocumentReference/{doc_id}", json=body).status_code == 200
    assert b"MSA|AA" in post(http, _oru("RV32-7B", "RV32-X7",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert _doc(http, doc_id)["status"] == "entered-in-error", _doc(http, doc_id)


def test_a_withdrawal_only_message_keeps_the_documents_author(engine: Engine, http: TestClient) -> None:
    """The withdrawal names another interpreter (OBR-32): the document's author (who wrote the text) stays;
    a thinner message withdrawing a line states no authorship of the remaining text."""
    assert b"MSA|AA" in post(http, _three("RV32-8", "RV32-X8"))
    doc_id, _ = _stored(engine, http, "RV32-8")
    before = _doc(http, doc_id)
    assert b"MSA|AA" in post(http, _oru("RV32-8B", "RV32-X8",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000", interpreter="D2009^郑^九"))
    after = _doc(http, doc_id)
    assert after.get("author") == before.get("author"), (before.get("author"), after.get("author"))
    assert after.get("date") == before.get("date"), (before.get("date"), after.get("date"))


def test_every_line_withdrawn_the_document_is_entered_in_error_in_search_and_everything(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-9", "RV32-X9"))
    doc_id, report_id = _stored(engine, http, "RV32-9")
    assert b"MSA|AA" in post(http, _oru("RV32-9B", "RV32-X9",
                                        _obx(1, F1, "1", "双肺纹理增粗。", "W", "20261202100000"),
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        _obx(3, IMP, "", "慢性支气管炎。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    doc = _doc(http, doc_id)
    assert doc["status"] == "entered-in-error", doc
    assert _report_texts(http, report_id) == []
    patient = doc["subject"]["reference"].split("/")[1]
    current = http.get("/fhir/DocumentReference", params={"patient": patient, "status": "current"}).json()
    assert doc_id not in [e["resource"]["id"] for e in current.get("entry") or ()], current
    everything = http.get(f"/fhir/Patient/{patient}/$everything").json()
    found = [e["resource"] for e in everything.get("entry") or ()
             if e["resource"]["resourceType"] == "DocumentReference" and e["resource"]["id"] == doc_id]
    assert [d["status"] for d in found] in ([], ["entered-in-error"]), found


def test_a_withdrawal_in_one_report_of_a_message_leaves_the_other_reports_document(
        engine: Engine, http: TestClient) -> None:
    """Two reports (two filler numbers) of one message; a later message withdraws a line of the second."""
    second = ["ORC|RE|RV32-XBP^HIS|RV32-XB^PACS||CM",
              "OBR|2|RV32-XBP^HIS|RV32-XB^PACS|CT01^胸部CT^L|||20261202090000|||||||||D2001^吴^强||RV32-XB||||"
              "20261202095000||CT|F",
              _obx(1, F1, "1", "纵隔未见肿大淋巴结。", "F"), _obx(2, IMP, "", "胸部CT未见异常。", "F")]
    assert b"MSA|AA" in post(http, _three("RV32-10", "RV32-XA").rstrip("\r") + "\r" + "\r".join(second) + "\r")
    docs = written(engine, http, "RV32-10", "DocumentReference")
    assert len(docs) == 2, docs
    texts = {d["id"]: _doc_texts(http, d["id"]) for d in docs}
    withdrawal = _oru("RV32-10B", "RV32-XB", _obx(2, IMP, "", "胸部CT未见异常。", "W", "20261202100000"),
                      stamp="20261202110000").replace("DR001^胸部正位片^L", "CT01^胸部CT^L").replace("||DX|F", "||CT|F")
    assert b"MSA|AA" in post(http, withdrawal)
    now = {d["id"]: _doc_texts(http, d["id"]) for d in docs}
    changed = [i for i in now if now[i] != texts[i]]
    assert len(changed) == 1, (texts, now)
    assert now[changed[0]] == ["纵隔未见肿大淋巴结。"], now


def test_an_mdm_documents_text_is_untouched_by_its_orders_imaging_withdrawal(engine: Engine, http: TestClient) -> None:
    """An MDM T02 with its own number (TXA-12); the PACS then withdraws a line under the same filler number:
    the MDM's numbered document is its own text (never rewritten to the report's)."""
    mdm = ("MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261202091500||MDM^T02^MDM_T02|RV32-11|P|2.5.1\r"
           "EVN|T02|20261202091500\rPID|1||RV32A^^^FNXRMYY^MR||钱^七||19700305|F\r"
           "ORC|RE|RV32-X11P^HIS|RV32-X11^PACS\r"
           "OBR|1|RV32-X11P^HIS|RV32-X11^PACS|DR001^胸部正位片^L|||20261202083000||||||||||||||||DX|F\r"
           "TXA|1|DI^影像报告^HL70270|TX|20261202080000|||||D001^李^明|||DOC-RV32-11||||rv32.rtf|AU\r"
           "OBX|1|TX|FINDINGS^检查所见^L|1|双肺纹理增粗。||||||F|||20261202083000\r"
           "OBX|2|TX|FINDINGS^检查所见^L|2|右肺上叶见结节影。||||||F|||20261202083000\r")
    assert b"MSA|AA" in post(http, mdm)
    (doc,) = written(engine, http, "RV32-11", "DocumentReference")
    before = _doc_texts(http, doc["id"])
    assert b"MSA|AA" in post(http, _oru("RV32-11B", "RV32-X11",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert _doc_texts(http, doc["id"]) == before
    assert _doc(http, doc["id"])["status"] == "current"


def test_a_base64_of_the_report_text_is_utf8(engine: Engine, http: TestClient) -> None:
    """The copied text is the report's, byte for byte (UTF-8, the attachment's contentType charset kept)."""
    assert b"MSA|AA" in post(http, _three("RV32-12", "RV32-X12"))
    doc_id, report_id = _stored(engine, http, "RV32-12")
    assert b"MSA|AA" in post(http, _oru("RV32-12B", "RV32-X12",
                                        _obx(1, F1, "1", "双肺纹理增粗。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    doc = _doc(http, doc_id)
    (att,) = [c["attachment"] for c in doc["content"] if c["attachment"].get("data")]
    assert base64.b64decode(att["data"]).decode("utf-8") == "右肺上叶见结节影。\n慢性支气管炎。"
    assert att.get("contentType", "").startswith("text/plain"), att
    assert _report_texts(http, report_id) == ["右肺上叶见结节影。\n慢性支气管炎。"]


def test_a_withdrawal_only_message_over_a_clients_own_text(engine: Engine, http: TestClient) -> None:
    """A records office PUT its own text of the document; a later message carrying only a withdrawn line
    (it states no text) then rewrites the document's text to the report's (observed, see report)."""
    assert b"MSA|AA" in post(http, _three("RV32-13", "RV32-X13"))
    doc_id, report_id = _stored(engine, http, "RV32-13")
    body = _doc(http, doc_id)
    own = base64.b64encode("打印稿：慢性支气管炎。".encode()).decode("ascii")
    body["content"] = [{"attachment": {**body["content"][0]["attachment"], "data": own}}]
    assert http.put(f"/fhir/DocumentReference/{doc_id}", json=body).status_code == 200
    assert b"MSA|AA" in post(http, _oru("RV32-13B", "RV32-X13",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert _doc_texts(http, doc_id) == ["打印稿：慢性支气管炎。"], _doc_texts(http, doc_id)


def test_another_patients_withdrawal_in_the_same_batch_is_refused_and_copies_nothing(
        engine: Engine, http: TestClient) -> None:
    """One ingest batch: patient A's report, then patient B's withdrawal under A's filler number (the
    batch's earlier message is what ``settle_documents`` leans on): B's message is refused (AE), A's
    document keeps its text, written once."""
    outcomes = engine.ingestor.process([
        (_three("RV32-14", "RV32-X14").encode(), "mllp", "test"),
        (_oru("RV32-14B", "RV32-X14", _obx(2, F1, "2", "右肺上叶见结节影。", "W"), mrn="RV32B", name="孙^八").encode(),
         "mllp", "test")])
    assert len(outcomes) == 2
    doc_id, _ = _stored(engine, http, "RV32-14")
    doc = _doc(http, doc_id)
    assert doc["meta"]["versionId"] == "1", doc
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n右肺上叶见结节影。\n慢性支气管炎。"]
    stored = engine.ingestor.messages.get(message_id("FNXRMYY", "RV32-14B"))
    assert not [r for r in stored.get("resources") or () if r.startswith("DocumentReference/")], stored


def test_a_withdrawal_after_a_client_deleted_the_document_does_not_bring_it_back(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-15", "RV32-X15"))
    doc_id, _ = _stored(engine, http, "RV32-15")
    assert http.delete(f"/fhir/DocumentReference/{doc_id}").status_code in (200, 204)
    assert b"MSA|AA" in post(http, _oru("RV32-15B", "RV32-X15",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert http.get(f"/fhir/DocumentReference/{doc_id}").status_code == 410


def test_a_deleted_line_obx11_d_leaves_the_document_like_w(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("RV32-16", "RV32-X16"))
    doc_id, report_id = _stored(engine, http, "RV32-16")
    assert b"MSA|AA" in post(http, _oru("RV32-16B", "RV32-X16",
                                        _obx(3, IMP, "", "慢性支气管炎。", "D", "20261202100000"),
                                        stamp="20261202110000"))
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n右肺上叶见结节影。"] == _report_texts(http, report_id)
    assert _doc(http, doc_id)["status"] == "current"


def _mdm_unnumbered(control: str, filler: str, *texts: str) -> str:
    """An MDM T02 with its order (ORC/OBR before TXA) and no TXA-12: its document is keyed by the filler
    number as the imaging report's document is (``pacs._document_reference``), and has no masterIdentifier."""
    return (f"MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261202120000||MDM^T02^MDM_T02|{control}|P|2.5.1\r"
            "EVN|T02|20261202120000\rPID|1||RV32A^^^FNXRMYY^MR||钱^七||19700305|F\r"
            f"ORC|RE|{filler}P^HIS|{filler}^PACS\r"
            f"OBR|1|{filler}P^HIS|{filler}^PACS|DR001^胸部正位片^L|||20261202090000||||||||||||||||DX|F\r"
            "TXA|1|DI^影像报告^HL70270|TX|20261202115000|||||D001^李^明|||||||AU\r"
            + "".join(f"OBX|{n}|TX|FINDINGS^检查所见^L|{n}|{t}||||||F|||20261202115000\r"
                      for n, t in enumerate(texts, 1)))


def test_an_unnumbered_mdm_after_the_report_in_one_batch_keeps_its_own_text(engine: Engine, http: TestClient) -> None:
    """A batch: the PACS report (3 lines), then an MDM T02 of the same order with no TXA-12 and new text.
    Its document (the same one, keyed by the filler number) is written before its report, so the report
    pending in the write group is the earlier message's: ``text_of`` must not put that text over the MDM's."""
    outcomes = engine.ingestor.process([
        (_three("RV32-17", "RV32-X17").encode(), "mllp", "test"),
        (_mdm_unnumbered("RV32-17B", "RV32-X17", "双肺纹理增多。", "右肺上叶结节，较前缩小。").encode(), "mllp", "test")])
    assert len(outcomes) == 2
    docs = written(engine, http, "RV32-17B", "DocumentReference")
    assert [d["id"] for d in docs] == [d["id"] for d in written(engine, http, "RV32-17", "DocumentReference")]
    texts = _doc_texts(http, docs[0]["id"])
    assert any("较前缩小" in t for t in texts), texts


def test_an_unnumbered_mdm_after_the_report_keeps_its_own_text(engine: Engine, http: TestClient) -> None:
    """The same two messages, each its own POST (guard: no report is pending when the MDM's document merges)."""
    assert b"MSA|AA" in post(http, _three("RV32-18", "RV32-X18"))
    assert b"MSA|AA" in post(http, _mdm_unnumbered("RV32-18B", "RV32-X18", "双肺纹理增多。", "右肺上叶结节，较前缩小。"))
    docs = written(engine, http, "RV32-18B", "DocumentReference")
    assert [d["id"] for d in docs] == [d["id"] for d in written(engine, http, "RV32-18", "DocumentReference")]
    texts = _doc_texts(http, docs[0]["id"])
    assert any("较前缩小" in t for t in texts), texts


def test_a_refused_message_of_another_patient_earlier_in_the_batch_lends_no_text(
        engine: Engine, http: TestClient) -> None:
    """A's report stored under filler RV32-X19. One batch: patient B's report under the same filler number
    (other words; refused: another patient), then A's own withdrawal of a line. A's withdrawal settles
    against the batch's earlier messages (``_as_left``): B's refused text must not become A's document."""
    assert b"MSA|AA" in post(http, _three("RV32-19", "RV32-X19"))
    doc_id, report_id = _stored(engine, http, "RV32-19")
    other = _oru("RV32-19B", "RV32-X19", _obx(1, F1, "1", "孙八：肝内多发占位。", "F"),
                 _obx(2, IMP, "", "孙八：考虑转移瘤。", "F"), mrn="RV32B", name="孙^八")
    own = _oru("RV32-19C", "RV32-X19", _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
               stamp="20261202110000")
    outcomes = engine.ingestor.process([(other.encode(), "mllp", "test"), (own.encode(), "mllp", "test")])
    assert len(outcomes) == 2
    texts = _doc_texts(http, doc_id)
    assert all("孙八" not in t for t in texts), texts
    assert all("孙八" not in t for t in _report_texts(http, report_id))
    assert texts == ["双肺纹理增粗。\n慢性支气管炎。"], texts


# The resident's page (/ui/me) in headless Chromium: a chest X-ray whose every text line a later message
# withdraws (the document entered-in-error, docref32) -- her documents tab must not show its words.
_RV32_NID = "32092319720404112"


@pytest.fixture(scope="module")
def page_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium')")
    patient = pid(nid(_RV32_NID), "ZY2026321112", "FNXRMYY", "钱^小青", "19720404", "F", "13700032112")
    order = ["ORC|RE|RV32-PG^HIS|RV32-PGF^PACS||CM",
             "OBR|1|RV32-PG^HIS|RV32-PGF^PACS|DR001^胸部正位片^L|||20260402143000|||||||||D2001^吴^强||"
             "RV32-PGF||||20260402162800||DX|F"]
    xray = hl7(msh("PACS", "FNXRMYY", "20260402163000", "ORU^R01^ORU_R01", "RV32-PG-1"), patient, *order,
               "OBX|1|TX|FINDINGS^检查所见^L||右肺门影增大。||||||F|||20260402160000",
               "OBX|2|TX|IMP^诊断意见^L||考虑中央型肺癌。||||||F|||20260402160000")
    gone = hl7(msh("PACS", "FNXRMYY", "20260403090000", "ORU^R01^ORU_R01", "RV32-PG-2"), patient, *order,
               "OBX|1|TX|FINDINGS^检查所见^L||右肺门影增大。||||||W|||20260403085000",
               "OBX|2|TX|IMP^诊断意见^L||考虑中央型肺癌。||||||W|||20260403085000")
    yield from fed_site(tmp_path_factory.mktemp("rvdocref32-page"), patient, [xray, gone])


@pytest.fixture(scope="module")
def page_phone(page_site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    yield from signed_in_phone(page_site, tmp_path_factory.mktemp("rvdocref32-shots"), nid(_RV32_NID))


def test_her_page_shows_no_words_of_an_entirely_withdrawn_imaging_document(page_phone: Phone) -> None:
    page_phone.click("[data-tab=documents]")
    page_phone.cdp.wait("!document.getElementById('documents').hidden")
    documents = page_phone.text("documents")
    assert "胸部正位片" in documents, documents  # the document's card is there (R4 entered-in-error: kept)
    assert "中央型肺癌" not in documents and "右肺门影增大" not in documents, documents
    page_phone.click("[data-tab=timeline]")
    page_phone.cdp.wait("!document.getElementById('timeline').hidden")
    assert "中央型肺癌" not in page_phone.text("timeline")
