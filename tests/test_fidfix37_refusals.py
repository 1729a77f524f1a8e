"""fidfix37: rv37b's findings on fid37 -- what a hospital's bound client reads of other hospitals' clients on
``/fhir/AuditEvent`` (every path), whose count a corrected replay is (the site's operator's, or the sending hospital's
own), and who a staff operator's replay is audited as.

Real HL7 through ``POST /hl7v2`` as hospitals' bound system clients, the operator's
``/admin/quarantine/{id}/replay`` with real tokens and a real signed-in staff session (cookie and CSRF), ``/fhir``
and ``/admin`` over TestClient, into the real store and audit log on each backend (priv36's ``world``: an engine
alerting every 3 refusals)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.audit.events import STAFF_ROLE_SYSTEM, STAFF_SYSTEM
from engine.engine import Engine
from engine.messages import message_id
from tests.test_count36_refusals import _probe, _registered
from tests.test_fid37_refusal_view import _app_row, _by, _post_as
from tests.test_priv36_refusals import _refusal_records, world  # noqa: F401  (the fixture)
from tests.test_rvprivprobe27_admin import _bound_system
from tests.test_rvrvops26_quarantine_access import _session


def _site(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("site-fidfix37", "system/*.cruds")}


def _replays(engine: Engine) -> list[dict[str, Any]]:
    """The audit log's records of replays (the ``replay`` action), in order."""
    return [e for e in engine.audit.events() if any(c.get("code") == "replay" for c in e.get("subtype") or ())]


def _named(bundle: dict[str, Any], client: str) -> list[dict[str, Any]]:
    """The AuditEvents of a Bundle (matches and includes) with an agent identified as ``client``."""
    return [e["resource"] for e in bundle.get("entry") or () if e["resource"]["resourceType"] == "AuditEvent"
            for a in e["resource"].get("agent") or ()
            if ((a.get("who") or {}).get("identifier") or {}).get("value") == client]


def _total(http: TestClient, query: str, headers: dict[str, str]) -> int:
    r = http.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text[:500]
    return int(r.json()["total"])


def test_a_bound_client_reads_no_event_of_another_hospitals_client_by_any_path(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's bound HIS is refused for naming FNXRMYY's number, then reads FNXRMYY's Patient (both audited, naming
    ``his-fnzyy``). The site's own client finds both events by ``agent:identifier``; FNXRMYY's bound client reads
    neither -- not by search (nor its count), not by id, not by ``_history``, not as an ``_include`` of the Patient
    -- while its own reads, and the refusal's record naming FNZYY the institution, stay readable to it. The search
    answers for ``his-fnzyy`` what it answers for a client that never existed."""
    engine, http = world
    _registered(http, "FX1")
    his = _bound_system(engine, "FNZYY")
    assert ack_code_of(_post_as(http, his, _probe("FX1"))) == "AE"
    site, mine = _site(engine), _bound_system(engine, "FNXRMYY")
    found = http.get("/fhir/Patient", params={"identifier": "FX1"}, headers=site).json()
    (patient,) = [e["resource"]["id"] for e in found["entry"]]
    assert http.get(f"/fhir/Patient/{patient}", headers=his).status_code == 200
    assert http.get(f"/fhir/Patient/{patient}", headers=mine).status_code == 200

    query = "AuditEvent?agent:identifier=his-fnzyy&_count=200"
    theirs = http.get(f"/fhir/{query}", headers=site).json()
    ids = {e["id"] for e in _named(theirs, "his-fnzyy")}
    assert len(ids) >= 2, theirs  # the refused POST's record, and the Patient read's
    assert _total(http, query, mine) == _total(http, "AuditEvent?agent:identifier=no-such-client", mine) == 0
    assert _total(http, "AuditEvent?agent:identifier=his-fnzyy&_summary=count", mine) == 0
    every = http.get("/fhir/AuditEvent", params={"_count": "200"}, headers=mine).json()
    assert not _named(every, "his-fnzyy") and "his-fnzyy" not in str(every), every.get("total")
    time.sleep(0.01)  # (the events before this instant: the counting requests' own records are not among them)
    before = "AuditEvent?date=lt" + datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    counted = _total(http, f"{before}&_summary=count", mine)
    assert _total(http, f"{before}&_count=200", mine) == counted > 0
    assert counted < _total(http, f"{before}&_summary=count", site)
    assert _named(every, "his-fnxrmyy"), "its own reads stay its to read"
    assert any(c.get("code") == "member-number-refused" for e in every["entry"]
               for c in e["resource"].get("subtype") or ()), "the refusal's record (naming FNZYY) stays"
    for event_id in ids:
        assert http.get(f"/fhir/AuditEvent/{event_id}", headers=site).status_code == 200
        assert http.get(f"/fhir/AuditEvent/{event_id}", headers=mine).status_code == 404, event_id
        assert http.get(f"/fhir/AuditEvent/{event_id}/_history", headers=mine).status_code == 404, event_id
    included = {"_id": patient, "_revinclude": "AuditEvent:patient", "_count": "200"}
    assert _named(http.get("/fhir/Patient", params=included, headers=site).json(), "his-fnzyy")
    shown = http.get("/fhir/Patient", params=included, headers=mine).json()
    assert not _named(shown, "his-fnzyy") and _named(shown, "his-fnxrmyy"), shown
    assert "his-fnzyy" not in http.get(f"/fhir/Patient/{patient}/$everything", params={"_type": "AuditEvent"},
                                       headers=mine).text


def test_a_sending_hospitals_own_staff_replay_counts_under_it_and_names_the_person(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's LIS is refused for naming FNXRMYY's FX2 for 张三. An operator of FNZYY signed in to the quarantine page
    (a remit holding FNZYY) replays a corrected copy naming FX3: FNZYY asking again -- counted under FNZYY and its LIS
    row; the site's operator signed in with no remit replaying another is not. Each refusal's Security Alert and
    each replay's own record names the person who replayed it (sign-in name, name, role), never an Application of
    that name."""
    engine, http = world
    for n in ("FX2", "FX3", "FX4"):
        _registered(http, n)
    assert ack_code_of(_post_as(http, _bound_system(engine, "FNZYY"), _probe("FX2"))) == "AE"
    fnzyy, lis, audited = _by(engine, http, "institution", "FNZYY"), _app_row(engine, http, "FNZYY/LIS"), \
        len(_refusal_records(engine))
    doc_id = message_id("FNZYY", "FX2B")
    for n, (name, remit, counted) in enumerate((("it.fnzyy37", "FNZYY", 1), ("it.site37", "", 0)), start=1):
        cookies, csrf = _session(engine, "operator", remit=remit, name=name)
        corrected = _probe(f"FX{2 + n}").replace(f"FX{2 + n}B|", "FX2B|", 1)
        replays = len(_replays(engine))
        r = TestClient(http.app, cookies=cookies).post(f"/admin/quarantine/{doc_id}/replay",
                                                       content=corrected.encode(), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
        assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1, (name, "FNZYY's own staff counts as FNZYY")
        assert _app_row(engine, http, "FNZYY/LIS") == lis + 1
        assert _by(engine, http, "client", f"replay:{name}") == 1
        (record,) = _refusal_records(engine)[audited + n - 1:]
        assert record["details"].get("refusals") == (str(fnzyy + 1) if counted else None), record
        done = _replays(engine)[replays:]
        assert len(done) == 2, done  # the HTTP request's record, and the replay's own (``Ingestor._audit_replay``)
        for event in (record, *done):
            person = event["agent"][0]
            assert person["who"]["identifier"] == {"system": STAFF_SYSTEM, "value": name}, person
            assert person["who"]["display"] == "吴工" and person["role"][0]["coding"][0] == {
                "system": STAFF_ROLE_SYSTEM, "code": "operator"}, person
            assert not any(c.get("code") == "110150" for a in event["agent"][:1] for c in a["type"]["coding"])


def test_the_site_operators_corrections_alone_raise_no_client_alert_but_a_sending_client_does(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """The counts behind ``client_alert`` are sending clients' only: a client posting refused messages past the
    threshold still tells FNXRMYY's bound operator (fid37), and the site operator's ``replay:`` count past it
    does not tell it, whichever comes first (rv37b LOW 4)."""
    from tests.test_priv36_refusals import ALERT

    engine, http = world
    mine = _bound_system(engine, "FNXRMYY")
    rows = [n for n in engine.ingestor.refusals.of("FNXRMYY") if n["by"] == "client" and int(n["count"]) >= ALERT]
    sending = [r for r in rows if not str(r["key"]).startswith("replay:")]
    shown = http.get("/admin/fidelity", headers=mine).json()["institutions"].get("FNXRMYY", {})
    assert ("client_alert" in shown) == bool(sending), (rows, shown.keys())
    feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("fx-prober", "system/MessageHeader.c")}
    for n in range(ALERT):
        _registered(http, f"FXP{n}")
        assert ack_code_of(_post_as(http, feed, _probe(f"FXP{n}"))) == "AE"
    shown = http.get("/admin/fidelity", headers=mine).json()["institutions"]["FNXRMYY"]
    assert "client_alert" in shown and "fx-prober" not in str(shown), shown
