"""A resident's PUT at an id answers the same whether another person's record is there or nothing
is (twenty-first round, probe21).

Found: a resident's app with write scopes was answered 404 for ``PUT DocumentReference/<id>`` at
another person's document (not theirs to write over) but 201 at a fresh id (update as create) --
and huren's ids derive from the sender's own numbers, so the answer told which records exist of
other people; a batch entry the same. A resident now updates only a record of theirs that is there:
a PUT anywhere else is 404 (a resident creates with POST), over HTTP and in a Bundle. Real HL7 over
MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_derived_writes import OTHER, _token, _written

__all__ = ["fhir"]


def test_a_resident_s_put_tells_no_other_person_s_record_from_a_fresh_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RP1", "DOC-RP1", "rp1.rtf"), document("RO1", "DOC-RO1", "ro1.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, theirs = _written(engine, "RP1"), _written(engine, "RO1")
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    body = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": mine["Patient"]},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    answers = {}
    for name, rid in (("theirs", theirs["DocumentReference"].split("/", 1)[1]), ("fresh", "a-fresh-document-id")):
        put = fhir.put(f"/fhir/DocumentReference/{rid}", json={**body, "id": rid}, headers=resident)
        batch = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {**body, "id": rid}, "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}}]})
        answers[name] = (put.status_code, put.text, batch.status_code, batch.json().get("entry"))
    assert answers["theirs"] == answers["fresh"], answers
    assert answers["fresh"][0] == 404 and answers["fresh"][3][0]["response"]["status"].startswith("404")
    assert fhir.get("/fhir/DocumentReference/a-fresh-document-id").status_code == 404  # nothing created
    # their own record is updated as before; a new one is created with POST
    own = fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident).json()
    assert fhir.put(f"/fhir/{mine['DocumentReference']}", json={**own, "description": "x"}, headers=resident).status_code == 200
    assert fhir.post("/fhir/DocumentReference", json=body, headers=resident).status_code == 201
