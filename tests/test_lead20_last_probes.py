"""The review of last20a, kept as tests (written by its reviewer, mended by the lead): a deleted V record
is not re-created by a writer it is withheld from (PUT 404, as over a live one); a T03 with an OBR and
no OBX is refused (the report is no content); a T11 cancel stating CA is refused as a cancel (AR).
Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert11_thinner import fhir, result, send  # noqa: F401
from tests.test_hl7fix17_review import document
from tests.test_ingest_durability import err_fields
from tests.test_last20a_mdm_notifications import mdm
from tests.test_lead20_provenance_writes import _token, _written

__all__ = ["fhir"]

_R = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def _ids(response: Any, rtype: str) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry") or () if e["resource"]["resourceType"] == rtype}


def _hospital(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}


# ---- bypass: a label-limited writer re-creates the deleted V document -------------------------------
def test_writer_recreating_a_deleted_v_document_unhides_its_provenance(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, document("RC1", "DOC-RC1", "rc1.rtf", "V"))
    assert ack_code_of(ack) == "AA", ack
    w = _written(engine, "RC1")
    hospital = _hospital(engine)
    for t in ("DocumentReference", "Observation"):
        assert fhir.delete(f"/fhir/{w[t]}", headers=hospital).status_code in (200, 204)
    clinician = _token(engine, "user", ["user/*.cruds"])  # R and V withheld, not bound to a remit
    assert _ids(fhir.get(f"/fhir/Provenance?target={w['DocumentReference']}", headers=clinician), "Provenance") == set()
    # a live V record: their PUT over it is 404 ("not theirs to write over"); a deleted V one?
    rtype, rid = w["Observation"].split("/", 1)
    old = fhir.get(f"/fhir/{w['Observation']}/_history/1", headers=hospital).json()
    put = fhir.put(f"/fhir/{w['Observation']}", headers=clinician, json={
        **{k: v for k, v in old.items() if k != "meta"}, "valueString": "x"})
    olddoc = fhir.get(f"/fhir/{w['DocumentReference']}/_history/1", headers=hospital).json()
    put2 = fhir.put(f"/fhir/{w['DocumentReference']}", headers=clinician, json={
        k: v for k, v in olddoc.items() if k not in ("meta", "securityLabel")})
    print("PUT over deleted V:", put.status_code, put.headers.get("etag"), put2.status_code, put2.headers.get("etag"))
    found = _ids(fhir.get(f"/fhir/Provenance?target={w['Observation']}", headers=clinician), "Provenance")
    read = fhir.get(f"/fhir/{w['Provenance']}", headers=clinician).status_code
    hist = fhir.get(f"/fhir/{w['Observation']}/_history", headers=clinician)
    v1 = fhir.get(f"/fhir/{w['Observation']}/_history/1", headers=clinician)
    print("provenance:", found, read, "history:", hist.status_code, hist.text.count("第一段"), "v1:", v1.status_code)
    # refused either way: 422 since prb23 (twenty-third round) -- this body cites the V document, refused
    # for it at any id (a made-up one too), where the id's 404 came first and told the deleted V record apart
    assert put.status_code in (404, 422) and found == set() and read == 404, (put.status_code, put2.status_code, found, read)


def test_version_number_of_put_over_deleted_v_record_tells_it_existed(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, document("RC2", "DOC-RC2", "rc2.rtf", "V"))
    assert ack_code_of(ack) == "AA", ack
    w = _written(engine, "RC2")
    hospital = _hospital(engine)
    assert fhir.delete(f"/fhir/{w['Observation']}", headers=hospital).status_code in (200, 204)
    clinician = _token(engine, "user", ["user/*.cruds"])
    rid = w["Observation"].split("/", 1)[1]
    old = fhir.get(f"/fhir/{w['Observation']}/_history/1", headers=hospital).json()
    body = {k: v for k, v in old.items() if k not in ("meta", "id")}
    fresh = fhir.put("/fhir/Observation/never-existed-rc2", headers=clinician, json={**body, "id": "never-existed-rc2"})
    over = fhir.put(f"/fhir/{w['Observation']}", headers=clinician, json={**body, "id": rid})
    # a caller told 404 for the deleted V record must not learn from the answer that it existed
    assert (over.status_code, over.headers.get("etag")) == (fresh.status_code, fresh.headers.get("etag")) \
        or over.status_code == 404, (over.status_code, over.headers.get("etag"), fresh.headers.get("etag"))


# ---- history / vread of a deleted V record ----------------------------------------------------------
def test_history_and_vread_of_deleted_v_record_hidden(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, document("H1", "DOC-H1", "h1.rtf", "V"))
    assert ack_code_of(ack) == "AA", ack
    w = _written(engine, "H1")
    hospital = _hospital(engine)
    for t in ("DocumentReference", "Observation"):
        assert fhir.delete(f"/fhir/{w[t]}", headers=hospital).status_code in (200, 204)
    clinician = _token(engine, "user", ["user/*.rs"])
    for t in ("DocumentReference", "Observation", "Provenance"):
        h = fhir.get(f"/fhir/{w[t]}/_history", headers=clinician)
        assert h.status_code == 404 or "第一段" not in h.text and h.json().get("total", 0) == 0, (t, h.status_code, h.text[:300])
        v = fhir.get(f"/fhir/{w[t]}/_history/1", headers=clinician)
        assert v.status_code == 404, (t, v.status_code)
    # the hospital still sees everything (legitimate caller loses nothing)
    assert fhir.get(f"/fhir/{w['Provenance']}", headers=hospital).status_code == 200
    assert _ids(fhir.get(f"/fhir/Provenance?target={w['Observation']}", headers=hospital), "Provenance") \
        == {w["Provenance"].split("/", 1)[1]}
    assert fhir.get(f"/fhir/{w['Observation']}/_history/1", headers=hospital).status_code == 200


# ---- resident: own R record deleted stays visible with its Provenance; own V hidden -------------------
def test_resident_keeps_provenance_of_own_deleted_r_result(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, document("RR1", "DOC-RR1", "rr1.rtf", "R"), document("RV1", "DOC-RV1", "rv1.rtf", "V"))[0:1]
    assert ack_code_of(ack) == "AA", ack
    r, v = _written(engine, "RR1"), _written(engine, "RV1")
    pid = r["Patient"].split("/", 1)[1]
    hospital = _hospital(engine)
    for w in (r, v):
        assert fhir.delete(f"/fhir/{w['Observation']}", headers=hospital).status_code in (200, 204)
    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)
    provs = _ids(fhir.get(f"/fhir/Provenance?patient={pid}", headers=resident), "Provenance")
    assert r["Provenance"].split("/", 1)[1] in provs
    assert v["Provenance"].split("/", 1)[1] not in provs
    assert fhir.get(f"/fhir/{r['Provenance']}", headers=resident).status_code == 200
    assert fhir.get(f"/fhir/{v['Provenance']}", headers=resident).status_code == 404


# ---- mongomock: the live path (not only backfill) ----------------------------------------------------
def test_deleted_v_document_withheld_on_every_backend(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as http:
        (ack,) = send(engine, document("MB1", "DOC-MB1", "mb1.rtf", "V"))
        assert ack_code_of(ack) == "AA", ack
        w = _written(engine, "MB1")
        hospital = _hospital(engine)
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": w[t]}} for t in ("DocumentReference", "Observation")]}
        assert http.post("/fhir", json=bundle, headers=hospital).status_code == 200
        clinician = _token(engine, "user", ["user/*.rs"])
        pid = w["Patient"].split("/", 1)[1]
        for q in (f"target={w['Observation']}", f"target={w['DocumentReference']}", f"patient={pid}"):
            r = http.get(f"/fhir/Provenance?{q}", headers=clinician)
            assert _ids(r, "Provenance") == set() and r.json()["total"] == 0, q
        assert http.get(f"/fhir/{w['Provenance']}", headers=clinician).status_code == 404
        ev = http.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=clinician)
        assert ev.status_code == 200 and w["Observation"].split("/", 1)[1] not in ev.text


# ---- delete / re-create labelled / delete; and re-create by hospital unlabelled ------------------------
def test_delete_recreate_delete_keeps_it_withheld(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, result("DR1", "78"))
    assert ack_code_of(ack) == "AA", ack
    w = _written(engine, "DR1")
    obs, prov = w["Observation"], w["Provenance"].split("/", 1)[1]
    hospital = _hospital(engine)
    clinician = _token(engine, "user", ["user/*.rs"])
    body = fhir.get(f"/fhir/{obs}", headers=hospital).json()
    labelled = {**body, "meta": {"security": [_R]}}
    assert fhir.put(f"/fhir/{obs}", json=labelled, headers=hospital).status_code == 200
    assert fhir.delete(f"/fhir/{obs}", headers=hospital).status_code in (200, 204)
    assert fhir.put(f"/fhir/{obs}", json=labelled, headers=hospital).status_code in (200, 201)
    assert fhir.delete(f"/fhir/{obs}", headers=hospital).status_code in (200, 204)
    assert fhir.delete(f"/fhir/{obs}", headers=hospital).status_code in (200, 204)  # again: nothing changes
    r = fhir.get(f"/fhir/Provenance?target={obs}", headers=clinician)
    assert _ids(r, "Provenance") == set() and r.json()["total"] == 0
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 404
    assert fhir.get(f"/fhir/Provenance?_id={prov}", headers=clinician).json()["total"] == 0


# ---- clinician cannot delete/PUT the withheld Provenance -----------------------------------------------
def test_clinician_cannot_write_provenance_of_deleted_v(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, document("CP1", "DOC-CP1", "cp1.rtf", "V"))
    assert ack_code_of(ack) == "AA", ack
    w = _written(engine, "CP1")
    hospital = _hospital(engine)
    for t in ("DocumentReference", "Observation"):
        assert fhir.delete(f"/fhir/{w[t]}", headers=hospital).status_code in (200, 204)
    clinician = _token(engine, "user", ["user/*.cruds"])
    prov = fhir.get(f"/fhir/{w['Provenance']}", headers=hospital).json()
    # 422 since probe21: a body citing withheld records is refused at any id (it names the deleted V document)
    assert fhir.put(f"/fhir/{w['Provenance']}", json=prov, headers=clinician).status_code in (404, 422)
    assert fhir.get(f"/fhir/{w['Provenance']}", headers=hospital).json() == prov
    assert fhir.delete(f"/fhir/{w['Provenance']}", headers=clinician).status_code == 404
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "DELETE", "url": w["Provenance"]}}]}
    assert fhir.post("/fhir", json=bundle, headers=clinician).status_code == 404


# ---- MDM ------------------------------------------------------------------------------------------------
def test_t03_with_obr_but_no_obx_does_not_claim_the_label(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A T03 raising the label, sent with an OBR (imaging report) but without OBX: accepted?"""
    acks = send(engine, document("O1", "DOC-O1", "o1.rtf").decode().replace(
        "TXA|", "OBR|1|ORD-O1|FIL-O1|CT001^胸部CT^L|||20261201080000\rTXA|", 1).encode())
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    first = _written(engine, "O1")
    raw = (mdm("O2", "T03", "DOC-O1", txa18="V").decode().replace(
        "TXA|", "OBR|1|ORD-O1|FIL-O1|CT001^胸部CT^L|||20261201080000\rTXA|", 1)).encode()
    (ack,) = send(engine, raw)
    print(ack, first, _written(engine, "O2"))
    clinician = _token(engine, "user", ["user/*.rs"])
    text = fhir.get(f"/fhir/{first['Observation']}", headers=clinician)
    doc = fhir.get(f"/fhir/{first['DiagnosticReport']}", headers=clinician)
    # AA must mean the V label reached the document and its text
    assert ack_code_of(ack) != "AA" or (text.status_code == 404 and doc.status_code == 404), \
        (ack, text.status_code, doc.status_code)


def test_t02_with_empty_txa19_and_t04_t06_t08_t10_with_content(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("E1", "T02", "DOC-E1", text="初稿"), mdm("E2", "T04", "DOC-E1", text="改"),
                mdm("E3", "T06", "DOC-E1", text="补"), mdm("E4", "T08", "DOC-E1", text="编"),
                mdm("E5", "T10", "DOC-E1", text="替"), mdm("E6", "T02", "DOC-E6", txa19="av", text="小写"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 6, acks


def test_t11_cancel_with_txa19_ca_is_refused_as_a_cancel(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("C1", "DOC-C1", "c1.rtf"), mdm("C2", "T11", "DOC-C1", txa19="CA"))
    assert ack_code_of(acks[0]) == "AA"
    (err,) = err_fields(acks[1])
    print(acks[1])
    # the sender's cancel is refused because huren applies no cancel (AR at MSH-9.2), not for TXA-19
    assert ack_code_of(acks[1]) == "AR" and err[2] == "MSH^1^9^^2", acks[1]


def test_mdm_refusal_is_never_a_500_on_http(engine: Engine, http: TestClient) -> None:
    token = engine.auth.issue_system_token("feed", "system/*.cruds")
    for raw in (mdm("P1", "T01", "DOC-P1"), mdm("P2", "T02", "DOC-P2", txa19="UN", text="x"),
                mdm("P3", "T02", "DOC-P3")):
        r = http.post("/hl7v2", content=raw, headers={"Authorization": f"Bearer {token}",
                                                       "Content-Type": "application/hl7-v2"})
        print(r.status_code, r.text[:200])
        assert r.status_code < 500, r.text


# ---- backfill cost ----------------------------------------------------------------------------------------
def test_backfill_time_on_many_deleted_records(settings: Settings) -> None:
    from engine.repository.scoped import DELETED_LABELS, DeletedLabels
    n = 3000
    with Engine(settings) as engine:
        repo = engine.repository
        for i in range(n):
            sec = {"meta": {"security": [_R]}} if i % 2 else {}
            base = {"resourceType": "Organization", "id": f"bf{i}", "name": f"院{i}"}
            repo.update({**base, **sec})
            repo.update({**base, "name": f"院{i}b", **sec})
            repo.delete("Organization", f"bf{i}")
        ledger = engine.store.collection(DELETED_LABELS)
        assert len([d for d in ledger.find({"type": "Organization"})]) == n // 2
        for doc in list(ledger.find({})):
            ledger.delete(doc["_id"])
        t = time.perf_counter()
        assert DeletedLabels(repo).backfill() == n
        print(f"backfill of {n} deleted records: {time.perf_counter() - t:.2f}s")
        assert len([d for d in ledger.find({"type": "Organization"})]) == n // 2


# ---- oracle: a label-limited writer creates a Provenance naming an id and reads it back -------------------
def test_conditional_delete_is_not_a_500(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    hospital = _hospital(engine)
    r = fhir.delete("/fhir/Observation?code=CREA", headers=hospital)
    assert r.status_code < 500 and r.json().get("resourceType") == "OperationOutcome", (r.status_code, r.text)
