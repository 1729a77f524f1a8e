"""fidfix37: rv37b's findings on fid37 -- what a hospital's bound client reads of other hospitals' clients' message
traffic on ``/fhir/AuditEvent`` (every path), whose count a corrected replay is (the site's operator's, or the sending hospital's
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
from tests.test_rvidentity32_probes import adt
from tests.test_rvprivprobe27_admin import _bound_system
from tests.test_rvrvops26_quarantine_access import _session


def _site(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("site-fidfix37", "system/*.cruds")}


def _replays(engine: Engine) -> list[dict[str, Any]]:
    """The audit log's records of replays (the ``replay`` action), in order."""
    return [e for e in engine.audit.events() if any(c.get("code") == "replay" for c in e.get("subtype") or ())]


def _codes(event: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in event.get("subtype") or ()}


def _named(bundle: dict[str, Any], client: str) -> list[dict[str, Any]]:
    """The AuditEvents of a Bundle (matches and includes) with an agent identified as ``client``."""
    return [e["resource"] for e in bundle.get("entry") or () if e["resource"]["resourceType"] == "AuditEvent"
            for a in e["resource"].get("agent") or ()
            if ((a.get("who") or {}).get("identifier") or {}).get("value") == client]


def _total(http: TestClient, query: str, headers: dict[str, str]) -> int:
    r = http.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text[:500]
    return int(r.json()["total"])


def test_a_bound_client_reads_no_traffic_event_of_another_hospitals_client_by_any_path(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's bound HIS is refused for naming FNXRMYY's number, and registers a patient of its own (AA): two records
    of its message traffic naming ``his-fnzyy``. The site's own client finds both by ``agent:identifier``;
    FNXRMYY's bound client reads neither -- not by search (nor its count), not by id, not by ``_history``, not as a
    ``_revinclude`` of the Patient nor in its ``$everything`` -- the search answering what it answers for a client
    that never existed; while the refusal's record naming FNZYY the institution, and the access events (its own
    read, and FNZYY's HIS's read of the same Patient: probe20's rule) stay readable to it."""
    engine, http = world
    _registered(http, "FX1")
    his = _bound_system(engine, "FNZYY")
    assert ack_code_of(_post_as(http, his, _probe("FX1"))) == "AE"
    registered = adt("FXA1A", "FXA1^^^FNZYY^MR", "李^五", "19800101", "M").replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)
    assert ack_code_of(_post_as(http, his, registered)) == "AA"
    site, mine = _site(engine), _bound_system(engine, "FNXRMYY")
    (patient,) = [e["resource"]["id"] for e in http.get("/fhir/Patient", params={"identifier": "FXA1"},
                                                         headers=site).json()["entry"]]
    assert http.get(f"/fhir/Patient/{patient}", headers=his).status_code == 200
    assert http.get(f"/fhir/Patient/{patient}", headers=mine).status_code == 200

    query = "AuditEvent?agent:identifier=his-fnzyy&_count=200"
    theirs = _named(http.get(f"/fhir/{query}", headers=site).json(), "his-fnzyy")
    traffic = {e["id"] for e in theirs if _codes(e) & {"hl7v2-receive"}}
    assert len(traffic) == 2, theirs  # the refused POST's record, and the registration's
    shown = _named(http.get(f"/fhir/{query}", headers=mine).json(), "his-fnzyy")
    assert shown and all(_codes(e) == {"read"} for e in shown), shown  # its read of the Patient: an access
    assert _total(http, "AuditEvent?agent:identifier=his-fnzyy&_summary=count", mine) == len(shown)
    every = http.get("/fhir/AuditEvent", params={"_count": "200"}, headers=mine).json()
    assert not traffic & {e["resource"]["id"] for e in every["entry"]}, every.get("total")
    assert _named(every, "his-fnxrmyy"), "its own reads stay its to read"
    assert any("member-number-refused" in _codes(e["resource"]) for e in every["entry"]), "the refusal's record stays"
    time.sleep(0.01)  # (the events before this instant: the counting requests' own records are not among them)
    before = "AuditEvent?date=lt" + datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    counted = _total(http, f"{before}&_summary=count", mine)
    assert _total(http, f"{before}&_count=200", mine) == counted > 0
    assert counted <= _total(http, f"{before}&_summary=count", site) - len(traffic)
    for event_id in traffic:
        assert http.get(f"/fhir/AuditEvent/{event_id}", headers=site).status_code == 200
        assert http.get(f"/fhir/AuditEvent/{event_id}", headers=mine).status_code == 404, event_id
        assert http.get(f"/fhir/AuditEvent/{event_id}/_history", headers=mine).status_code == 404, event_id
    included = {"_id": patient, "_revinclude": "AuditEvent:patient", "_count": "200"}
    assert traffic & {e["resource"]["id"] for e in http.get("/fhir/Patient", params=included,
                                                              headers=site).json()["entry"]}
    bundle = http.get("/fhir/Patient", params=included, headers=mine).json()
    assert not traffic & {e["resource"]["id"] for e in bundle["entry"]} and _named(bundle, "his-fnxrmyy"), bundle
    everything = http.get(f"/fhir/Patient/{patient}/$everything", params={"_type": "AuditEvent"}, headers=mine)
    leaked = [e["resource"] for e in everything.json().get("entry") or () if e["resource"]["id"] in traffic]
    assert everything.status_code == 200 and not leaked, (traffic, leaked)


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
