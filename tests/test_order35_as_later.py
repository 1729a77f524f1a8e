"""order35: the operator's decision for a message refused because which of it and a stored result is later
cannot be told (ERR-3 206, ``merge_rules.Untimely``): ``POST /admin/quarantine/{id}/replay?as=later``
replays the stored bytes with what cannot be told answered "later" for that one message; its Provenance
names the operator as the agent who decided, the replay's answer and the stored message note it (severity
I at the result's OBX-11; an information note, not an ACK's ERR), the replay's entry says who and when, and so do both audit records. A plain replay
stays refused; a message whose own MSH-7 is unusable (102), one refused for anything else, or a body
with it, is not decided; the sender's own MSH-7 showing the message older still holds it.

Real HL7 over a real MLLP socket and ``POST /hl7v2``, ``/admin`` through FastAPI's TestClient with real
tokens, on each storage backend (``tests.module_store``)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from engine.audit.record import event_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import FIXED, _by, _correction, _line, _refused, _withdrawal
from tests.test_msgtime33_withdrawal_time import LINE, _status
from tests.test_rvdocref32_probes import _doc_texts, _report_texts, _stored, _three
from tests.test_rvrvops26_quarantine_access import A, B, _session

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (OL35-n...)

FIRST, IMPRESSION = "双肺纹理增粗。", "慢性支气管炎。"


def _operator(engine: Engine, scopes: str = "system/MessageHeader.cr", client: str = "ops-desk") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, scopes)}


def _refused_correction(engine: Engine, http: TestClient, n: str) -> tuple[str, str, str, str]:
    """The RIS's report (10:00), the PACS's withdrawal of its second line (11:00, taken), the RIS's
    correction of it (12:00) over MLLP: AE 206 at OBX^1^11 -- (message id, observation, document, report)."""
    (ack,) = mllp(engine, _by("RIS", _three(f"OL35-{n}", f"OL35-X{n}")).encode())
    assert b"MSA|AA" in ack, ack
    doc_id, report_id = _stored(engine, http, f"OL35-{n}")
    obs_id = _line(engine, http, f"OL35-{n}")
    (ack,) = mllp(engine, _withdrawal(f"OL35-{n}W", f"OL35-X{n}", "20261202110000").encode())
    assert b"MSA|AA" in ack, ack
    (ack,) = mllp(engine, _by("RIS", _correction(f"OL35-{n}C", f"OL35-X{n}", "20261202120000")).encode())
    err = _refused(engine, ack, f"OL35-{n}C", "OBX^1^11", "PACS")
    assert "|206^" in err, err
    assert _status(http, obs_id) == "entered-in-error"
    return message_id("FNXRMYY", f"OL35-{n}C"), obs_id, doc_id, report_id


def _audited_replays(engine: Engine, message: str) -> list[dict]:
    log = engine.audit
    events = [event_of(d["data"]) for d in (log.get(seq) for seq in range(log.size)) if d is not None]
    return [e for e in events if any(c.get("code") == "replay" for c in e.get("subtype") or ())
            and message in json.dumps(e, ensure_ascii=False)]


def _details(event: dict) -> dict[str, str]:
    return {d["type"]: d["valueString"] for e in event.get("entity") or () for d in e.get("detail") or ()}


def test_a_plain_replay_is_refused_again_and_as_later_takes_it_naming_the_operator(
        engine: Engine, http: TestClient) -> None:
    msg, obs_id, doc_id, report_id = _refused_correction(engine, http, "1")
    ops = _operator(engine)
    again = http.post(f"/admin/quarantine/{msg}/replay", headers=ops)
    assert again.status_code == 200 and again.json()["ack_code"] == "AE", again.text
    assert [e["code"] for e in again.json()["errors"]] == ["206"], again.json()
    assert _status(http, obs_id) == "entered-in-error"

    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["ack_code"] == "AA" and answer["status"] == "processed", answer
    assert answer["as"] == "later" and answer["decided"]["by"] == "ops-desk", answer
    (note,) = [e for e in answer["errors"] if "operator's decision" in e["message"]]
    assert note["severity"] == "I" and note["location"] == "OBX-11" and "PACS" in note["message"], note
    assert "MSA|AA" in answer["ack"], answer["ack"]
    # the correction is taken: the result corrected, its line back in its place in report and document
    obs = http.get(f"/fhir/Observation/{obs_id}").json()
    assert obs["status"] == "corrected" and obs["valueString"] == FIXED, obs
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    # its Provenance names the RIS's institution as author and the operator as the one who decided
    (prov,) = written(engine, http, "OL35-1C", "Provenance")
    (decider,) = [a for a in prov["agent"] if a["type"]["coding"][0]["code"] == "verifier"]
    assert decider["who"]["identifier"] == {"system": "urn:huren:client", "value": "ops-desk"}, decider
    assert "later" in decider["role"][0]["text"]
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author", "verifier"]
    assert f"Observation/{obs_id}/_history/" in json.dumps(prov["target"])
    # the stored message records the decision: who, when
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "processed"
    assert [(e["by"], e.get("as")) for e in doc["replays"]] == [("ops-desk", None), ("ops-desk", "later")]
    assert doc["replays"][-1]["at"] == answer["decided"]["at"]
    assert any("operator's decision" in e["message"] and e["severity"] == "I" for e in doc["errors"]), doc["errors"]
    # both audit records of the decided replay say so (the request's and the ingest's), the plain one not
    records = _audited_replays(engine, msg)
    decided = [e for e in records if _details(e).get("as") == "later"]
    assert len(decided) == 2 and all(_details(e).get("decided-by") == "ops-desk" for e in decided), records
    assert len(records) == 4, [_details(e) for e in records]


def test_only_a_message_refused_because_its_order_cannot_be_told_is_decided(engine: Engine, http: TestClient) -> None:
    """A message whose own MSH-7 is unreadable (ERR-3 102), an accepted one, one refused for another reason:
    409, nothing replayed, no replay entry; a body with as=later: 400; a value other than later: 4xx; a
    client that may only read the quarantine: 403."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "2")
    ops = _operator(engine)
    # the RIS's own unreadable-MSH-7 withdrawal over its final: 102 at MSH^1^7
    assert b"MSA|AA" in post(http, _by("RIS", _three("OL35-2B", "OL35-X2B")))
    ack = post(http, _by("RIS", _withdrawal("OL35-2BW", "OL35-X2B", "2026120211OOOO")))
    assert b"MSA|AE" in ack and "|MSH^1^7|102^" in err_lines(ack)[0], ack
    unusable = message_id("FNXRMYY", "OL35-2BW")
    r = http.post(f"/admin/quarantine/{unusable}/replay?as=later", headers=ops)
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert "MSH-7" in r.text and "corrected copy" in r.text, r.text
    assert not engine.ingestor.messages.get(unusable).get("replays")
    accepted = message_id("FNXRMYY", "OL35-2")
    assert http.post(f"/admin/quarantine/{accepted}/replay?as=later", headers=ops).status_code == 409
    ack = post(http, _three("OL35-2N", "OL35-X2N").replace("|FNXRMYY|HUREN|", "|FNNOSUCH|HUREN|", 1))
    assert b"MSA|AR" in ack, ack
    other = message_id("FNNOSUCH", "OL35-2N")
    assert http.post(f"/admin/quarantine/{other}/replay?as=later", headers=ops).status_code == 409
    body = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=ops | {"Content-Type": "text/plain"},
                     content=_by("RIS", _correction("OL35-2C", "OL35-X2", "20261202120000")))
    assert body.status_code == 400, body.text
    assert http.post(f"/admin/quarantine/{msg}/replay?as=older", headers=ops).status_code in (400, 422)
    reader = _operator(engine, "system/MessageHeader.r", "ops-reader")
    assert http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=reader).status_code == 403
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "quarantined" and not doc.get("replays"), doc.get("replays")
    assert _status(http, obs_id) == "entered-in-error"


def test_the_senders_own_clock_still_holds_an_older_message_and_names_no_operator(
        engine: Engine, http: TestClient) -> None:
    """Two RIS corrections (12:00, 13:00) after the PACS's withdrawal, both refused. The 13:00 one decided
    later: taken. The 12:00 one then replayed as later: the stored version is the RIS's own 13:00
    statement, which its MSH-7 shows later -- held (AA, W at OBX^1^11), the decision unused: its
    Provenance names no operator and states no version of the result."""
    msg12, obs_id, _, _ = _refused_correction(engine, http, "3")
    (ack,) = mllp(engine, _by("RIS", _correction("OL35-3D", "OL35-X3", "20261202130000")
                                 .replace(FIXED, "右肺上叶见钙化灶，较前相仿。")).encode())
    _refused(engine, ack, "OL35-3D", "OBX^1^11", "PACS")
    ops = _operator(engine)
    msg13 = message_id("FNXRMYY", "OL35-3D")
    assert http.post(f"/admin/quarantine/{msg13}/replay?as=later", headers=ops).json()["ack_code"] == "AA"
    assert http.get(f"/fhir/Observation/{obs_id}").json()["valueString"] == "右肺上叶见钙化灶，较前相仿。"
    r = http.post(f"/admin/quarantine/{msg12}/replay?as=later", headers=ops).json()
    assert r["ack_code"] == "AA", r
    (held,) = [e for e in r["errors"] if "not later" in e["message"]]
    assert held["severity"] == "W" and held["location"] == "OBX-11", held
    assert not [e for e in r["errors"] if "operator's decision" in e["message"]], r["errors"]
    assert http.get(f"/fhir/Observation/{obs_id}").json()["valueString"] == "右肺上叶见钙化灶，较前相仿。"
    (prov,) = written(engine, http, "OL35-3C", "Provenance")
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author"], prov["agent"]
    assert f"Observation/{obs_id}/" not in json.dumps(prov["target"])
    assert LINE not in _report_texts(http, _stored(engine, http, "OL35-3")[1])[0]


def test_the_replays_access_and_remit_rules_hold_for_the_decision(engine: Engine, http: TestClient) -> None:
    """A staff session: a clinician is 403; an operator bound to another hospital's remit is 404 (as for
    an unknown message); without the session's CSRF token, 403; an operator bound to the sender's
    hospital decides -- named in the Provenance by their sign-in and name."""
    msg, obs_id, _, _ = _refused_correction(engine, http, "4")
    page = TestClient(http.app)  # (the module's client carries a system token, which a session does not)
    clinician, csrf = _session(engine, "clinician", name="dr.li35")
    assert page.post(f"/admin/quarantine/{msg}/replay?as=later", cookies=clinician,
                     headers={"X-CSRF-Token": csrf}).status_code == 403
    elsewhere, csrf = _session(engine, "operator", remit=B, name="it.b35")
    assert page.post(f"/admin/quarantine/{msg}/replay?as=later", cookies=elsewhere,
                     headers={"X-CSRF-Token": csrf}).status_code == 404
    mine, csrf = _session(engine, "operator", remit=A, name="it.a35")
    assert page.post(f"/admin/quarantine/{msg}/replay?as=later", cookies=mine).status_code == 403
    assert engine.ingestor.messages.get(msg)["status"] == "quarantined"
    r = page.post(f"/admin/quarantine/{msg}/replay?as=later", cookies=mine, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _status(http, obs_id) == "corrected"
    (prov,) = written(engine, http, "OL35-4C", "Provenance")
    assert prov["agent"][-1]["who"] == {"identifier": {"system": "urn:huren:staff", "value": "it.a35"},
                                        "display": "吴工"}, prov["agent"]
    assert engine.ingestor.messages.get(msg)["replays"][-1]["by"] == "it.a35"
