"""HL7 v2 imports in "who looked at my record": each import names the patients whose records it
wrote, and each patient's view shows only that patient's resources.

Records of two residents arrive as HL7 v2 over POST /hl7v2 (audited per request by the
middleware) and over a real MLLP socket (audited by the ingestor); each resident's who-looked
then lists the imports of their own records, with the resource types written, and nothing of the
other resident's.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.view import views_of
from engine.audit.who_looked import who_looked
from engine.engine import Engine
from tests.conftest import NATIONAL_ID as MLLP_ID  # the MLLP lab result's patient
from tests.test_ingest_e2e import lab_result, send
from tests.test_resident_record_ui import QIAN, ZHAO, feeds


def _records(engine: Engine) -> list[dict]:
    return engine.audit.events()


def test_imports_over_http_and_mllp_show_in_each_residents_who_looked(engine: Engine) -> None:
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
    assert b"MSA|AA" in send(engine, lab_result("IMP-1"))[0]
    zhao, qian = engine.identity.patients_for_number(ZHAO), engine.identity.patients_for_number(QIAN)
    mllp_patient = engine.identity.patients_for_number(MLLP_ID)
    assert zhao and qian and mllp_patient

    # the signed records: every import names its patients, and says whose each resource is
    imports = [r for r in _records(engine) if any(s.get("code") == "hl7v2-receive" for s in r.get("subtype", []))]
    assert len(imports) == len(feeds()) + 1
    for record in imports:
        named = {e["what"]["reference"] for e in record["entity"] if e.get("role", {}).get("code") == "1"}
        assert named, record  # no import without its patient
        owned = [e for e in record["entity"] if any(d.get("type") == "patient" for d in e.get("detail", []))]
        assert owned and {d["valueString"] for e in owned for d in e["detail"]} <= named, record

    for person, others in ((zhao, qian + mllp_patient), (qian, zhao + mllp_patient), (mllp_patient, zhao + qian)):
        entries = who_looked(engine.repository, person)
        imported = [a for a in entries if a.what == "import"]
        assert imported, person
        # over HTTP the interface engine that posted is the requestor; over MLLP the sending institution
        assert all(a.outcome == "success" and (a.role, a.who) in {("system", "interface-engine"),
                                                                  ("sending-institution", "FNXRMYY")}
                   for a in imported), imported
        assert any("Observation" in a.resource_types for a in imported)
        found = engine.repository.search("AuditEvent", [("patient", ",".join(person)), ("_count", "200")],
                                         compartment=frozenset(person))
        text = json.dumps(found.resources, ensure_ascii=False)
        for pid in others:
            assert pid not in text  # nothing in one resident's events names another

    # an import's view names only its own patient, and only resources whose fields say they are theirs
    for record in imports:
        for view in views_of(record):
            patients = [e["what"]["reference"] for e in view["entity"] if e.get("role", {}).get("code") == "1"]
            assert len(patients) <= 1


