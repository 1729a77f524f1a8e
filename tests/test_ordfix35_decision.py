"""ordfix35: the operator's decision "take as later" is bound to the stored version(s) its refusal was
told against (``refused_against`` on the refused message; ``engine.ingest.Ingestor.replay``), and the
answer, the stored message and the audit say whether the decision was used (rvorder35 MED 3, LOW 5);
report lines matched to the results that said them when words repeat (MED 4).

Real HL7 over a real MLLP socket and ``POST /hl7v2``, ``/admin`` and ``/fhir`` through FastAPI's
TestClient with real tokens, on each storage backend (``tests.module_store``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import FIXED, _by
from tests.test_msgtime33_withdrawal_time import _status
from tests.test_order35_as_later import _audited_replays, _details, _operator, _refused_correction
from tests.test_order35_line_place import _bm, _marrow
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru, _report_texts

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (OL35-6n... / OF35-n...)

IMPRESSION = "慢性支气管炎。"
PACS = "右肺上叶结节影，建议复查。"


def _version(http: TestClient, obs_id: str) -> str:
    return http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]


def test_a_result_written_after_the_refusal_is_409_and_the_operator_decides_again_on_what_is_stored(
        engine: Engine, http: TestClient) -> None:
    """The RIS's 12:00 correction refused against the PACS's 11:00 withdrawal (its version recorded);
    the PACS's own 13:00 correction then taken. "As later" is 409 -- the record changed after the
    refusal -- and nothing of the message is written: the PACS's words stand, no Provenance, the
    decision recorded as not used; the refusal now names the version stored. Decided again on that,
    it is taken and names the operator."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "61")
    withdrawn = _version(http, obs_id)
    doc = engine.ingestor.messages.get(msg)
    assert doc["refused_against"] == [{"resource": f"Observation/{obs_id}", "versionId": withdrawn}]
    (ack,) = mllp(engine, _oru("OL35-61P", "OL35-X61", _obx(2, F1, "2", PACS, "C", "20261202100000"),
                               _obx(3, IMP, "", IMPRESSION, "F"), stamp="20261202130000").encode())
    assert b"MSA|AA" in ack, ack
    pacs = _version(http, obs_id)
    assert pacs != withdrawn
    ops = _operator(engine)
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome", r.text
    said = r.json()["issue"][0]["diagnostics"]
    assert "record changed after the refusal" in said and f"Observation/{obs_id}/_history/{withdrawn}" in said, said
    assert f"Observation/{obs_id}/_history/{pacs}" in said and "nothing of the message was written" in said, said
    obs = http.get(f"/fhir/Observation/{obs_id}").json()
    assert obs["valueString"] == PACS and obs["meta"]["versionId"] == pacs, obs
    assert written(engine, http, "OL35-61C", "Provenance") == []
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "quarantined" and doc["decision"]["used"] is False, doc.get("decision")
    assert doc["refused_against"] == [{"resource": f"Observation/{obs_id}", "versionId": pacs}]
    (audited,) = [_details(e) for e in _audited_replays(engine, msg) if _details(e).get("as") == "later"]
    assert audited["used"] == "false" and audited["ack"] == "AE", audited
    # decided again, on the version the refusal now names: taken, the operator named
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA" and r.json()["decided"]["used"] is True, r.text
    assert http.get(f"/fhir/Observation/{obs_id}").json()["valueString"] == FIXED
    (prov,) = written(engine, http, "OL35-61C", "Provenance")
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author", "verifier"]


def test_a_message_refused_before_versions_were_recorded_is_409_until_a_plain_replay_refuses_it_again(
        engine: Engine, http: TestClient) -> None:
    """A message refused before ordfix35 names no version (its ERR names the element and value, not the
    version): the decision fails closed -- 409, no replay entry, nothing written. A plain replay
    refuses it again against what is stored, recording the version; then it is decided."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "62")
    engine.ingestor.messages.messages.update(msg, {"refused_against": None})  # (as stored before ordfix35)
    ops = _operator(engine)
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert r.status_code == 409 and "refused before versions were recorded" in r.text, r.text
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "quarantined" and not doc.get("replays") and "decision" not in doc, doc.get("replays")
    assert _status(http, obs_id) == "entered-in-error"
    assert http.post(f"/admin/quarantine/{msg}/replay", headers=ops).json()["ack_code"] == "AE"
    assert engine.ingestor.messages.get(msg)["refused_against"] == [
        {"resource": f"Observation/{obs_id}", "versionId": _version(http, obs_id)}]
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    assert _status(http, obs_id) == "corrected"


def test_the_answer_the_message_and_both_audit_records_say_whether_the_decision_was_used(
        engine: Engine, http: TestClient) -> None:
    """Used: the answer's ``decided.used`` true, the message's ``decision`` and both audit records
    (the request's, the ingest's) ``used=true``. Not used -- the RIS's own later 13:00 correction taken
    first, its 12:00 one decided after is held by the sender's own clock (W): false everywhere, and
    its Provenance names nobody."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "63")
    ops = _operator(engine)
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops).json()
    assert r["ack_code"] == "AA" and r["decided"]["used"] is True, r
    assert engine.ingestor.messages.get(msg)["decision"] == {"at": r["decided"]["at"], "by": "ops-desk", "used": True}
    decided = [_details(e) for e in _audited_replays(engine, msg) if _details(e).get("as") == "later"]
    assert [d["used"] for d in decided] == ["true", "true"], decided

    msg12, obs_id, _, _ = _refused_correction(engine, http, "64")
    (ack,) = mllp(engine, _by("RIS", _oru("OL35-64D", "OL35-X64", _obx(2, F1, "2", "右肺上叶见钙化灶，较前相仿。", "C",
                                                                       "20261202100000"),
                                            _obx(3, IMP, "", IMPRESSION, "F"), stamp="20261202130000")).encode())
    assert b"MSA|AE" in ack
    assert http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'OL35-64D')}/replay?as=later",
                     headers=ops).json()["decided"]["used"] is True
    r = http.post(f"/admin/quarantine/{msg12}/replay?as=later", headers=ops).json()
    assert r["ack_code"] == "AA" and r["decided"]["used"] is False, r
    assert any(e["severity"] == "W" and "not later" in e["message"] for e in r["errors"]), r["errors"]
    assert engine.ingestor.messages.get(msg12)["decision"]["used"] is False
    decided = [_details(e) for e in _audited_replays(engine, msg12) if _details(e).get("as") == "later"]
    assert [d["used"] for d in decided] == ["false", "false"], decided
    (prov,) = written(engine, http, "OL35-64C", "Provenance")
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author"]


SAME, RED = "未见明显异常。", "红系比例减低。"


def _lab(n: str, control: str, stamp: str, *obx: str) -> str:
    """The lab's marrow morphology report (``_marrow``) under its own order and filler numbers."""
    return (_marrow(control, stamp, *obx).replace("OR35-BMF", f"OF35-{n}F").replace("OR35-BM^", f"OF35-{n}^")
            .replace("OR35BM", f"OF35BM{n}"))


def test_a_correction_of_the_second_of_two_lines_saying_the_same_words_replaces_its_own_line(
        engine: Engine, http: TestClient) -> None:
    """Two results say the same words (BM2, BM3): the lab's correction of BM3 (the whole report again)
    replaces BM3's line, the third -- matched by the word alone it replaced BM2's, the second, and the
    report read in another order than its results."""
    _ok = b"MSA|AA"
    assert _ok in post(http, _lab("1", "OF35-1", "20261202100000", _bm(1, "F"), _bm(2, "F", SAME), _bm(3, "F", SAME)))
    (report,) = written(engine, http, "OF35-1", "DiagnosticReport")
    assert _report_texts(http, report["id"]) == [f"增生明显活跃。\n{SAME}\n{SAME}"]
    assert _ok in post(http, _lab("1", "OF35-1C", "20261202110000", _bm(1, "F"), _bm(2, "F", SAME), _bm(3, "C", RED)))
    assert _report_texts(http, report["id"]) == [f"增生明显活跃。\n{SAME}\n{RED}"]


def test_a_withdrawn_line_saying_anothers_words_comes_back_in_its_place_not_over_the_other(
        engine: Engine, http: TestClient) -> None:
    """BM1 and BM2 say the same words; BM2 withdrawn, then the whole report sent final again over MLLP:
    three lines again, in the results' order -- the first's line neither replaced nor dropped."""
    (ack,) = mllp(engine, _lab("2", "OF35-2", "20261202100000", _bm(1, "F", SAME), _bm(2, "F", SAME),
                               _bm(3, "F")).encode())
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, "OF35-2", "DiagnosticReport")
    (ack,) = mllp(engine, _lab("2", "OF35-2W", "20261202110000", _bm(2, "W", SAME)).encode())
    assert b"MSA|AA" in ack, ack
    assert _report_texts(http, report["id"]) == [f"{SAME}\n{RED}"]
    (ack,) = mllp(engine, _lab("2", "OF35-2F", "20261202120000", _bm(1, "F", SAME), _bm(2, "C", SAME),
                               _bm(3, "F")).encode())
    assert b"MSA|AA" in ack, ack
    assert _report_texts(http, report["id"]) == [f"{SAME}\n{SAME}\n{RED}"]
