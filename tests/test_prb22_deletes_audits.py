"""Review probes (rvprb, kept by prb22) of probe21's DELETE 404s and AuditEvent entity rule: the same answer for
withheld and missing (status, body, headers), and legitimate work still accepted. Real HL7 over
MLLP, real HTTP through FastAPI, real tokens, the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_audit_writes import _event
from tests.test_probe21_derived_writes import _token, _written

__all__ = ["fhir"]
_VARYING = {"date", "x-request-id", "x-correlation-id", "x-process-time", "content-length"}


def _shape(r: Any, rid: str) -> tuple[Any, ...]:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in _VARYING}
    return r.status_code, r.text.replace(rid, "ID"), sorted(headers.items())


def test_delete_answers_alike_in_status_body_and_headers(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DH1", "DOC-DH1", "dh1.rtf", "V"), document("DH2", "DOC-DH2", "dh2.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, gone = _written(engine, "DH1"), _written(engine, "DH2")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    for who, h in (("clinician", _token(engine, "user", ["user/*.cruds"])),
                   ("township", _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"}))):
        shapes = {}
        for name, ref in (("withheld", very["DocumentReference"]), ("deleted", gone["DocumentReference"]),
                          ("made up", "DocumentReference/rvprb-no-such-doc")):
            shapes[name] = _shape(fhir.delete(f"/fhir/{ref}", headers=h), ref.split("/", 1)[1])
        assert shapes["withheld"] == shapes["deleted"] == shapes["made up"], (who, shapes)
        assert shapes["made up"][0] == 404, (who, shapes)  # alike, and as a record not there
        assert '"code":"not-found"' in shapes["made up"][1], (who, shapes)
        # conditional delete matching nothing is not a 500 and not told apart from one matching a withheld record
        none = fhir.delete("/fhir/DocumentReference", params={"identifier": "rvprb-nothing"}, headers=h)
        assert none.status_code < 500, none.text


def test_clinician_audits_a_deletion_of_a_record_they_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An AuditEvent naming a record the clinician read and then deleted: not 'not known'."""
    acks = send(engine, document("DA1", "DOC-DA1", "da1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "DA1")
    clinician = _token(engine, "user", ["user/*.cruds"])
    assert fhir.delete(f"/fhir/{plain['DocumentReference']}", headers=clinician).status_code == 204
    r = fhir.post("/fhir/AuditEvent", json=_event(plain["Patient"], plain["DocumentReference"]), headers=clinician)
    assert r.status_code == 201, r.text
    # in one transaction: the delete and the event naming it (deletes run first)
    obs = plain.get("Observation")
    if obs:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _event(plain["Patient"], obs), "request": {"method": "POST", "url": "AuditEvent"}},
            {"request": {"method": "DELETE", "url": obs}}]}
        out = fhir.post("/fhir", json=bundle, headers=clinician)
        assert out.status_code == 200, out.text


def test_second_delete_by_the_full_hospital_still_204(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The unrestricted hospital HIS is not label-limited: its idempotent delete keeps 204 (R4 allows)."""
    acks = send(engine, document("DA2", "DOC-DA2", "da2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "DA2")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{plain['DocumentReference']}", headers=hospital).status_code == 204
    assert fhir.delete(f"/fhir/{plain['DocumentReference']}", headers=hospital).status_code in (200, 204)


def test_refused_citation_answers_alike_in_body_and_headers_over_http_and_in_a_transaction(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DQ1", "DOC-DQ1", "dq1.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    very = _written(engine, "DQ1")
    for who, h in (("clinician", _token(engine, "user", ["user/*.cruds"])),
                   ("township", _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"}))):
        shapes: dict[str, list[Any]] = {}
        for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/rvprb-none")):
            prov = {"resourceType": "Provenance", "recorded": "2026-12-01T00:00:00Z", "target": [{"reference": ref}],
                    "agent": [{"who": {"reference": very["Organization"]}}]}
            rid = ref.split("/", 1)[1]
            txn = {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": prov, "request": {"method": "POST", "url": "Provenance"}}]}
            shapes[name] = [_shape(fhir.post("/fhir/Provenance", json=prov, headers=h), rid),
                            _shape(fhir.post("/fhir", json=txn, headers=h), rid),
                            _shape(fhir.post("/fhir/AuditEvent", json=_event(very["Patient"], ref), headers=h), rid)]
        assert shapes["withheld"] == shapes["made up"], (who, shapes)
        # alike, and each refused as a citation of a record not known (422), not written
        assert [shape[0] for shape in shapes["made up"]] == [422, 422, 422], (who, shapes)
        assert all("not known" in shape[1] for shape in shapes["made up"]), (who, shapes)
