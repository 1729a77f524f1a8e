"""rvorder35: review probes of order35 -- the operator's decision "take as later"
(``POST /admin/quarantine/{id}/replay?as=later``) and a restored withdrawn line put back in its place in
the report text (``engine.merge_rules`` ``_lines`` / ``_line_place``).

Real HL7 over a real MLLP socket and ``POST /hl7v2``, ``/admin`` and ``/fhir`` through FastAPI's TestClient
with real tokens and real staff sessions, on each storage backend (``tests.module_store``). A probe that
shows a defect is a strict xfail naming its severity; the rest guard what was found sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by, _refused
from tests.test_msgtime33_withdrawal_time import _status
from tests.test_opspage26_quarantine import PHONE, _open, sign_in
from tests.test_ord40_owner_page import _shot
from tests.test_order35_as_later import _audited_replays, _details, _operator, _refused_correction
from tests.test_order35_line_place import _bm, _marrow
from tests.test_order35_quarantine_page import CHROMIUM, Browser, site
from tests.test_rvdocref32_probes import F1, IMP, _doc_texts, _obx, _oru, _report_texts, _stored
from tests.test_rvrvops26_quarantine_access import B, _session

__all__ = ["engine", "module_http", "site"]

engine = module_eng  # each test its own filler numbers and control ids (RO35-n... / OL35-9n...)

L1, L2, L3, IMPRESSION = "双肺纹理增粗。", "右肺上叶见结节影。", "左肺下叶见斑片影。", "慢性支气管炎。"
L2C, L3C = "右肺上叶见钙化灶。", "左肺下叶见条索影。"


def _ok(ack: bytes) -> None:
    assert b"MSA|AA" in ack, ack


def _four(control: str, filler: str, stamp: str = "20261202100000") -> str:
    """An imaging report of three findings and an impression (MSH-7 10:00)."""
    return _oru(control, filler, _obx(1, F1, "1", L1, "F"), _obx(2, F1, "2", L2, "F"), _obx(3, F1, "3", L3, "F"),
                _obx(4, IMP, "", IMPRESSION, "F"), stamp=stamp)


def _verified(engine: Engine, prov: dict) -> bool:
    targets = []
    for t in prov["target"]:
        rtype, rid, _, vid = t["reference"].split("/")
        targets.append(engine.repository.vread(rtype, rid, vid))
    return verify_provenance(prov, targets, engine.audit.keys)


# --- the restored line's place -------------------------------------------------------------------

def test_the_second_of_three_findings_restored_with_the_impression_goes_back_before_the_third(
        engine: Engine, http: TestClient) -> None:
    _ok(post(http, _four("RO35-1", "RO35-X1")))
    doc_id, report_id = _stored(engine, http, "RO35-1")
    _ok(post(http, _oru("RO35-1W", "RO35-X1", _obx(2, F1, "2", L2, "W"), stamp="20261202110000")))
    assert _report_texts(http, report_id) == [f"{L1}\n{L3}\n{IMPRESSION}"]
    _ok(post(http, _oru("RO35-1C", "RO35-X1", _obx(2, F1, "2", L2C, "C"), _obx(4, IMP, "", IMPRESSION, "F"),
                        stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{L1}\n{L2C}\n{L3}\n{IMPRESSION}"] == _doc_texts(http, doc_id)


def test_two_withdrawn_findings_restored_in_reverse_order_keep_the_report_order_over_mllp(
        engine: Engine, http: TestClient) -> None:
    (ack,) = mllp(engine, _four("RO35-2", "RO35-X2").encode())
    _ok(ack)
    doc_id, report_id = _stored(engine, http, "RO35-2")
    (ack,) = mllp(engine, _oru("RO35-2W", "RO35-X2", _obx(2, F1, "2", L2, "W"), _obx(3, F1, "3", L3, "W"),
                               stamp="20261202110000").encode())
    _ok(ack)
    assert _report_texts(http, report_id) == [f"{L1}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    (ack,) = mllp(engine, _oru("RO35-2C3", "RO35-X2", _obx(3, F1, "3", L3C, "C"), _obx(4, IMP, "", IMPRESSION, "F"),
                               stamp="20261202120000").encode())
    _ok(ack)
    assert _report_texts(http, report_id) == [f"{L1}\n{L3C}\n{IMPRESSION}"]
    (ack,) = mllp(engine, _oru("RO35-2C2", "RO35-X2", _obx(2, F1, "2", L2C, "C"), _obx(4, IMP, "", IMPRESSION, "F"),
                               stamp="20261202130000").encode())
    _ok(ack)
    assert _report_texts(http, report_id) == [f"{L1}\n{L2C}\n{L3C}\n{IMPRESSION}"] == _doc_texts(http, doc_id)


def test_two_withdrawn_findings_restored_together_come_back_in_the_report_order(
        engine: Engine, http: TestClient) -> None:
    """Both middle findings withdrawn in one message, both corrected in one message with the impression:
    each goes back to its place (whatever order the write meets them in), report and document alike;
    an edit of the first finding in the same message replaces its words in place."""
    _ok(post(http, _four("RO35-3", "RO35-X3")))
    doc_id, report_id = _stored(engine, http, "RO35-3")
    _ok(post(http, _oru("RO35-3W", "RO35-X3", _obx(2, F1, "2", L2, "W"), _obx(3, F1, "3", L3, "W"),
                        stamp="20261202110000")))
    _ok(post(http, _oru("RO35-3C", "RO35-X3", _obx(1, F1, "1", "双肺纹理清晰。", "C"), _obx(2, F1, "2", L2C, "C"),
                        _obx(3, F1, "3", L3C, "C"), _obx(4, IMP, "", IMPRESSION, "F"), stamp="20261202120000")))
    assert (_report_texts(http, report_id) == [f"双肺纹理清晰。\n{L2C}\n{L3C}\n{IMPRESSION}"]
            == _doc_texts(http, doc_id))


def test_a_withdrawn_line_saying_the_same_words_as_another_comes_back_over_mllp(
        engine: Engine, http: TestClient) -> None:
    same = "未见明显异常。"
    (ack,) = mllp(engine, _marrow("RO35-4", "20261202100000", _bm(1, "F"), _bm(2, "F", same),
                                  _bm(3, "F", same)).encode())
    _ok(ack)
    (report,) = written(engine, http, "RO35-4", "DiagnosticReport")
    (ack,) = mllp(engine, _marrow("RO35-4W", "20261202110000", _bm(2, "W", same)).encode())
    _ok(ack)
    (ack,) = mllp(engine, _marrow("RO35-4F", "20261202120000", _bm(1, "F"), _bm(2, "C", same),
                                  _bm(3, "F", same)).encode())
    _ok(ack)
    assert _report_texts(http, report["id"]) == [f"增生明显活跃。\n{same}\n{same}"]


# --- who may decide ------------------------------------------------------------------------------

def test_a_resident_an_auditor_and_another_hospitals_bound_client_may_not_decide(
        engine: Engine, http: TestClient) -> None:
    """A resident's token: 403; an auditor's session: 403; a system client bound to another hospital
    (``huren client add --institution``): 404, as for no message; nothing replayed by any of them. The
    sender's own bound client decides, named by its client id."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "91")
    bare = TestClient(http.app)
    resident, _ = engine.auth.issue_token(subject="person-ro35", kind="patient", client_id="phr",
                                          scopes=["patient/*.rs"], patient="pt-ro35")
    r = bare.post(f"/admin/quarantine/{msg}/replay?as=later", headers={"Authorization": f"Bearer {resident}"})
    assert r.status_code in (401, 403) and r.json()["resourceType"] == "OperationOutcome", r.text
    auditor, csrf = _session(engine, "auditor", name="aud.ro35")
    r = bare.post(f"/admin/quarantine/{msg}/replay?as=later", cookies=auditor, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403, r.text
    other, _ = engine.auth.issue_token(subject="desk-b", kind="system", client_id="desk-b",
                                       scopes=["system/MessageHeader.cr"], extra={"institution": B})
    r = bare.post(f"/admin/quarantine/{msg}/replay?as=later", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404, r.text
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "quarantined" and not doc.get("replays"), doc.get("replays")
    assert _status(http, obs_id) == "entered-in-error"
    own, _ = engine.auth.issue_token(subject="desk-a", kind="system", client_id="desk-a",
                                     scopes=["system/MessageHeader.cr"], extra={"institution": "FNXRMYY"})
    r = bare.post(f"/admin/quarantine/{msg}/replay?as=later", headers={"Authorization": f"Bearer {own}"})
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    (prov,) = written(engine, http, "OL35-91C", "Provenance")
    assert prov["agent"][-1]["who"]["identifier"] == {"system": "urn:huren:client", "value": "desk-a"}, prov["agent"]


# --- twice, signed, not leaking ------------------------------------------------------------------

def test_twice_in_a_row_the_second_is_409_and_the_decided_provenance_verifies(
        engine: Engine, http: TestClient) -> None:
    """The decision taken, asking it again is 409 (processed: nothing to decide), no second replay entry,
    no second Provenance; the decided Provenance's source signature verifies over the versions it names
    (the operator's agent added before signing, not after)."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "92")
    ops = _operator(engine)
    assert http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops).json()["ack_code"] == "AA"
    again = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert again.status_code == 409 and again.json()["resourceType"] == "OperationOutcome", again.text
    doc = engine.ingestor.messages.get(msg)
    assert [e.get("as") for e in doc["replays"]] == ["later"], doc["replays"]
    (prov,) = written(engine, http, "OL35-92C", "Provenance")
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author", "verifier"]
    assert prov.get("signature") and _verified(engine, prov)
    assert len([e for e in _audited_replays(engine, msg) if _details(e).get("as") == "later"]) == 2


def test_the_decision_does_not_reach_the_next_message(engine: Engine, http: TestClient) -> None:
    """After one message is decided later, the PACS withdrawing the corrected result again (13:00) and the
    RIS's next correction of another report (both over MLLP) are refused as before: the decision was for
    that one message's write."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "93")
    assert http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine)).json()["ack_code"] == "AA"
    assert _status(http, obs_id) == "corrected"
    from tests.test_msgfix34_cross_sender import _withdrawal
    (ack,) = mllp(engine, _withdrawal("OL35-93W2", "OL35-X93", "20261202130000").encode())
    _refused(engine, ack, "OL35-93W2", "OBX^1^11", "RIS")
    assert _status(http, obs_id) == "corrected"
    _, obs2, _, _ = _refused_correction(engine, http, "94")  # (its own asserts: refused 206, not taken)
    assert _status(http, obs2) == "entered-in-error"
    assert not engine.ingestor.messages.get(message_id("FNXRMYY", "OL35-93W2")).get("replays")


def test_a_decision_that_answered_nothing_is_not_reported_as_taken(engine: Engine, http: TestClient) -> None:
    msg12, obs_id, _, _ = _refused_correction(engine, http, "95")
    newer = "右肺上叶见钙化灶，较前相仿。"
    (ack,) = mllp(engine, _by("RIS", _oru("OL35-95D", "OL35-X95", _obx(2, F1, "2", newer, "C", "20261202100000"),
                                            _obx(3, IMP, "", IMPRESSION, "F"), stamp="20261202130000")).encode())
    assert b"MSA|AE" in ack
    ops = _operator(engine)
    assert http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'OL35-95D')}/replay?as=later",
                     headers=ops).json()["ack_code"] == "AA"
    r = http.post(f"/admin/quarantine/{msg12}/replay?as=later", headers=ops).json()
    assert r["ack_code"] == "AA" and any(e["severity"] == "W" and "not later" in e["message"] for e in r["errors"]), r
    (prov,) = written(engine, http, "OL35-95C", "Provenance")
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author"]
    assert "decided" not in r or r["decided"].get("used") is False, r


def test_the_decision_does_not_override_a_version_stored_after_the_refusal(engine: Engine, http: TestClient) -> None:
    msg, obs_id, _, _ = _refused_correction(engine, http, "96")
    shown = engine.ingestor.messages.get(msg)["errors"][0]["message"]
    assert "PACS" in shown
    pacs = "右肺上叶结节影，建议复查。"
    (ack,) = mllp(engine, _oru("OL35-96P", "OL35-X96", _obx(2, F1, "2", pacs, "C", "20261202100000"),
                               _obx(3, IMP, "", IMPRESSION, "F"), stamp="20261202130000").encode())
    _ok(ack)
    assert http.get(f"/fhir/Observation/{obs_id}").json().get("valueString") == pacs
    http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert http.get(f"/fhir/Observation/{obs_id}").json().get("valueString") == pacs


# --- the page at 390 px (headless Chromium, the real app under uvicorn) ----------------------------

def _inside(b: Browser, selector: str) -> dict:
    box = json.loads(b.eval(f"JSON.stringify(document.querySelector('{selector}').getBoundingClientRect())"))
    assert box["width"] > 0 and box["left"] >= 0 and box["right"] <= b.eval("window.innerWidth") + 0.5, (selector, box)
    return box


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_on_a_phone_the_confirmation_fits_and_the_answer_says_who_decided(site, shots: Path) -> None:
    """At 390 px: the yellow box and its button inside the screen; the confirmation dialog (its Chinese text,
    both buttons) inside the screen, nothing sideways; confirmed, the answer says the decision and who."""
    engine, base = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        sign_in(b, engine, base, "it.ro35", "operator", "罗运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")
        _open(b, "OQ35-3C")
        b.eval("document.querySelector('#later-box').scrollIntoView({block: 'center'}); true")
        _inside(b, "#later-box")
        _inside(b, "#later")
        _shot(b, "11-later-box-phone", shots, full=False)  # (the viewport: readable at 390 px)
        b.eval("document.querySelector('#later').click(); true")
        b.wait_for("document.querySelector('#confirm-later').open")
        box = _inside(b, "#confirm-later")
        assert box["top"] >= 0 and box["bottom"] <= b.eval("window.innerHeight") + 0.5, box
        _inside(b, "#confirm-later-yes")
        _inside(b, "#confirm-later-no")
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _shot(b, "12-confirm-phone", shots, full=False)  # (the viewport: readable at 390 px)
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-later-yes').click(); true")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert "已按较新处理：决定人 it.ro35" in said, said
        b.eval("document.querySelector('#replay-said').scrollIntoView({block: 'center'}); true")
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _shot(b, "13-taken-phone", shots, full=False)  # (the viewport: readable at 390 px)
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "OQ35-3C"))
        assert doc["status"] == "processed" and doc["replays"][-1] | {"at": ""} == {
            "at": "", "by": "it.ro35", "as": "later", "previous_reason": doc["replays"][-1]["previous_reason"],
            "previous_status": "quarantined",
            # who replayed, as a person (fidfix37: a staff replayer is recorded as the person, not a client)
            "client": "huren-staff-pages", "display": "罗运维", "kind": "user", "role": "operator"}, doc["replays"]
    finally:
        b.close()


def test_a_message_of_a_batch_refused_for_its_order_is_decided_alone(engine: Engine, http: TestClient) -> None:
    """One batch (BHS/BTS, POST /hl7v2): the RIS's report, the PACS's withdrawal, the RIS's correction --
    the correction refused (206) against the withdrawal the batch itself wrote. Decided later, it alone
    is replayed: the result corrected, its line back in place, the batch's other messages untouched
    (no replay entry, their Provenances naming no operator)."""
    from tests.test_hl7probe21_batch import batch
    from tests.test_msgfix34_cross_sender import _correction, _withdrawal
    from tests.test_rvdocref32_probes import _three
    parts = [_by("RIS", _three("RO35-B1", "RO35-XB")), _withdrawal("RO35-B2", "RO35-XB", "20261202110000"),
             _by("RIS", _correction("RO35-B3", "RO35-XB", "20261202120000"))]
    post(http, batch(*(p.encode() for p in parts), file=False).decode())
    docs = {c: engine.ingestor.messages.get(message_id("FNXRMYY", c)) for c in ("RO35-B1", "RO35-B2", "RO35-B3")}
    assert [d["status"] for d in docs.values()] == ["processed", "processed", "quarantined"], docs
    assert any(str(e.get("code")) == "206" for e in docs["RO35-B3"]["errors"]), docs["RO35-B3"]["errors"]
    doc_id, report_id = _stored(engine, http, "RO35-B1")
    assert _report_texts(http, report_id) == ["双肺纹理增粗。\n慢性支气管炎。"]
    r = http.post(f"/admin/quarantine/{docs['RO35-B3']['_id']}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    from tests.test_msgfix34_cross_sender import FIXED
    assert _report_texts(http, report_id) == [f"双肺纹理增粗。\n{FIXED}\n慢性支气管炎。"] == _doc_texts(http, doc_id)
    for control in ("RO35-B1", "RO35-B2"):
        assert not engine.ingestor.messages.get(message_id("FNXRMYY", control)).get("replays")
        for prov in written(engine, http, control, "Provenance"):
            assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author"], prov["agent"]
