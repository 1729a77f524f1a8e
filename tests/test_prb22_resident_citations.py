"""A resident's document or result citing another person's document (twenty-second round, prb22).

Found: ``_cites_only_readable`` (a ``relatesTo`` / ``derivedFrom`` naming only documents the writer
may read) asked a resident only for the label: a resident's DocumentReference appending to, or
Observation derived from, another person's document was written (201) -- and carried that
document's label, R, echoed in the answer's ``meta.security`` -- where a made-up id was refused
422: which of other people's documents exist (ids derive from the sender's numbers), and how they
are labelled. A confined caller now cites there only what a read shows them, as a DERIVED record
does (``_cites_only_shown``); another person's and a made-up document are refused alike. Real HL7
over MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_deletes_audits import _shape
from tests.test_prb22_own_entries import _note, _txn
from tests.test_probe21_derived_writes import OTHER, _token, _written

__all__ = ["fhir"]


def _post(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    return {**entry, "fullUrl": full_url} if full_url else entry


def _result(patient: str, org: str, ref: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "正文"}, "subject": {"reference": patient},
            "valueString": "x", "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": [{"reference": org}],
            "derivedFrom": [{"reference": ref}]}


def test_a_resident_cites_in_relates_to_and_derived_from_only_documents_they_read(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RC1", "DOC-RC1", "rc1.rtf"), document("RC2", "DOC-RC2", "rc2.rtf", pid=OTHER),
                document("RC3", "DOC-RC3", "rc3.rtf", "R", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    mine, other, other_r = _written(engine, "RC1"), _written(engine, "RC2"), _written(engine, "RC3")
    me, org = mine["Patient"], mine["Organization"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    shapes = {}
    for name, ref in (("other", other["DocumentReference"]), ("other R", other_r["DocumentReference"]),
                      ("made up", "DocumentReference/prb22-no-such-doc")):
        assert fhir.get(f"/fhir/{ref}", headers=resident).status_code == 404, name
        rid = ref.split("/", 1)[1]
        addendum = _note(me, relatesTo=[{"code": "appends", "target": {"reference": ref}}])
        shapes[name] = [_shape(fhir.post("/fhir/DocumentReference", json=addendum, headers=resident), rid),
                        _shape(fhir.post("/fhir/Observation", json=_result(me, org, ref), headers=resident), rid),
                        _shape(fhir.post("/fhir", headers=resident, json=_txn(_post(addendum))), rid)]
    assert shapes["other"] == shapes["other R"] == shapes["made up"], shapes
    assert all(s[0] == 422 for s in shapes["made up"]), shapes["made up"]
    # their own document, and one the same transaction posts, as before
    own = _note(me, relatesTo=[{"code": "appends", "target": {"reference": mine["DocumentReference"]}}])
    assert fhir.post("/fhir/DocumentReference", json=own, headers=resident).status_code == 201
    assert fhir.post("/fhir/Observation", json=_result(me, org, mine["DocumentReference"]), headers=resident).status_code == 201
    u = "urn:uuid:5d0c3a52-0000-4000-8000-0000000000a1"
    out = fhir.post("/fhir", headers=resident, json=_txn(
        _post(_result(me, org, u)), _post(_note(me, relatesTo=[{"code": "appends", "target": {"reference": u}}])),
        _post(_note(me), u)))
    assert out.status_code == 200, out.text
