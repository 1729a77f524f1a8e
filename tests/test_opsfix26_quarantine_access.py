"""opsfix26: the mends of rvops26's review of the operator's quarantine (``/admin/quarantine``).

Real HL7 over ``POST /hl7v2`` into the real store, real staff sessions (the sign-in's own
``open_session``), real HTTP through FastAPI's app. A remit-bound operator keeps to the remit on the
list, the detail and the replay (another hospital's message is 404 as an unknown one); the detail
answers for refused messages only, while the replay of an accepted one keeps working; the operator
role replays without a write scope on ``MessageHeader``; reading and replaying a refused message is
audited against the Patient the store knows it names.
"""

from __future__ import annotations

import json
from typing import Any

from engine.messages import PROCESSED, QUARANTINED, message_id
from tests.test_resident_record_ui import hl7, msh
from tests.test_rvrvops26_quarantine_access import _events, _post, _quarantined, _refused_message, _session

A, B = "FNXRMYY", "FNZYY"
NUMBER = "320923199001010016"


def _admitted(control: str) -> bytes:
    return hl7(msh("HIS", B, "202503221000", "ADT^A04^ADT_A01", control), "EVN|A04|20250322100000",
               f"PID|1||{NUMBER}^^^公安部^NNCHN~NH0001^^^{B}^MR||孙^正常||19900101|M", "PV1|1|O")


def test_a_remit_bound_operator_keeps_to_the_remit_on_list_detail_and_replay(engine: Any, http: Any) -> None:
    assert _post(engine, http, _refused_message(B, "OF26-B-1", "赵^机密")) == "AE"
    assert _post(engine, http, _refused_message(A, "OF26-A-1")) == "AE"
    other, own = _quarantined(engine, "OF26-B-1")["_id"], _quarantined(engine, "OF26-A-1")["_id"]
    cookies, csrf = _session(engine, "operator", remit=A, name="it.bound")
    listed = http.get("/admin/quarantine", cookies=cookies).json()
    assert [m["id"] for m in listed["items"]] == [own] and listed["total"] == 1
    named = http.get("/admin/quarantine", params={"facility": B}, cookies=cookies).json()
    assert named["total"] == 0 and named["items"] == []
    unknown = http.get("/admin/quarantine/m-000000000000000000000000", cookies=cookies)
    shown = http.get(f"/admin/quarantine/{other}", cookies=cookies)
    assert shown.status_code == 404 and "赵" not in shown.text
    # the same answer as for a message that does not exist: nothing says it does
    assert shown.json()["issue"][0]["diagnostics"].replace(other, "X") == \
        unknown.json()["issue"][0]["diagnostics"].replace("m-000000000000000000000000", "X")
    replayed = http.post(f"/admin/quarantine/{other}/replay", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert replayed.status_code == 404 and not engine.ingestor.messages.get(other).get("replays")
    # their own hospital's: read and replayed
    assert http.get(f"/admin/quarantine/{own}", cookies=cookies).status_code == 200
    r = http.post(f"/admin/quarantine/{own}/replay", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and [x["by"] for x in engine.ingestor.messages.get(own)["replays"]] == ["it.bound"]
    # an operator bound to nothing sees both; a system client too
    cookies, _ = _session(engine, "operator", name="it.all")
    assert http.get("/admin/quarantine", cookies=cookies).json()["total"] == 2
    assert http.get(f"/admin/quarantine/{other}", cookies=cookies).status_code == 200


def test_the_detail_is_for_refused_messages_and_an_accepted_one_still_replays(engine: Any, http: Any) -> None:
    assert _post(engine, http, _admitted("OF26-OK-1")) == "AA"
    mid = message_id(B, "OF26-OK-1")
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    cookies, csrf = _session(engine, "operator")
    assert http.get(f"/admin/quarantine/{mid}", cookies=cookies).status_code == 404
    assert http.get(f"/admin/quarantine/{mid}", headers=system).status_code == 404
    # the replay reaches it through its own path (a resend of an accepted message changes nothing)
    r = http.post(f"/admin/quarantine/{mid}/replay", headers=system)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert engine.ingestor.messages.get(mid)["status"] == PROCESSED
    # a refused one is shown, and once a replay lets it through it is no longer the quarantine's
    assert _post(engine, http, _refused_message(B, "OF26-Q-1")) == "AE"
    refused = _quarantined(engine, "OF26-Q-1")["_id"]
    assert http.get(f"/admin/quarantine/{refused}", cookies=cookies).status_code == 200
    fixed = _refused_message(B, "OF26-Q-1").replace("PID|1||^^^公安部^NNCHN".encode(),
                                                    f"PID|1||NH0002^^^{B}^MR".encode())
    r = http.post(f"/admin/quarantine/{refused}/replay", content=fixed, cookies=cookies,
                  headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert http.get(f"/admin/quarantine/{refused}", cookies=cookies).status_code == 404
    assert engine.ingestor.messages.count(QUARANTINED) == 0


def test_the_operator_role_replays_without_a_message_header_write_scope(engine: Any, http: Any) -> None:
    assert "user/MessageHeader.crs" not in engine.staff.roles["operator"].scopes
    assert not any(s.startswith("user/MessageHeader.") and "c" in s.split(".", 1)[1]
                   for s in engine.staff.roles["operator"].scopes)
    assert _post(engine, http, _refused_message(B, "OF26-R-1")) == "AE"
    mid = _quarantined(engine, "OF26-R-1")["_id"]
    cookies, csrf = _session(engine, "operator", name="it.role")
    session = http.get("/ui/session", cookies=cookies)
    if session.status_code == 200:  # the pages offer what the policy allows
        assert '"replay": true' in json.dumps(session.json()), session.text
    r = http.post(f"/admin/quarantine/{mid}/replay", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    mh = {"resourceType": "MessageHeader", "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                                                           "code": "A04"}, "source": {"endpoint": "urn:x"}}
    assert http.post("/fhir/MessageHeader", json=mh, cookies=cookies, headers={"X-CSRF-Token": csrf}).status_code == 403


def test_reading_and_replaying_a_refused_message_name_the_patient_it_names(engine: Any, http: Any) -> None:
    assert _post(engine, http, _admitted("OF26-AU-0")) == "AA"
    (patient,) = [r.split("/")[1] for r in engine.ingestor.messages.get(message_id(B, "OF26-AU-0"))["resources"]
                  if r.startswith("Patient/")]
    # the same person's lab result, refused: its national ID has a wrong check character
    bad = _refused_message(B, "OF26-AU-1").replace(
        "PID|1||^^^公安部^NNCHN".encode(), f"PID|1||320923199001010017^^^公安部^NNCHN~NH0001^^^{B}^MR".encode())
    assert _post(engine, http, bad) == "AE"
    mid = _quarantined(engine, "OF26-AU-1")["_id"]
    assert not [r for r in engine.ingestor.messages.get(mid).get("resources") or () if r.startswith("Patient/")]
    cookies, csrf = _session(engine, "operator", name="it.au")
    assert http.get(f"/admin/quarantine/{mid}", cookies=cookies).status_code == 200
    assert http.post(f"/admin/quarantine/{mid}/replay", cookies=cookies,
                     headers={"X-CSRF-Token": csrf}).json()["ack_code"] == "AE"
    events = _events(engine)
    show = [e for e in events if "quarantine-show" in json.dumps(e, ensure_ascii=False)][-1]
    replay = [e for e in events if any(c.get("code") == "replay" for c in e.get("subtype") or ())
              and "it.au" in json.dumps(e.get("agent"), ensure_ascii=False)]
    def whats(event: dict[str, Any]) -> list[str | None]:
        return [(x.get("what") or {}).get("reference") for x in event.get("entity") or ()]

    assert f"Patient/{patient}" in whats(show), json.dumps(show, ensure_ascii=False)
    # the request's record of the replay (the ingest's own names what the replay made: nothing here)
    assert any(f"Patient/{patient}" in whats(e) for e in replay), json.dumps(replay, ensure_ascii=False)
    # a refused message naming nobody the store knows names no patient
    assert _post(engine, http, _refused_message(B, "OF26-AU-2")) == "AE"
    nobody = _quarantined(engine, "OF26-AU-2")["_id"]
    assert http.get(f"/admin/quarantine/{nobody}", cookies=cookies).status_code == 200
    show = [e for e in _events(engine) if "quarantine-show" in json.dumps(e, ensure_ascii=False)][-1]
    assert not [x for x in show.get("entity") or () if "Patient/" in json.dumps(x.get("what"))]
