"""rvops26: review probes of opspage26 (the operator's quarantine page and the widened ``/admin``).

Real HL7 over ``POST /hl7v2`` into the real store, real staff sessions (the sign-in's own
``open_session``), real HTTP through FastAPI's app. Who may list/read/replay a refused message (the raw
text names the patient), CSRF on the replay, the audit of each naming the operator, and the
since/before filters' edges (400, never 500).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.audit.record import event_of
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from engine.messages import QUARANTINED
from tests.test_resident_record_ui import hl7, msh

ER7 = "x-application/hl7-v2+er7"
A, B = "FNXRMYY", "FNZYY"  # two hospitals of the shipped demo community
STATIC = Path(__file__).resolve().parent.parent / "engine" / "api" / "static" / "quarantine"


def _refused_message(inst: str, control: str, name: str = "李^秀英") -> bytes:
    """An ORU whose PID-3 holds no identifier: AE, quarantined, its raw text names the patient."""
    return hl7(msh("LIS", inst, "202503211100", "ORU^R01^ORU_R01", control),
               f"PID|1||^^^公安部^NNCHN||{name}||19880903|F",
               "ORC|RE|RV-O^HIS|RV-F^LIS||CM",
               "OBR|1|RV-O^HIS|RV-F^LIS|XCG^血常规^L|||202503210800||||||||BLD&血液|D9^王^医生||||||20250321103000|||F",
               "OBX|1|NM|HGB^血红蛋白^L||120|g/L|115-150|N|||F|||20250321100000")


def _post(engine: Any, http: Any, body: bytes) -> str:
    token = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
    r = http.post("/hl7v2", content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": ER7})
    assert r.status_code == 200, r.text
    return r.headers.get("x-hl7-ack-code") or ""


def _quarantined(engine: Any, control: str) -> dict[str, Any]:
    return next(d for d in engine.ingestor.messages.quarantined(limit=500) if d["control_id"] == control)


def _session(engine: Any, role: str, remit: str = "", name: str = "it.wu") -> tuple[dict[str, str], str]:
    person = StaffIdentity(name, role, "YBJ", "吴工", remit)
    token, session = engine.staff.open_session(person, engine.staff.roles[role], address="127.0.0.1",
                                               issuer="https://idp.ybj.example.cn")
    return {SESSION_COOKIE: token}, session.csrf


def _events(engine: Any) -> list[dict[str, Any]]:
    log = engine.audit
    return [event_of(d["data"]) for d in (log.get(seq) for seq in range(log.size)) if d is not None]


# --- findings ---------------------------------------------------------------------------------------

def test_a_remit_bound_operator_does_not_read_another_hospitals_refused_messages(engine: Any, http: Any) -> None:
    """An operator bound to hospital A (``--remit FNXRMYY``) lists and reads hospital B's refused
    messages, raw text and patient name included. A remit-bound auditor is kept to the remit on the
    reports and on /fhir (probe17); the quarantine ignores the remit altogether."""
    assert _post(engine, http, _refused_message(B, "RV26-B-1", "赵^机密")) == "AE"
    assert _post(engine, http, _refused_message(A, "RV26-A-1")) == "AE"
    other = _quarantined(engine, "RV26-B-1")["_id"]
    cookies, csrf = _session(engine, "operator", remit=A)
    listed = http.get("/admin/quarantine", cookies=cookies)
    assert listed.status_code == 200, listed.text
    facilities = {m["facility"] for m in listed.json()["items"]}
    shown = http.get(f"/admin/quarantine/{other}", cookies=cookies)
    assert facilities <= {A} and shown.status_code in (403, 404), (facilities, shown.status_code, shown.text[:300])


def test_a_far_past_instant_with_an_offset_is_a_400_not_a_500(engine: Any, http: Any) -> None:
    """``since=0001-01-01T00:00:00+08:00`` parses (it has its offset) but cannot be moved to UTC:
    ``astimezone`` raises OverflowError, which ``_instant`` does not catch -- a 500. Same at the far end."""
    cookies, _ = _session(engine, "operator")
    for name, value in (("since", "0001-01-01T00:00:00+08:00"), ("before", "9999-12-31T23:59:59-08:00")):
        r = http.get("/admin/quarantine", params={name: value}, cookies=cookies)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (name, r.status_code, r.text[:200])


# --- guards (found right) -----------------------------------------------------------------------------

def test_who_may_list_read_and_replay(engine: Any, http: Any, client_token: Any) -> None:
    assert _post(engine, http, _refused_message(B, "RV26-W-1")) == "AE"
    mid = _quarantined(engine, "RV26-W-1")["_id"]
    paths = ("/admin/quarantine", f"/admin/quarantine/{mid}", "/ui/quarantine/words")
    for role in ("auditor", "clinician"):
        cookies, csrf = _session(engine, role, name=f"x.{role}")
        for path in paths:
            assert http.get(path, cookies=cookies).status_code == 403, (role, path)
        r = http.post(f"/admin/quarantine/{mid}/replay", cookies=cookies, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403, (role, r.text)
        assert http.get("/ui/quarantine", cookies=cookies).status_code == 403
    # a bearer token of a person (not a staff session) holding the operator's very scopes
    user, _ = engine.auth.issue_token(subject="someone", kind="user", client_id="app",
                                      scopes=["user/MessageHeader.crs"])
    for path in paths:
        assert http.get(path, headers={"Authorization": f"Bearer {user}"}).status_code == 403, path
    assert http.post(f"/admin/quarantine/{mid}/replay", headers={"Authorization": f"Bearer {user}"}).status_code == 403
    # a resident's token
    resident, _ = engine.auth.issue_token(subject="r1", kind="patient", client_id="me", patient="p1",
                                          scopes=["patient/*.rs"])
    for path in paths:
        assert http.get(path, headers={"Authorization": f"Bearer {resident}"}).status_code in (401, 403), path
    # a system reader may not replay
    reader = client_token(engine, "system/MessageHeader.r")
    assert http.get(f"/admin/quarantine/{mid}", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert http.post(f"/admin/quarantine/{mid}/replay", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    # nobody signed in
    assert http.get("/admin/quarantine").status_code == 401
    assert http.get("/ui/quarantine", follow_redirects=False).status_code in (302, 303, 307)
    assert _quarantined(engine, "RV26-W-1").get("replays") in (None, [])


def test_an_operator_replay_needs_the_csrf_token_and_is_audited_by_name(engine: Any, http: Any) -> None:
    assert _post(engine, http, _refused_message(B, "RV26-C-1")) == "AE"
    mid = _quarantined(engine, "RV26-C-1")["_id"]
    cookies, csrf = _session(engine, "operator", name="it.wu26")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = http.post(f"/admin/quarantine/{mid}/replay", cookies=cookies, headers=headers)
        assert r.status_code == 403, r.text
    assert not _quarantined(engine, "RV26-C-1").get("replays")
    assert http.get("/admin/quarantine", cookies=cookies).status_code == 200
    assert http.get(f"/admin/quarantine/{mid}", cookies=cookies).json()["text"].count("李^秀英") == 1
    r = http.post(f"/admin/quarantine/{mid}/replay", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert [x["by"] for x in engine.ingestor.messages.get(mid)["replays"]] == ["it.wu26"]
    events = _events(engine)
    for kind in ("quarantine-list", "quarantine-show"):
        mine = [e for e in events if kind in json.dumps(e, ensure_ascii=False)]
        assert mine and all("it.wu26" in json.dumps(e.get("agent"), ensure_ascii=False) for e in mine), kind
    replays = [e for e in events if any(c.get("code") == "replay" for c in e.get("subtype") or ())]
    assert replays and any("it.wu26" in json.dumps(e.get("agent"), ensure_ascii=False) for e in replays)


def test_an_operator_session_still_may_not_post_hl7(engine: Any, http: Any) -> None:
    cookies, csrf = _session(engine, "operator")
    before = engine.ingestor.messages.count()
    r = http.post("/hl7v2", content=_refused_message(B, "RV26-H-1"), cookies=cookies,
                  headers={"X-CSRF-Token": csrf, "Content-Type": ER7})
    assert r.status_code == 403 and engine.ingestor.messages.count() == before


def test_since_before_filters_bound_the_list_and_its_total(engine: Any, http: Any) -> None:
    assert _post(engine, http, _refused_message(B, "RV26-F-1")) == "AE"
    at = _quarantined(engine, "RV26-F-1")["received_at"]
    cookies, _ = _session(engine, "operator")

    def total(**q: str) -> int:
        r = http.get("/admin/quarantine", params=q, cookies=cookies)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    assert total(since=at.replace("Z", "+00:00")) == 1  # at or after: the instant itself
    assert total(before=at.replace("Z", "+00:00")) == 0
    assert total(since="2000-01-01T08:00:00+08:00", before="2999-01-01T00:00:00Z") == 1
    assert total(since="2999-01-01T00:00:00Z") == 0
    for bad in ("2025-03-21", "2025-03-21T00:00:00", "yesterday", "2025-13-01T00:00:00Z"):
        r = http.get("/admin/quarantine", params={"since": bad}, cookies=cookies)
        assert r.status_code == 400, (bad, r.text)
    assert engine.ingestor.messages.count(QUARANTINED) == 1


def test_the_page_puts_message_bytes_on_the_page_as_text_only() -> None:
    """A hostile PID-5 (``<script>``) reaches the page only through textContent: no innerHTML,
    insertAdjacentHTML, outerHTML or document.write in the page's script, and the CSP forbids inline script."""
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html.replace(" ", "")  # no inline script for the CSP to have to allow


def test_a_hostile_name_comes_back_as_json_data(engine: Any, http: Any) -> None:
    assert _post(engine, http, _refused_message(B, "RV26-X-1", "<script>alert(1)</script>^<img src=x onerror=alert(2)>")) == "AE"
    mid = _quarantined(engine, "RV26-X-1")["_id"]
    cookies, _ = _session(engine, "operator")
    r = http.get(f"/admin/quarantine/{mid}", cookies=cookies)
    assert r.headers["content-type"].startswith("application/json")
    assert "<script>alert(1)</script>" in r.json()["text"]
    page = http.get("/ui/quarantine", cookies=cookies)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "alert(1)" not in page.text


def test_an_operator_session_does_not_write_fhir_message_headers(engine: Any, http: Any) -> None:
    """The page needs MessageHeader create only for ``/admin`` replay; roles.yaml gives the operator
    ``user/MessageHeader.crs``, so the same session now creates arbitrary MessageHeader records
    through ``/fhir`` (201, pointing at any patient) -- before the merge (``.rs``) a 403."""
    cookies, csrf = _session(engine, "operator")
    mh = {"resourceType": "MessageHeader", "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                                                           "code": "A04"},
          "source": {"endpoint": "urn:x"}, "focus": [{"reference": "Patient/p-123"}]}
    r = http.post("/fhir/MessageHeader", json=mh, cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403, (r.status_code, r.text[:300])


def test_an_operator_reads_only_refused_messages_not_every_accepted_one(engine: Any, http: Any) -> None:
    """``GET /admin/quarantine/{id}`` returns ANY stored message; the id is a hash of MSH-4 and MSH-10
    (``message_id``), so an operator who knows a hospital's control ids reads the raw text of accepted
    ADTs too -- every patient, not the refused ones the page is for."""
    from engine.messages import PROCESSED, message_id

    good = hl7(msh("HIS", B, "202503221000", "ADT^A04^ADT_A01", "RV26-OK-1"), "EVN|A04|20250322100000",
               "PID|1||320923199001010016^^^公安部^NNCHN~NH0001^^^FNZYY^MR||孙^正常||19900101|M", "PV1|1|O")
    assert _post(engine, http, good) == "AA"
    mid = message_id(B, "RV26-OK-1")
    assert engine.ingestor.messages.get(mid)["status"] == PROCESSED
    cookies, _ = _session(engine, "operator")
    r = http.get(f"/admin/quarantine/{mid}", cookies=cookies)
    assert r.status_code == 404, (r.status_code, r.text[:200])


def test_reading_a_stored_message_is_audited_against_the_patient_it_names(engine: Any, http: Any) -> None:
    """The raw text a signed-in operator reads names a patient the engine knows (the ADT made them),
    but the ``quarantine-show`` AuditEvent names no patient (no Patient entity): the resident's
    "who read my record" and a per-patient audit search never show this person's read."""
    from engine.messages import message_id

    good = hl7(msh("HIS", B, "202503221000", "ADT^A04^ADT_A01", "RV26-AU-1"), "EVN|A04|20250322100000",
               "PID|1||320923199001010016^^^公安部^NNCHN~NH0001^^^FNZYY^MR||孙^正常||19900101|M", "PV1|1|O")
    assert _post(engine, http, good) == "AA"
    cookies, _ = _session(engine, "operator", name="it.au26")
    assert http.get(f"/admin/quarantine/{message_id(B, 'RV26-AU-1')}", cookies=cookies).status_code in (200, 404)
    shows = [e for e in _events(engine) if "quarantine-show" in json.dumps(e, ensure_ascii=False)]
    if not shows:  # read refused (not a refused message): nothing to attribute
        return
    entities = json.dumps([x.get("what") for x in shows[-1].get("entity") or ()], ensure_ascii=False)
    assert "Patient/" in entities, entities
