"""An import (an HL7 v2 message) that wrote nothing its resident may see must not be in the
resident's AuditEvents. An MDM^T02 whose document is labelled V (TXA-18) showed 王建国 an
``hl7v2-receive`` event from the hospital naming no record but its ``message-type`` MDM^T02: a
document about him arrived that a read of would answer 404. Stripping the message type would
leave an import naming nothing, which says the same, so the event is left out of his view
(counted so too); an import with a record he may see still shows. Real HL7 over MLLP, real HTTP.
(The MDM's text is an Observation, labelled with the document since the lead's mend of this round.)
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document

__all__ = ["fhir"]


def _imports(fhir: TestClient, headers: dict[str, str], pid: str) -> tuple[list[dict[str, Any]], int]:
    plain = fhir.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=headers)
    count = fhir.get(f"/fhir/AuditEvent?patient={pid}&_summary=count", headers=headers)
    assert plain.status_code == 200 and count.status_code == 200, (plain.text, count.text)
    events = [e["resource"] for e in plain.json().get("entry") or ()]
    assert plain.json()["total"] == len(events) == count.json()["total"]
    return [e for e in events if any(c.get("code") == "hl7v2-receive" for c in e.get("subtype") or ())], len(events)


def test_an_import_of_only_a_withheld_document_is_not_in_the_residents_view(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("W1", "DOC-W1", "w1.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    (doc,) = written(engine, fhir, "W1", "DocumentReference")
    assert doc["securityLabel"][0]["coding"][0]["code"] == "V"
    pid = doc["subject"]["reference"].split("/", 1)[1]
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    mine = {"Authorization": f"Bearer {token}"}
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=mine).status_code == 404
    # the hospital's auditors see the import and what it wrote
    every, _ = _imports(fhir, {}, pid)
    assert len(every) == 1 and "MDM" in str(every[0]) and doc["id"] in str(every[0])

    # the message's text is also an Observation, labelled with the document (TXA-18) since the
    # lead's mend of this round (tests/test_lead19_document_label.py): nothing it wrote is his to see
    (text,) = written(engine, fhir, "W1", "Observation")
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=mine).status_code == 404

    imports, _ = _imports(fhir, mine, pid)
    assert imports == [], imports

    # an ordinary document for him arrives: that import is his to see, message type and record
    acks = send(engine, document("W2", "DOC-W2", "w2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    (plain,) = written(engine, fhir, "W2", "DocumentReference")
    imports, _ = _imports(fhir, mine, pid)
    assert len(imports) == 1 and "MDM" in str(imports[0]) and plain["id"] in str(imports[0]), imports
    assert doc["id"] not in fhir.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=mine).text
