"""A PUT with ``If-Match`` tells nothing of a record the caller may not read (twenty-second round, prb22).

Found: a caller some labels are withheld from (a clinician's app, the bound township HIS) sending
``PUT DocumentReference/<id>`` with ``If-Match`` was answered 404 at a withheld V document and 412
("does not exist") at a made-up id; in a transaction or batch the entry's ``ifMatch`` was compared
with the stored version before the caller's rights, so the right version of a withheld record
answered 404 and any other 412 -- its existence and its version number, guessed one by one. For a
caller answered 404 for what they may not see, an ``If-Match`` update of a record not there
(never stored, deleted) or withheld now answers alike: 404, the same words, over HTTP and in a
Bundle; a record they read still answers 412 for a stale version, and a malformed tag (``*``) is
400 whatever is stored (it was 404 at a withheld record over HTTP). The hospital's own system is
not label-limited: its 412 stays. Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the
real store.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_deletes_audits import _shape
from tests.test_probe21_derived_writes import _token, _written

__all__ = ["fhir"]


def _note(patient: str, rid: str) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "id": rid, "status": "current", "subject": {"reference": patient},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}


def _answers(fhir: TestClient, h: dict[str, str], ref: str, body: dict[str, Any], tag: str) -> list[Any]:
    rid = ref.split("/", 1)[1]
    entry = {"resource": body, "request": {"method": "PUT", "url": ref, "ifMatch": tag}}
    batch = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    assert batch.status_code == 200, batch.text
    return [_shape(fhir.put(f"/fhir/{ref}", json=body, headers={**h, "If-Match": tag}), rid),
            _shape(fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}), rid),
            batch.text.replace(rid, "ID").split('"entry"', 1)[1]]


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_if_match_at_a_withheld_deleted_or_made_up_record_answers_alike(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("IM1", "DOC-IM1", "im1.rtf", "V"), document("IM2", "DOC-IM2", "im2.rtf", "V"),
                document("IM3", "DOC-IM3", "im3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, gone, plain = _written(engine, "IM1"), _written(engine, "IM2"), _written(engine, "IM3")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    h = {"clinician": _token(engine, "user", ["user/*.cruds"]),
         "township": _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})}[who]
    patient = plain["Patient"]
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("deleted", gone["DocumentReference"]),
                      ("made up", "DocumentReference/" + deterministic_id("FNXRMYY", "DocumentReference", "PRB22-NO-SUCH"))):
        # the made-up id of huren's form, as a prober computes it (a name-form id answers in other words: prbfix23)
        body = _note(patient, ref.split("/", 1)[1])
        shapes[name] = [_answers(fhir, h, ref, body, tag) for tag in ('W/"1"', 'W/"2"', 'W/"9"', '*')]
    assert shapes["withheld"] == shapes["deleted"] == shapes["made up"], (who, shapes)
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).json()["meta"]["versionId"] == "1"
    # a record they read: a stale version is 412, the current one is written
    ref = plain["DocumentReference"]
    current = fhir.get(f"/fhir/{ref}", headers=h).json()
    assert fhir.put(f"/fhir/{ref}", json=current, headers={**h, "If-Match": 'W/"9"'}).status_code == 412
    txn = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": current, "request": {"method": "PUT", "url": ref, "ifMatch": 'W/"9"'}}]})
    assert txn.status_code == 412, txn.text
    r = fhir.put(f"/fhir/{ref}", json={**current, "description": "x"},
                 headers={**h, "If-Match": f'W/"{current["meta"]["versionId"]}"'})
    assert r.status_code == 200, r.text


def test_the_hospital_s_if_match_at_a_missing_record_stays_412(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("IM4", "DOC-IM4", "im4.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "IM4")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    body = _note(plain["Patient"], "prb22-none")
    assert fhir.put("/fhir/DocumentReference/prb22-none", json=body, headers={**hospital, "If-Match": 'W/"1"'}).status_code == 412
