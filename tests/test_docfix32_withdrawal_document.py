"""docfix32: an imaging report's DocumentReference under a message that states no text of it (it only
withdraws a line, OBX-11 W/D) keeps what the stored document states but for the withdrawn line; a later
thinner message's document copies the report as stored when the report did not change. Real HL7 over
``POST /hl7v2``, read back over ``/fhir``, on each storage backend (``tests.module_store.module_eng``).
The review's probes (tests/test_rvdocref32_probes.py) pin the rest; these cover what they leave open."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import module_http, post
from tests.module_store import module_eng
from tests.test_rvdocref32_probes import F1, IMP, _doc, _doc_texts, _obx, _oru, _report_texts, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng


def _put_text(http: TestClient, doc_id: str, text: str, **more: str) -> None:
    body = {**_doc(http, doc_id), **more}
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    body["content"] = [{"attachment": {**body["content"][0]["attachment"], "data": data}}]
    assert http.put(f"/fhir/DocumentReference/{doc_id}", json=body).status_code == 200


def test_a_withdrawal_takes_only_its_line_out_of_a_clients_text(engine: Engine, http: TestClient) -> None:
    """A records office's own text holding the report's lines and a line of its own: a later message
    withdrawing one report line takes that line out and leaves the office's line, status and date."""
    assert b"MSA|AA" in post(http, _three("DF32-1", "DF32-X1"))
    doc_id, report_id = _stored(engine, http, "DF32-1")
    _put_text(http, doc_id, "双肺纹理增粗。\n右肺上叶见结节影。\n慢性支气管炎。\n（病案室核对：王）")
    before = _doc(http, doc_id)
    assert b"MSA|AA" in post(http, _oru("DF32-1B", "DF32-X1",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    after = _doc(http, doc_id)
    assert _doc_texts(http, doc_id) == ["双肺纹理增粗。\n慢性支气管炎。\n（病案室核对：王）"], after
    assert _report_texts(http, report_id) == ["双肺纹理增粗。\n慢性支气管炎。"]
    assert (after["status"], after.get("date"), after.get("author")) == \
        (before["status"], before.get("date"), before.get("author"))


def test_every_line_withdrawn_over_a_retracted_document_leaves_it_retracted(engine: Engine, http: TestClient) -> None:
    """A client's entered-in-error document; every line is then withdrawn: it stays entered-in-error
    (nothing of the message makes it current), and a resend of the withdrawal writes no new version."""
    assert b"MSA|AA" in post(http, _three("DF32-2", "DF32-X2"))
    doc_id, report_id = _stored(engine, http, "DF32-2")
    body = _doc(http, doc_id)
    body["status"] = "entered-in-error"
    assert http.put(f"/fhir/DocumentReference/{doc_id}", json=body).status_code == 200
    every = _oru("DF32-2B", "DF32-X2", _obx(1, F1, "1", "双肺纹理增粗。", "W", "20261202100000"),
                 _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                 _obx(3, IMP, "", "慢性支气管炎。", "W", "20261202100000"), stamp="20261202110000")
    assert b"MSA|AA" in post(http, every)
    once = _doc(http, doc_id)
    assert once["status"] == "entered-in-error", once
    assert _report_texts(http, report_id) == []
    assert b"MSA|AA" in post(http, every.replace("DF32-2B", "DF32-2C"))
    assert _doc(http, doc_id)["meta"]["versionId"] == once["meta"]["versionId"]


def test_a_thinner_message_after_a_withdrawal_keeps_the_line_out(engine: Engine, http: TestClient) -> None:
    """Line 2 withdrawn; a later message resends lines 1 and 3 unchanged (the report does not change):
    the document is the report's two lines, neither the message's alone nor the withdrawn line back."""
    assert b"MSA|AA" in post(http, _three("DF32-3", "DF32-X3"))
    doc_id, report_id = _stored(engine, http, "DF32-3")
    assert b"MSA|AA" in post(http, _oru("DF32-3B", "DF32-X3",
                                        _obx(2, F1, "2", "右肺上叶见结节影。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert b"MSA|AA" in post(http, _oru("DF32-3C", "DF32-X3", _obx(3, IMP, "", "慢性支气管炎。", "F"),
                                        stamp="20261202120000"))
    assert _doc_texts(http, doc_id) == _report_texts(http, report_id) == ["双肺纹理增粗。\n慢性支气管炎。"]
    assert _doc(http, doc_id)["status"] == "current"


def test_a_later_message_with_new_words_still_states_the_document(engine: Engine, http: TestClient) -> None:
    """A client's entered-in-error document; a later message with text (a new impression): the message
    states the document, which says the report's text and is current again (as before docfix32)."""
    assert b"MSA|AA" in post(http, _three("DF32-4", "DF32-X4"))
    doc_id, report_id = _stored(engine, http, "DF32-4")
    _put_text(http, doc_id, "打印稿。", status="entered-in-error")
    assert b"MSA|AA" in post(http, _oru("DF32-4B", "DF32-X4", _obx(1, F1, "1", "双肺纹理增粗。", "F"),
                                        _obx(3, IMP, "", "慢性支气管炎，建议随访。", "C", "20261202100000"),
                                        stamp="20261202110000"))
    doc = _doc(http, doc_id)
    assert doc["status"] == "current", doc
    assert _doc_texts(http, doc_id) == _report_texts(http, report_id)
    assert any("建议随访" in t for t in _doc_texts(http, doc_id)), _doc_texts(http, doc_id)
