"""An imaging report's document (DocumentReference) says the report's text as the report's own merge
leaves it (thirty-second round, docref32).

The document is a copy of the report's plain-text ``presentedForm``. It was written only by a message
with text and took that message's text whole: a later message carrying only the line it withdraws
(OBX-11 W/D) left the document's copy of it, and one withdrawing a line beside another it resent
shrank the document to the resent line while the report kept the lines the message did not carry.
Now the document is written onto a stored one by such a message, and its text copies the report's as
combined (``merge.yaml`` DocumentReference ``content: text_of``). Real HL7 over ``POST /hl7v2`` (one
test through one ingest batch), stored resources read back over ``/fhir``."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import module_engine, module_http, post, written
from tests.test_convw31_withdrawn_words import _accepted, _one, _text, _xray

__all__ = ["module_engine", "module_http"]

_F = "||||||F|||20261202093000"
_W = "||||||W|||20261202093000"


def _document_texts(http: TestClient, document: dict) -> list[str]:
    now = http.get(f"/fhir/DocumentReference/{document['id']}").json()
    return [_text(c["attachment"]) for c in now["content"] if c["attachment"].get("data")]


def _report_texts(report: dict) -> list[str]:
    return [_text(f) for f in report.get("presentedForm") or () if f.get("contentType", "").startswith("text/")]


def test_a_withdrawal_beside_a_resent_line_keeps_the_lines_the_message_did_not_carry(
        engine: Engine, http: TestClient) -> None:
    """Three lines stored; a later message withdraws the second and resends the third: the document,
    like the report, keeps the first (it took the message's one line whole before)."""
    _accepted(post(http, _xray("DR32-1", "321",
                               f"OBX|1|TX|FINDINGS^检查所见^L|1|双肺纹理增粗。{_F}",
                               f"OBX|2|TX|FINDINGS^检查所见^L|2|右肺上叶见结节影。{_F}",
                               f"OBX|3|TX|IMP^诊断意见^L||慢性支气管炎。{_F}")))
    document = _one(engine, http, "DR32-1", "DocumentReference")
    _accepted(post(http, _xray("DR32-1B", "321",
                               f"OBX|2|TX|FINDINGS^检查所见^L|2|右肺上叶见结节影。{_W}",
                               f"OBX|3|TX|IMP^诊断意见^L||慢性支气管炎。{_F}")))
    report = _one(engine, http, "DR32-1B", "DiagnosticReport")
    assert _report_texts(report) == ["双肺纹理增粗。\n慢性支气管炎。"], report
    assert _document_texts(http, document) == ["双肺纹理增粗。\n慢性支气管炎。"]
    assert http.get(f"/fhir/DocumentReference/{document['id']}").json()["status"] == "current"


def test_a_first_message_carrying_only_a_withdrawn_line_writes_no_document(engine: Engine, http: TestClient) -> None:
    """Nothing stored: a document without content would state nothing (R4 requires one), so none is
    written; the report and the withdrawn result are, as before."""
    ack = post(http, _xray("DR32-2", "322", f"OBX|1|TX|IMP^诊断意见^L||左肺下叶结节。{_W}"))
    _accepted(ack)
    assert written(engine, http, "DR32-2", "DocumentReference") == []
    report = _one(engine, http, "DR32-2", "DiagnosticReport")
    assert "conclusion" not in report and not _report_texts(report), report
    (result,) = written(engine, http, "DR32-2", "Observation")
    assert result["status"] == "entered-in-error", result
    provenance = _one(engine, http, "DR32-2", "Provenance")
    assert not [t for t in provenance["target"] if t["reference"].startswith("DocumentReference/")], provenance


def test_every_line_withdrawn_leaves_the_document_entered_in_error(engine: Engine, http: TestClient) -> None:
    """No text of the report stands: the document no longer states one (``entered-in-error``; its
    content kept, as R4 requires one, with its history); a later message with text makes it current."""
    _accepted(post(http, _xray("DR32-3", "323",
                               f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。{_F}",
                               f"OBX|2|TX|IMP^诊断意见^L||心肺未见异常。{_F}")))
    document = _one(engine, http, "DR32-3", "DocumentReference")
    _accepted(post(http, _xray("DR32-3B", "323",
                               f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。{_W}",
                               f"OBX|2|TX|IMP^诊断意见^L||心肺未见异常。{_W}")))
    report = _one(engine, http, "DR32-3B", "DiagnosticReport")
    assert not _report_texts(report) and "conclusion" not in report, report
    assert http.get(f"/fhir/DocumentReference/{document['id']}").json()["status"] == "entered-in-error"
    # (a later message: MSH-7 after the withdrawal's -- one of the same time is not later, and the
    # withdrawal stands against it: merge.yaml Observation ``until_later``, msgtime33)
    _accepted(post(http, _xray("DR32-3C", "323",
                               f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理增多。{_F}",
                               f"OBX|2|TX|IMP^诊断意见^L||支气管炎。{_F}").replace("|20261202100000||", "|20261202120000||", 1)))
    now = http.get(f"/fhir/DocumentReference/{document['id']}").json()
    assert now["status"] == "current", now
    assert _document_texts(http, document) == ["双肺纹理增多。\n支气管炎。"]


def test_a_report_and_its_withdrawal_in_one_batch_leave_the_document_without_the_line(
        engine: Engine, http: TestClient) -> None:
    """The document the batch's first message makes is the stored one the second writes onto."""
    outcomes = engine.ingestor.process([
        (_xray("DR32-4", "324", f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理增粗。{_F}",
               f"OBX|2|TX|IMP^诊断意见^L||右肺上叶占位。{_F}").encode(), "mllp", "test"),
        (_xray("DR32-4B", "324", f"OBX|2|TX|IMP^诊断意见^L||右肺上叶占位。{_W}").encode(), "mllp", "test")])
    assert len(outcomes) == 2
    document = _one(engine, http, "DR32-4", "DocumentReference")
    assert [d["id"] for d in written(engine, http, "DR32-4B", "DocumentReference")] == [document["id"]]
    assert _document_texts(http, document) == ["双肺纹理增粗。"]


def test_a_fhir_clients_put_states_the_document_itself(engine: Engine, http: TestClient) -> None:
    """A records office's PUT of the document's text is not the report's copy (api: replace)."""
    _accepted(post(http, _xray("DR32-5", "325",
                               f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。{_F}",
                               f"OBX|2|TX|IMP^诊断意见^L||未见异常。{_F}")))
    document = _one(engine, http, "DR32-5", "DocumentReference")
    body = http.get(f"/fhir/DocumentReference/{document['id']}").json()
    own = base64.b64encode("打印稿：未见异常。".encode()).decode("ascii")
    body["content"] = [{"attachment": {**body["content"][0]["attachment"], "data": own}}]
    answer = http.put(f"/fhir/DocumentReference/{document['id']}", json=body)
    assert answer.status_code == 200, answer.text
    assert _document_texts(http, document) == ["打印稿：未见异常。"]


def _mdm_with_order(control: str, event: str, *texts: str) -> bytes:
    """An MDM with its order (ORC/OBR before TXA): a report, its results and the document DOC-D32."""
    return (f"MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261202091500||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|20261202091500\r"
            "PID|1||CW31326^^^FNXRMYY^MR||赵^六||19700305|F\r"
            "ORC|RE|ORD-D32|FIL-D32\r"
            "OBR|1|ORD-D32|FIL-D32|71020^胸部CT^C4|||20261202083000||||||||||||||||CT|F\r"
            "TXA|1|DI^影像报告^HL70270|TX|20261202080000|||||D001^李^明|||DOC-D32||||d32.rtf|AU\r"
            + "".join(f"OBX|{n}|TX|18782-3^影像所见^LN|{n}|{t}||||||F|||20261202083000\r"
                      for n, t in enumerate(texts, 1))).encode()


def test_an_mdm_document_with_its_order_is_its_own_text_not_an_earlier_reports(
        engine: Engine, http: TestClient) -> None:
    """A document with its own number (TXA-12) is never the copy: a T02 and its T08 in one batch, the
    T08's document is written before its report (a guard: it passes on 283f225d too, and without
    ``text_of``'s ``masterIdentifier`` check, as the batch stands)."""
    outcomes = engine.ingestor.process([
        (_mdm_with_order("DR32-6", "T02", "双肺纹理增粗。", "右肺结节。"), "mllp", "test"),
        (_mdm_with_order("DR32-6B", "T08", "双肺纹理增粗。", "右肺结节，考虑良性。"), "mllp", "test")])
    assert len(outcomes) == 2
    document = _one(engine, http, "DR32-6B", "DocumentReference")
    assert _document_texts(http, document) == ["双肺纹理增粗。\n右肺结节，考虑良性。"]
