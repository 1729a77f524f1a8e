"""A deleted record is judged by the label it had: a Provenance or an AuditEvent naming it stays
withheld from a caller not shown that label (twentieth round, last20a).

probe20 withheld a message's Provenance (``confidentiality.DERIVED``) and an AuditEvent's entities
when a record they cite is labelled beyond the caller -- judged by the record as it stands now. A
deletion carries no label: once the hospital deleted a V discharge summary (its DocumentReference
and its text Observation), its Provenance was shown again to the resident and to a township
clinic's HIS bound to its institution, naming the document's id and type, MDM^T02 and its number,
and the HIS's ``AuditEvent?patient=`` listed the import naming it; a lab result labelled R and
then deleted likewise (its type is decided from the search's per-type set of labelled ids, which
no deleted record is in). Now a deleted record is judged by its last version that had a body (a
history read per deleted cited record), and the per-type sets hold the labelled records deleted
since (the repository's delete hook notes them, ``scoped.DeletedLabels``). Real HL7 over MLLP,
real HTTP through FastAPI (FHIR DELETE, and DELETE in a transaction Bundle), real tokens, the real
store (SQLite).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.scoped import DELETED_LABELS, DeletedLabels
from engine.settings import Settings
from tests.test_convert11_thinner import fhir, result, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_lead20_provenance_writes import _token, _written

__all__ = ["fhir"]

_R = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def _lower_report(fhir: TestClient, hospital: dict[str, str], ref: str) -> None:
    """The message's report took the result's R when it was labelled (labelmark27: never lowered by the
    result); the hospital lowers it by a PUT of the report -- it no longer cites a labelled result --
    so that the Provenance (which names the report too) is decided by the result alone, as here."""
    body = fhir.get(f"/fhir/{ref}", headers=hospital).json()
    assert [c["code"] for c in body["meta"].get("security", [])] == ["R"], body["meta"]
    body.pop("meta")
    put = fhir.put(f"/fhir/{ref}", json=body, headers=hospital)
    assert put.status_code == 200 and "security" not in put.json()["meta"], put.text[:300]


def _ids(response: Any, rtype: str) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry") or () if e["resource"]["resourceType"] == rtype}


def _events(fhir: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    plain = fhir.get(f"/fhir/AuditEvent?{query}&_count=200", headers=headers)
    count = fhir.get(f"/fhir/AuditEvent?{query}&_summary=count", headers=headers)
    assert plain.status_code == 200 and count.status_code == 200, (plain.text, count.text)
    events = [e["resource"] for e in plain.json().get("entry") or ()]
    assert plain.json()["total"] == len(events) == count.json()["total"], query
    return events


def test_a_deleted_very_restricted_document_stays_unnamed(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DV1", "DOC-DV1", "dv1.rtf", "V"), document("DV2", "DOC-DV2", "dv2.rtf"),
                document("DV3", "DOC-DV3", "dv3.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, plain, other = _written(engine, "DV1"), _written(engine, "DV2"), _written(engine, "DV3")
    pid = very["Patient"].split("/", 1)[1]
    hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}  # reads and deletes all
    # the hospital deletes the first V document and its text over FHIR, the other in a transaction
    for ref in (very["DocumentReference"], very["Observation"]):
        assert fhir.delete(f"/fhir/{ref}", headers=hospital).status_code in (200, 204), ref
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": other[t]}} for t in ("DocumentReference", "Observation")]}
    assert fhir.post("/fhir", json=bundle, headers=hospital).status_code == 200
    gone = [very, other]
    secret = {w[t].split("/", 1)[1] for w in gone for t in ("DocumentReference", "Observation", "Provenance")}
    provs = {w["Provenance"].split("/", 1)[1] for w in gone}
    assert _ids(fhir.get(f"/fhir/Provenance?patient={pid}", headers=hospital), "Provenance") >= provs

    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)  # reads R, not V
    township = _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})
    clinician = _token(engine, "user", ["user/*.rs"])
    shown = plain["Provenance"].split("/", 1)[1]
    for who, headers in (("resident", resident), ("township", township), ("clinician", clinician)):
        for w in gone:
            for t in ("DocumentReference", "Observation", "Provenance"):
                assert fhir.get(f"/fhir/{w[t]}", headers=headers).status_code == 404, (who, t)
            made_up = fhir.get("/fhir/Provenance?target=DocumentReference/no-such-document", headers=headers).json()
            for t in ("DocumentReference", "Observation"):
                r = fhir.get(f"/fhir/Provenance?target={w[t]}", headers=headers)
                assert _ids(r, "Provenance") == set() and r.json()["total"] == made_up["total"] == 0, (who, t)
        if who == "township":
            continue  # a remit-bound system is kept from patients' records: only the events below
        found = fhir.get(f"/fhir/Provenance?patient={pid}", headers=headers)
        assert _ids(found, "Provenance") == {shown} and found.json()["total"] == 1, who
        count = fhir.get(f"/fhir/Provenance?patient={pid}&_summary=count", headers=headers).json()
        assert count["total"] == 1, who
        everything = fhir.get(f"/fhir/Patient/{pid}/$everything?_count=200", headers=headers)
        assert everything.status_code == 200 and not any(s in everything.text for s in secret), who
    for who, headers in (("township", township), ("clinician", clinician)):
        events = _events(fhir, headers, f"patient={pid}")
        assert not any(s in str(e) for e in events for s in secret), who
        imports = [e for e in events if any(c.get("code") == "hl7v2-receive" for c in e.get("subtype") or ())]
        assert len(imports) == 1 and plain["DocumentReference"] in str(imports[0]), (who, imports)


def test_a_deleted_restricted_result_withholds_its_messages_provenance(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("DL1", "78"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    written = _written(engine, "DL1")
    prov, obs = written["Provenance"].split("/", 1)[1], written["Observation"]
    hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}
    clinician = _token(engine, "user", ["user/*.rs"])
    body = fhir.get(f"/fhir/{obs}", headers=hospital).json()
    labelled = {**body, "meta": {"security": [_R]}}
    assert fhir.put(f"/fhir/{obs}", json=labelled, headers=hospital).status_code == 200
    assert _ids(fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician), "Provenance") == set()
    # the hospital deletes the restricted result: its message's Provenance stays withheld
    assert fhir.delete(f"/fhir/{obs}", headers=hospital).status_code in (200, 204)
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 404
    for query in (f"target={obs}", f"_id={prov}"):
        r = fhir.get(f"/fhir/Provenance?{query}", headers=clinician)
        assert _ids(r, "Provenance") == set() and r.json()["total"] == 0, query
    # written again without the label, the record as it stands decides again
    unlabelled = {k: v for k, v in body.items() if k != "meta"}
    assert fhir.put(f"/fhir/{obs}", json=unlabelled, headers=hospital).status_code in (200, 201)
    assert fhir.get(f"/fhir/{obs}", headers=clinician).status_code == 200
    _lower_report(fhir, hospital, _written(engine, "DL1")["DiagnosticReport"])
    assert _ids(fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician), "Provenance") == {prov}
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 200


def test_a_store_from_before_the_ledger_notes_its_deletions_once(backend_settings: Settings) -> None:
    """A record deleted as labelled before this code kept the ledger: the first engine start notes
    it (``DeletedLabels.backfill``), so the search decides it as it decides a deletion made since."""
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as fhir:  # noqa: F811
        acks = send(engine, result("DB1", "78"))
        assert [ack_code_of(a) for a in acks] == ["AA"], acks
        written = _written(engine, "DB1")
        prov, obs = written["Provenance"].split("/", 1)[1], written["Observation"]
        hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}
        body = fhir.get(f"/fhir/{obs}", headers=hospital).json()
        assert fhir.put(f"/fhir/{obs}", json={**body, "meta": {"security": [_R]}}, headers=hospital).status_code == 200
        assert fhir.delete(f"/fhir/{obs}", headers=hospital).status_code in (200, 204)
        _lower_report(fhir, hospital, written["DiagnosticReport"])
        # as a store written before the ledger: no entry, no marker
        ledger = engine.store.collection(DELETED_LABELS)
        for doc in ledger.find({}):
            ledger.delete(doc["_id"])
        clinician = _token(engine, "user", ["user/*.rs"])
        assert _ids(fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician), "Provenance") == {prov}
        if backend_settings.mongodb_uri:  # an in-memory store does not outlive its engine: the start's step
            assert DeletedLabels(engine.repository).backfill() == 1
            assert DeletedLabels(engine.repository).backfill() == 0  # once
            r = fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician)
            assert _ids(r, "Provenance") == set() and r.json()["total"] == 0
            return
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as fhir:  # noqa: F811
        clinician = _token(engine, "user", ["user/*.rs"])
        r = fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician)
        assert _ids(r, "Provenance") == set() and r.json()["total"] == 0
        assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 404
        assert DeletedLabels(engine.repository).backfill() == 0  # done once, at the first start
