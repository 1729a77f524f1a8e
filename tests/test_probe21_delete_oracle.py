"""A DELETE by a caller records are withheld from answers the same for a withheld record as for
one that does not exist (twenty-first round, probe21).

Found: a clinician's app (``user/*.cruds``) and the bound township HIS were answered 404 for
``DELETE`` of a V document (refused: a record they may not read is not theirs to delete) but 204
for a made-up id (deleting what is absent changes nothing) -- and the ids huren gives records are
derived from the sender's own numbers, so the answer told which withheld records exist; a batch
entry answered alike. Now such a caller's delete of a record that is not there (never stored, or
already deleted) is 404 too, over HTTP and in a Bundle. Real HL7 over MLLP, real HTTP through
FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_derived_writes import _token, _written

__all__ = ["fhir"]


def test_a_delete_tells_no_withheld_record_from_a_missing_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("XV1", "DOC-XV1", "xv1.rtf", "V"), document("XV2", "DOC-XV2", "xv2.rtf", "V"),
                document("XP1", "DOC-XP1", "xp1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, gone, plain = _written(engine, "XV1"), _written(engine, "XV2"), _written(engine, "XP1")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    callers = {"clinician": _token(engine, "user", ["user/*.cruds"]),
               "township": _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})}
    for who, h in callers.items():
        answers = {}
        for name, ref in (("withheld", very["DocumentReference"]), ("deleted withheld", gone["DocumentReference"]),
                          ("made up", "DocumentReference/no-such-document")):
            r = fhir.delete(f"/fhir/{ref}", headers=h)
            batch = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [
                {"request": {"method": "DELETE", "url": ref}}]})
            assert batch.status_code == 200, batch.text
            answers[name] = (r.status_code, r.text, batch.json()["entry"][0]["response"]["status"][:3])
        assert answers["withheld"] == answers["made up"] == answers["deleted withheld"], (who, answers)
        assert answers["made up"][0] == 404, (who, answers)
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).status_code == 200  # not deleted
    # a record they read is deleted as before
    clinician = callers["clinician"]
    assert fhir.delete(f"/fhir/{plain['DocumentReference']}", headers=clinician).status_code == 204
    assert fhir.get(f"/fhir/{plain['DocumentReference']}", headers=clinician).status_code == 410


def test_a_put_tells_no_withheld_record_from_a_fresh_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Mended in the twenty-third round (prb23): the fresh id is one of the form huren gives what the
    feeds send (``deterministic_id`` of a number never sent: what a prober computes), where such a
    caller now only updates a record it reads; at an id of its own (a name) it still creates
    (``tests/test_prb23_put_namespace.py``)."""
    acks = send(engine, document("XV3", "DOC-XV3", "xv3.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    very = _written(engine, "XV3")
    clinician = _token(engine, "user", ["user/*.cruds"])
    body = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": very["Patient"]},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    answers = [fhir.put(f"/fhir/DocumentReference/{rid}", json={**body, "id": rid}, headers=clinician).status_code
               for rid in (very["DocumentReference"].split("/", 1)[1],
                           deterministic_id("FNXRMYY", "DocumentReference", "DOC-XV3-NEVER-SENT"))]
    assert answers[0] == answers[1], answers
