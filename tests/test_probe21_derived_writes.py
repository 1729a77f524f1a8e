"""A record built from others (``confidentiality.DERIVED``: a Provenance, a DetectedIssue) written by
a caller some labels are withheld from answers the same whether what it cites is withheld or
made up (twenty-first round, probe21).

Left by the twentieth round: a clinician (or the bound township HIS, or a resident with write
scopes) POSTed a Provenance or DetectedIssue citing a V document -- 201, then read back 404,
since a DERIVED record is withheld for what it cites -- while one citing a made-up id read back
200: an existence oracle for a record the caller reads 404. Now such a caller's DERIVED record
may cite only records it may read (a resident: its own; anyone else: stored and not withheld);
a withheld, made-up, or (for a resident) someone else's record is refused alike, 422, before
anything is written. Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_lead20_provenance_writes import _token, _written

__all__ = ["fhir"]
OTHER = "PID|1||ZY21X^^^FNXRMYY^MR||李^四||19700101|M\r"


def _provenance(target: str, org: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "recorded": "2026-12-01T00:00:00Z",
            "target": [{"reference": target}], "agent": [{"who": {"reference": org}}]}


def _issue(target: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "DetectedIssue", "status": "final", "patient": {"reference": patient},
            "implicated": [{"reference": target}]}


def _answer(fhir: TestClient, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, int | None]:
    """(status, diagnostics, the read-back status of what was created)."""
    r = fhir.post(f"/fhir/{body['resourceType']}", json=body, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code == 201:
        return 201, "", fhir.get(f"/fhir/{body['resourceType']}/{r.json()['id']}", headers=headers).status_code
    return r.status_code, r.json()["issue"][0]["diagnostics"], None


def test_a_derived_record_citing_a_withheld_record_answers_as_one_citing_a_made_up_id(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DV1", "DOC-DV1", "dv1.rtf", "V"), document("DP1", "DOC-DP1", "dp1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "DV1"), _written(engine, "DP1")
    org, patient = very["Organization"], very["Patient"]
    clinician = _token(engine, "user", ["user/*.cruds"])
    township = _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})
    for who, h in (("clinician", clinician), ("township", township)):
        assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=h).status_code == 404, who
        for build in (lambda t: _provenance(t, org), lambda t: _issue(t, patient)):
            withheld = _answer(fhir, build(very["DocumentReference"]), h)
            made_up = _answer(fhir, build("DocumentReference/no-such-document"), h)
            assert withheld == made_up, (who, build("x")["resourceType"], withheld, made_up)
            assert withheld[0] == 422, (who, withheld)
            # one it reads is written and read back as before
            assert _answer(fhir, build(plain["DocumentReference"]), h) == (201, "", 200), who


def test_a_resident_s_derived_record_cites_only_what_they_may_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DV2", "DOC-DV2", "dv2.rtf", "V"), document("DP2", "DOC-DP2", "dp2.rtf"),
                document("DO2", "DOC-DO2", "do2.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, plain, other = _written(engine, "DV2"), _written(engine, "DP2"), _written(engine, "DO2")
    pid = very["Patient"].split("/", 1)[1]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=pid)
    made_up = _answer(fhir, _issue("DocumentReference/no-such-document", very["Patient"]), resident)
    assert made_up[0] == 422, made_up
    for target in (very["DocumentReference"], other["DocumentReference"]):
        assert fhir.get(f"/fhir/{target}", headers=resident).status_code == 404
        assert _answer(fhir, _issue(target, very["Patient"]), resident) == made_up, target
    assert _answer(fhir, _issue(plain["DocumentReference"], very["Patient"]), resident) == (201, "", 200)


def test_an_update_may_not_turn_a_derived_record_to_a_withheld_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DV3", "DOC-DV3", "dv3.rtf", "V"), document("DP3", "DOC-DP3", "dp3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "DV3"), _written(engine, "DP3")
    clinician = _token(engine, "user", ["user/*.cruds"])
    created = fhir.post("/fhir/DetectedIssue", json=_issue(plain["DocumentReference"], plain["Patient"]), headers=clinician)
    assert created.status_code == 201, created.text
    answers = []
    for target in (very["DocumentReference"], "DocumentReference/no-such-document"):
        body = {**created.json(), "implicated": [{"reference": target}]}
        r = fhir.put(f"/fhir/DetectedIssue/{body['id']}", json=body, headers=clinician)
        answers.append((r.status_code, r.json()["issue"][0]["diagnostics"] if r.status_code >= 400 else ""))
        assert fhir.get(f"/fhir/DetectedIssue/{body['id']}", headers=clinician).status_code == 200
    assert answers[0] == answers[1] and answers[0][0] == 422, answers


def test_a_transaction_s_provenance_may_cite_an_earlier_entry(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("DP4", "DOC-DP4", "dp4.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "DP4")
    clinician = _token(engine, "user", ["user/*.cruds"])
    note = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": plain["Patient"]},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a0e5b7c-0000-4000-8000-000000000001", "resource": note,
         "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": _provenance("urn:uuid:6a0e5b7c-0000-4000-8000-000000000001", plain["Organization"]),
         "request": {"method": "POST", "url": "Provenance"}}]}
    out = fhir.post("/fhir", json=bundle, headers=clinician)
    assert out.status_code == 200, out.text
    prov = out.json()["entry"][1]["response"]["location"].split("/_history")[0]
    assert fhir.get(f"/fhir/{prov}", headers=clinician).status_code == 200
