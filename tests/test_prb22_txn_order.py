"""Review probes (rvprb, kept by prb22) of probe21's cited-records rule: legitimate transactions and writes by
label-limited callers (a clinician's app, the bound township HIS). Real HL7 over MLLP, real HTTP
through FastAPI, real tokens, the real store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_own_entries import _note
from tests.test_probe21_derived_writes import _provenance, _token, _written

__all__ = ["fhir"]
U1 = "urn:uuid:7b1e5b7c-0000-4000-8000-000000000001"


def _callers(engine: Engine) -> dict[str, dict[str, str]]:
    return {"clinician": _token(engine, "user", ["user/*.cruds"]),
            "township": _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})}


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_provenance_entry_before_the_entry_it_cites_by_urn_uuid(engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """FHIR: urn:uuid references resolve whatever the entry order. The Provenance first, its target second."""
    acks = send(engine, document("TO1", "DOC-TO1", "to1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "TO1")
    h = _callers(engine)[who]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _provenance(U1, plain["Organization"]), "request": {"method": "POST", "url": "Provenance"}},
        {"fullUrl": U1, "resource": _note(plain["Patient"]), "request": {"method": "POST", "url": "DocumentReference"}}]}
    out = fhir.post("/fhir", json=bundle, headers=h)
    assert out.status_code == 200, out.text


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_provenance_citing_a_record_put_as_created_in_the_same_transaction(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A PUT at a fresh id (update as create) and a Provenance POST citing it: creates run before updates."""
    acks = send(engine, document("TO2", "DOC-TO2", "to2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "TO2")
    h = _callers(engine)[who]
    rid = f"rvprb-put-created-{who}"
    probe = fhir.put(f"/fhir/DocumentReference/{rid}-alone", json=_note(plain["Patient"], id=f"{rid}-alone"), headers=h)
    assert probe.status_code == 201, probe.text  # this caller may create by PUT
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _note(plain["Patient"], id=rid), "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}},
        {"resource": _provenance(f"DocumentReference/{rid}", plain["Organization"]),
         "request": {"method": "POST", "url": "Provenance"}}]}
    out = fhir.post("/fhir", json=bundle, headers=h)
    assert out.status_code == 200, out.text


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_bound_put_update_as_create_of_own_id_and_provenance_afterwards(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("TO3", "DOC-TO3", "to3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "TO3")
    h = _callers(engine)[who]
    rid = f"rvprb-own-{who}"
    assert fhir.put(f"/fhir/DocumentReference/{rid}", json=_note(plain["Patient"], id=rid), headers=h).status_code == 201
    assert fhir.put(f"/fhir/DocumentReference/{rid}", json=_note(plain["Patient"], id=rid, description="x"),
                    headers=h).status_code == 200
    r = fhir.post("/fhir/Provenance", json=_provenance(f"DocumentReference/{rid}", plain["Organization"]), headers=h)
    assert r.status_code == 201, r.text
    # a clinician may cite a record they read, version-specific too
    r = fhir.post("/fhir/Provenance", json=_provenance(f"DocumentReference/{rid}/_history/1", plain["Organization"]),
                  headers=h)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_audit_event_entry_before_the_entry_it_names_by_urn_uuid(engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """The same for an AuditEvent's entity.what: a transaction's later entry is refused as 'not known'."""
    from tests.test_probe21_audit_writes import _event
    acks = send(engine, document("TO4", "DOC-TO4", "to4.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "TO4")
    h = _callers(engine)[who]
    u = "urn:uuid:7b1e5b7c-0000-4000-8000-000000000004"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _event(plain["Patient"], u), "request": {"method": "POST", "url": "AuditEvent"}},
        {"fullUrl": u, "resource": _note(plain["Patient"]), "request": {"method": "POST", "url": "DocumentReference"}}]}
    out = fhir.post("/fhir", json=bundle, headers=h)
    assert out.status_code == 200, out.text
