"""Review probes (rvprb, kept by prb22) of probe21's resident PUT rule (``_own_record_at``): a resident still
updates what is theirs (their Patient record, a document, in a batch and a transaction), and a
resident's DERIVED record citing their own records written in the same transaction is accepted.
Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_derived_writes import _issue, _token, _written

__all__ = ["fhir"]
U2 = "urn:uuid:7b1e5b7c-0000-4000-8000-000000000002"


def test_resident_updates_own_records_over_http_batch_and_transaction(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RW1", "DOC-RW1", "rw1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    mine = _written(engine, "RW1")
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    doc = fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident)
    assert doc.status_code == 200, doc.text
    etag = doc.headers.get("etag")
    put = fhir.put(f"/fhir/{mine['DocumentReference']}", json={**doc.json(), "description": "a"},
                   headers={**resident, **({"If-Match": etag} if etag else {})})
    assert put.status_code == 200, put.text
    cur = fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident).json()
    batch = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {**cur, "description": "b"}, "request": {"method": "PUT", "url": mine["DocumentReference"]}}]})
    assert batch.status_code == 200 and batch.json()["entry"][0]["response"]["status"].startswith("200"), batch.text
    cur = fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident).json()
    assert cur.get("description") == "b"
    txn = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**cur, "description": "c"}, "request": {"method": "PUT", "url": mine["DocumentReference"]}}]})
    assert txn.status_code == 200, txn.text
    assert fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident).json().get("description") == "c"


def test_resident_flag_citing_own_note_posted_later_in_the_same_transaction(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RW2", "DOC-RW2", "rw2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    mine = _written(engine, "RW2")
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    note = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": me},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    for order in ((0, 1), (1, 0)):
        entries = [{"fullUrl": U2, "resource": note, "request": {"method": "POST", "url": "DocumentReference"}},
                   {"resource": _issue(U2, me), "request": {"method": "POST", "url": "DetectedIssue"}}]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entries[i] for i in order]}
        out = fhir.post("/fhir", json=bundle, headers=resident)
        assert out.status_code == 200, (order, out.text)


def test_resident_batch_put_refused_is_not_answered_as_a_successful_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A batch PUT the resident may not make is rewritten by probe21 into a GET of the same URL: at a
    record they may read but not update (a Practitioner reachable through their ServiceRequest) the
    entry answers 200 OK with the unchanged record -- a refused write reported as done. Over HTTP 404."""
    acks = send(engine, document("RW3", "DOC-RW3", "rw3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    mine = _written(engine, "RW3")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    doc = {"resourceType": "Practitioner", "id": "rvprb-doc", "name": [{"text": "王医生"}]}
    assert fhir.put("/fhir/Practitioner/rvprb-doc", json=doc, headers=hospital).status_code in (200, 201)
    order = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "code": {"text": "血常规"}, "subject": {"reference": mine["Patient"]},
             "requester": {"reference": "Practitioner/rvprb-doc"}}
    assert fhir.post("/fhir/ServiceRequest", json=order, headers=hospital).status_code == 201
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    seen = fhir.get("/fhir/Practitioner/rvprb-doc", headers=resident)
    assert seen.status_code == 200, seen.text  # reachable: theirs to read
    body = {**seen.json(), "name": [{"text": "rvprb renamed"}]}
    over_http = fhir.put("/fhir/Practitioner/rvprb-doc", json=body, headers=resident)
    assert over_http.status_code >= 400, over_http.text
    batch = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": body, "request": {"method": "PUT", "url": "Practitioner/rvprb-doc"}}]})
    assert batch.status_code == 200, batch.text
    status = batch.json()["entry"][0]["response"]["status"]
    assert status[:3] == str(over_http.status_code), (status, over_http.status_code, batch.text[:400])
    assert fhir.get("/fhir/Practitioner/rvprb-doc", headers=hospital).json()["name"][0]["text"] == "王医生"


def test_resident_transaction_updates_own_flag_to_cite_a_note_posted_in_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """probe21 judges a resident's PUT body at authorization (before urn:uuid rewriting) and the target
    by ``_own_record_at``: a PUT of their own flag citing a note POSTed in the same transaction."""
    acks = send(engine, document("RW4", "DOC-RW4", "rw4.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    mine = _written(engine, "RW4")
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    made = fhir.post("/fhir/DetectedIssue", json=_issue(mine["DocumentReference"], me), headers=resident)
    assert made.status_code == 201, made.text
    flag = made.json()
    note = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": me},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    u = "urn:uuid:7b1e5b7c-0000-4000-8000-000000000005"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": u, "resource": note, "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": {**flag, "implicated": [{"reference": u}]},
         "request": {"method": "PUT", "url": f"DetectedIssue/{flag['id']}"}}]}
    out = fhir.post("/fhir", json=bundle, headers=resident)
    assert out.status_code == 200, out.text
    back = fhir.get(f"/fhir/DetectedIssue/{flag['id']}", headers=resident)
    assert back.status_code == 200 and back.json()["implicated"][0]["reference"].startswith("DocumentReference/")
