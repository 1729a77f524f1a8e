"""A resident's batch answers each entry on its own (twenty-second round, prb22).

Found: a resident's batch PUT of their own flag whose body cites a record they may not read (or
a made-up one) failed the whole batch, 422, the other entries not run -- probe21's check of a
resident's PUT body before the Bundle runs let through only a 403 to the entry; any other refusal
of the body (422 for what it cites) ended the batch. R4: a batch's entries are processed one by
one, each answered in the batch-response. Now the entry is answered so (422, the words it gets
over HTTP), the others run. A transaction is still refused whole. Real HL7 over MLLP, real HTTP
through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_derived_writes import OTHER, _issue, _token, _written

__all__ = ["fhir"]


def test_a_resident_s_batch_entry_refused_for_what_its_body_cites_is_answered_alone(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RB1", "DOC-RB1", "rb1.rtf"), document("RB2", "DOC-RB2", "rb2.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, other = _written(engine, "RB1"), _written(engine, "RB2")
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    made = fhir.post("/fhir/DetectedIssue", json=_issue(mine["DocumentReference"], me), headers=resident)
    assert made.status_code == 201, made.text
    flag = made.json()
    for ref in ("DocumentReference/prb22-made-up", other["DocumentReference"]):
        bad = {**flag, "implicated": [{"reference": ref}]}
        over_http = fhir.put(f"/fhir/DetectedIssue/{flag['id']}", json=bad, headers=resident)
        assert over_http.status_code == 422, over_http.text
        batch = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": bad, "request": {"method": "PUT", "url": f"DetectedIssue/{flag['id']}"}},
            {"request": {"method": "GET", "url": me}}]})
        assert batch.status_code == 200, batch.text
        entries = batch.json()["entry"]
        assert entries[0]["response"]["status"].startswith("422"), batch.text
        assert entries[0]["response"]["outcome"]["issue"][0]["diagnostics"] == over_http.json()["issue"][0]["diagnostics"]
        assert entries[1]["response"]["status"].startswith("200") and entries[1]["resource"]["id"] == me.split("/", 1)[1]
        txn = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": bad, "request": {"method": "PUT", "url": f"DetectedIssue/{flag['id']}"}}]})
        assert txn.status_code == 422, txn.text
    back = fhir.get(f"/fhir/DetectedIssue/{flag['id']}", headers=resident).json()
    assert back["implicated"] == [{"reference": mine["DocumentReference"]}]


def test_a_resident_s_batch_put_at_deleted_records_answers_alike_whatever_their_label(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A PUT of their own note at the id of another person's deleted document: at a V one the body
    check's 404 ended the whole batch, at an unlabelled one the entry alone answered 404 -- the label
    of a deleted record of someone else told by the shape of the answer. Now both the entry alone."""
    acks = send(engine, document("RB3", "DOC-RB3", "rb3.rtf"), document("RB4", "DOC-RB4", "rb4.rtf", "V", pid=OTHER),
                document("RB5", "DOC-RB5", "rb5.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    mine, very, plain = _written(engine, "RB3"), _written(engine, "RB4"), _written(engine, "RB5")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    for gone in (very, plain):
        assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    answers = {}
    for name, ref in (("V", very["DocumentReference"]), ("plain", plain["DocumentReference"]),
                      ("made up", "DocumentReference/prb22-none")):
        rid = ref.split("/", 1)[1]
        note = {"resourceType": "DocumentReference", "id": rid, "status": "current", "subject": {"reference": me},
                "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
        batch = fhir.post("/fhir", headers=resident, json={"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": note, "request": {"method": "PUT", "url": ref}}, {"request": {"method": "GET", "url": me}}]})
        answers[name] = (batch.status_code, batch.json()["entry"][0] if batch.status_code == 200 else batch.text,
                         fhir.put(f"/fhir/{ref}", json=note, headers=resident).status_code)
    assert answers["V"] == answers["plain"] == answers["made up"], answers
    assert answers["V"][0] == 200 and answers["V"][1]["response"]["status"].startswith("404"), answers
