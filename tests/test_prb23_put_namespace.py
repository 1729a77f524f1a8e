"""A PUT by a label-limited caller at an id of the form huren gives its own records (twenty-third
round, prb23).

Found (probe21's strict xfail): a clinician's app (``user/*.cruds``) or the bound township HIS PUT
at a V document's id was 404, at a fresh id a create (201) -- and huren names what the feeds send
by a name-based UUID (v5) of the sender, the type and the sender's own number (``engine.repository.
ids``), a recipe in the source: the answer told which withheld records exist. Now such a caller
creates by PUT only at ids of its own choosing; at an id of huren's form it updates a record it
reads there, and anything else (never stored, deleted, withheld) is 404 alike -- over HTTP, in a
transaction, a batch, a conditional update naming the id. Its PUTs at its own ids (a name, a
random UUID) create as before; the hospital's own system is not concerned. Real HL7 over MLLP,
real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_own_entries import _callers, _note, _post, _shape, _txn
from tests.test_probe21_derived_writes import _provenance, _written

__all__ = ["fhir"]


def _hospital(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}


def _made_up(key: str) -> str:
    """The id the feed would give a document the sender never sent: the attacker's guess."""
    return deterministic_id("FNXRMYY", "DocumentReference", key)


def _answers(fhir: TestClient, h: dict[str, str], rid: str, body: dict[str, Any], org: str) -> list[Any]:
    """Every way of asking for a write at ``DocumentReference/rid``, as (status, body, headers)."""
    ref = f"DocumentReference/{rid}"
    doc = {**body, "id": rid}
    out = [_shape(fhir.put(f"/fhir/{ref}", json=doc, headers=h), rid)]
    out.append(_shape(fhir.post("/fhir", headers=h, json=_txn(
        {"resource": doc, "request": {"method": "PUT", "url": ref}})), rid))
    batch = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": doc, "request": {"method": "PUT", "url": ref}}]})
    assert batch.status_code == 200, batch.text
    entry = batch.json()["entry"][0]
    out.append((entry["response"]["status"], str(entry["response"].get("outcome")).replace(rid, "ID")))
    # a conditional update matching nothing, its body naming the id
    out.append(_shape(fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|prb23-none"}, json=doc,
                               headers=h), rid))
    out.append(_shape(fhir.post("/fhir", headers=h, json=_txn(
        {"resource": doc, "request": {"method": "PUT", "url": "DocumentReference?identifier=urn:x|prb23-none"}})), rid))
    # ... and one matching several records (its search would answer 412): the id is judged first, alike
    out.append(_shape(fhir.put("/fhir/DocumentReference", params={"status": "current"}, json=doc, headers=h), rid))
    # a transaction whose conditional Provenance cites the PUT's record (judged by the entry while planned)
    out.append(_shape(fhir.post("/fhir", headers=h, json=_txn(
        _post(_provenance(ref, org), ifNoneExist="_id=prb23-no-provenance"),
        {"resource": doc, "request": {"method": "PUT", "url": ref}})), rid))
    return out


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_put_at_an_id_of_huren_s_form_tells_nothing_of_a_withheld_record(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("NV1", "DOC-NV1", "nv1.rtf", "V"), document("NV2", "DOC-NV2", "nv2.rtf", "V"),
                document("NP1", "DOC-NP1", "np1.rtf"), document("NP2", "DOC-NP2", "np2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4, acks
    very, gone, plain, dropped = (_written(engine, c) for c in ("NV1", "NV2", "NP1", "NP2"))
    hospital = _hospital(engine)
    for rec in (gone, dropped):
        assert fhir.delete(f"/fhir/{rec['DocumentReference']}", headers=hospital).status_code == 204
    h = _callers(engine)[who]
    body = _note(plain["Patient"])
    shapes = {}
    for name, rid in (("withheld", very["DocumentReference"].split("/", 1)[1]),
                      ("deleted withheld", gone["DocumentReference"].split("/", 1)[1]),
                      ("deleted", dropped["DocumentReference"].split("/", 1)[1]),
                      ("made up", _made_up(f"DOC-PRB23-{who}"))):
        shapes[name] = _answers(fhir, h, rid, body, plain["Organization"])
    for name in ("withheld", "deleted withheld", "deleted"):
        diff = [(n, a, b) for n, (a, b) in enumerate(zip(shapes[name], shapes["made up"], strict=True)) if a != b]
        assert not diff, (who, name, diff)
    assert [s[0] for s in shapes["made up"]] == [404, 404, "404 Not Found", 404, 404, 404, 404], shapes["made up"]
    assert '"code":"not-found"' in shapes["made up"][0][1]
    # nothing written: the made-up id stays unknown, the V document at its first version
    assert fhir.get(f"/fhir/DocumentReference/{_made_up(f'DOC-PRB23-{who}')}", headers=hospital).status_code == 404
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).json()["meta"]["versionId"] == "1"
    assert fhir.get(f"/fhir/{dropped['DocumentReference']}", headers=hospital).status_code == 410


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_guard_puts_at_the_caller_s_own_ids_and_updates_of_records_it_reads(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("NP3", "DOC-NP3", "np3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "NP3")
    h = _callers(engine)[who]
    # update as create at an id of its own: a name, a random UUID (v4), over HTTP and in a transaction
    for rid in (f"prb23-own-{who}", str(uuid.uuid4())):
        r = fhir.put(f"/fhir/DocumentReference/{rid}", json=_note(plain["Patient"], id=rid), headers=h)
        assert r.status_code == 201, r.text
        t = fhir.post("/fhir", headers=h, json=_txn(
            {"resource": _note(plain["Patient"], id=f"{rid}-t"), "request": {"method": "PUT",
                                                                              "url": f"DocumentReference/{rid}-t"}}))
        assert t.status_code == 200 and t.json()["entry"][0]["response"]["status"] == "201 Created", t.text
    # a record it reads at an id of huren's form: updated (200), with If-Match too
    doc = fhir.get(f"/fhir/{plain['DocumentReference']}", headers=h).json()
    r = fhir.put(f"/fhir/{plain['DocumentReference']}", json={**doc, "description": "x"}, headers=h)
    assert r.status_code == 200, r.text
    r = fhir.put(f"/fhir/{plain['DocumentReference']}", json={**doc, "description": "y"},
                 headers={**h, "If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    # a conditional update whose match is that record, its body naming it
    r = fhir.put("/fhir/DocumentReference", params={"_id": doc["id"]}, json={**doc, "description": "z"}, headers=h)
    assert r.status_code == 200, r.text
    # a POST whose body carries an id of huren's form: the id is the server's (ignored), a create
    for cond in ({}, {"ifNoneExist": "_id=prb23-none-post"}):
        t = fhir.post("/fhir", headers=h, json=_txn(_post(_note(plain["Patient"], id=_made_up(f"DOC-POST-{who}")),
                                                          **cond)))
        assert t.status_code == 200 and t.json()["entry"][0]["response"]["status"] == "201 Created", t.text


def test_guard_the_hospital_s_own_system_creates_at_any_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("NP4", "DOC-NP4", "np4.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "NP4")
    rid = _made_up("DOC-PRB23-HIS")
    r = fhir.put(f"/fhir/DocumentReference/{rid}", json=_note(plain["Patient"], id=rid), headers=_hospital(engine))
    assert r.status_code == 201, r.text


def test_a_body_refused_for_what_it_cites_is_refused_alike_at_a_deleted_withheld_id(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The body first, at any id: the V message's result, its ``derivedFrom`` naming the V document,
    PUT by a clinician at the id of the deleted V result was 404 (the id checked before the body)
    where at a live V record's id, a made-up id and a name of its own it was 422 -- the deleted V
    record told apart. Now 422 alike, the same words; nothing written."""
    acks = send(engine, document("NV5", "DOC-NV5", "nv5.rtf", "V"), document("NV6", "DOC-NV6", "nv6.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    gone, very = _written(engine, "NV5"), _written(engine, "NV6")
    hospital = _hospital(engine)
    assert fhir.delete(f"/fhir/{gone['Observation']}", headers=hospital).status_code == 204
    old = fhir.get(f"/fhir/{gone['Observation']}/_history/1", headers=hospital).json()
    assert "derivedFrom" in old, old
    body = {k: v for k, v in old.items() if k not in ("meta", "id")}
    for who, h in _callers(engine).items():
        shapes = {}
        for name, rid in (("deleted withheld", gone["Observation"].split("/", 1)[1]),
                          ("withheld", very["Observation"].split("/", 1)[1]),
                          ("made up", deterministic_id("FNXRMYY", "Observation", f"prb23-{who}")),
                          ("own name", f"prb23-own-obs-{who}")):
            shapes[name] = _shape(fhir.put(f"/fhir/Observation/{rid}", json={**body, "id": rid}, headers=h), rid)
        assert shapes["deleted withheld"] == shapes["withheld"] == shapes["made up"] == shapes["own name"], (who, shapes)
        assert shapes["made up"][0] == 422, (who, shapes)
    assert fhir.get(f"/fhir/{gone['Observation']}", headers=hospital).status_code == 410
