"""Conditional interactions as the caller may run them (nineteenth round, labelsmend19).

Found wrong in labels19's conditional references and the conditional writes before them:

- a token with ``user/Encounter.cr user/Patient.r`` is refused ``GET /fhir/Patient?identifier=…``
  (403) yet a transaction whose Encounter names ``Patient?identifier=…|A-1`` was resolved for it
  (and 412 for A-9 told that no one holds A-9): the reference's search needed only a read scope,
  the Bundle's authorisation never looked at the referenced type, and the match was not audited;
- a caller some labels are withheld from (a client bound to an institution, a clinician) whose
  ``If-None-Exist`` or ``PUT Patient?identifier=…`` matched only an R-labelled Patient made a
  second Patient with the same identifier (201), the caller's search seeing none;
- a transaction with a PATCH or ``POST Patient/p1`` entry answered 405 on ``POST /fhir`` (an
  endpoint that does take POST, and no ``Allow``): now 400 ``not-supported``; a batch entry keeps
  its own 405.

Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
MRN = "urn:huren:mrn:FNXRMYY"
STAFF = "urn:huren:staff:FNXRMYY"


def _encounter(subject: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished", "subject": {"reference": subject},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}


def _patient(mrn: str, pid: str | None = None, label: str | None = None) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}]}
    if pid:
        patient["id"] = pid
    if label:
        patient["meta"] = {"security": [{"system": CONF, "code": label}]}
    return patient


def _transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("labelsmend19-cond") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in (_patient("A-1", "zhang"), _patient("A-2", "twin-1"), _patient("A-2", "twin-2"),
                     _patient("A-3", "hidden", "R")):
            assert http.put(f"/fhir/Patient/{body['id']}", json=body, headers=system).status_code == 201
        yield engine, http, system
    engine.close()


def _token(engine: Any, kind: str, scopes: list[str], **extra: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-m19", kind=kind, client_id=f"{kind}-m19", scopes=scopes,
                                       **({"extra": extra} if extra else {}))
    return {"Authorization": f"Bearer {token}"}


def _holders(http: TestClient, system: dict[str, str], mrn: str) -> int:
    return http.get(f"/fhir/Patient?identifier={MRN}|{mrn}&_summary=count", headers=system).json()["total"]


def test_a_conditional_reference_needs_the_search_scope_of_its_type(world: Any) -> None:
    engine, http, system = world
    ward = _token(engine, "user", ["user/Encounter.cr", "user/Patient.r"])
    assert http.get(f"/fhir/Patient?identifier={MRN}|A-1", headers=ward).status_code == 403
    before = http.get("/fhir/Encounter?_summary=count", headers=system).json()["total"]
    answers = []
    for mrn in ("A-1", "A-9"):  # one held, one held by no one: the same refusal
        r = http.post("/fhir", json=_transaction(_post(_encounter(f"Patient?identifier={MRN}|{mrn}"))), headers=ward)
        answers.append(r.status_code)
    assert answers == [403, 403]
    assert http.get("/fhir/Encounter?_summary=count", headers=system).json()["total"] == before


def test_the_match_of_a_conditional_reference_is_in_the_audit_record(world: Any) -> None:
    engine, http, system = world
    doctor = {"resourceType": "Practitioner", "id": "dr-li", "identifier": [{"system": STAFF, "value": "D-7"}]}
    assert http.put("/fhir/Practitioner/dr-li", json=doctor, headers=system).status_code == 201
    ward = _token(engine, "user", ["user/Encounter.cr", "user/Practitioner.rs"])
    encounter = {**_encounter("Patient/zhang"),
                 "participant": [{"individual": {"reference": f"Practitioner?identifier={STAFF}|D-7"}}]}
    r = http.post("/fhir", json=_transaction(_post(encounter)), headers=ward)
    assert r.status_code == 200, r.text
    engine.audit.drain()
    mine = [e for e in engine.audit.events() if "transaction" in str(e.get("subtype") or e.get("action"))
            and any("Encounter/" in str(ent.get("what")) for ent in e.get("entity") or ())
            and "Encounter/" + r.json()["entry"][0]["response"]["location"].split("/")[1] in str(e)]
    assert len(mine) == 1, mine
    refs = [ent.get("what", {}).get("reference") for ent in mine[0]["entity"]]
    # the Practitioner the search found, at the version read (as a search's matches are recorded)
    assert "Practitioner/dr-li/_history/1" in refs, refs


@pytest.mark.parametrize("who", ["bound", "clinician"])
def test_a_conditional_write_whose_match_is_withheld_creates_nothing(world: Any, who: str) -> None:
    engine, http, system = world
    if who == "bound":  # another hospital's system, bound with ``huren client add --institution``
        caller = _token(engine, "system", ["system/*.cruds"], institution="FNYLWSY")
    else:
        caller = _token(engine, "user", ["user/Patient.cruds"])
    assert http.get("/fhir/Patient/hidden", headers=caller).status_code == 404
    body = _patient("A-3")
    r = http.post("/fhir/Patient", json=body, headers={**caller, "If-None-Exist": f"identifier={MRN}|A-3"})
    assert r.status_code == 412, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and "hidden" not in r.text
    assert http.put(f"/fhir/Patient?identifier={MRN}|A-3", json=body, headers=caller).status_code == 412
    r = http.post("/fhir", json=_transaction(_post(body, ifNoneExist=f"identifier={MRN}|A-3")), headers=caller)
    assert r.status_code == 412, r.text
    r = http.post("/fhir", json=_transaction(
        {"resource": body, "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|A-3"}}), headers=caller)
    assert r.status_code == 412, r.text
    assert _holders(http, system, "A-3") == 1  # still only the labelled one
    # an identifier no one holds is still created, one held by a Patient the caller sees still matched
    r = http.post("/fhir/Patient", json=_patient(f"N-{who}"), headers={**caller, "If-None-Exist": f"identifier={MRN}|N-{who}"})
    assert r.status_code == 201, r.text
    r = http.post("/fhir/Patient", json=_patient("A-1"), headers={**caller, "If-None-Exist": f"identifier={MRN}|A-1"})
    assert r.status_code == 200 and r.json()["id"] == "zhang", r.text


@pytest.mark.parametrize("entry", [
    {"request": {"method": "PATCH", "url": "Patient/zhang"}, "resource": {"resourceType": "Binary"}},
    {"request": {"method": "POST", "url": "Patient/p1"}, "resource": _patient("P-1")},
])
def test_a_transaction_with_an_entry_no_interaction_runs_is_a_400(world: Any, entry: dict[str, Any]) -> None:
    engine, http, system = world
    before = http.get("/fhir/Patient?_summary=count", headers=system).json()["total"]
    r = http.post("/fhir", json=_transaction(_post({"resourceType": "Patient"}), entry), headers=system)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["code"] == "not-supported"
    assert http.get("/fhir/Patient?_summary=count", headers=system).json()["total"] == before
    r = http.post("/fhir", json=_transaction(entry, kind="batch"), headers=system)
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("405"), r.text


def test_a_conditional_match_is_not_shaped_by_answer_parameters(world: Any) -> None:
    """``_summary=count`` in ``If-None-Exist`` answered "no match" (a duplicate Patient A-1 was
    created), ``_count=1`` would pick one of two twins: only the search parameters decide."""
    engine, http, system = world
    r = http.post("/fhir/Patient", json=_patient("A-1"),
                  headers={**system, "If-None-Exist": f"identifier={MRN}|A-1&_summary=count"})
    assert r.status_code == 200 and r.json()["id"] == "zhang", r.text
    assert _holders(http, system, "A-1") == 1
    r = http.post("/fhir/Patient", json=_patient("A-2"),
                  headers={**system, "If-None-Exist": f"_count=1&identifier={MRN}|A-2&_elements=id"})
    assert r.status_code == 412, r.text
    r = http.post("/fhir", json=_transaction(_post(_encounter(f"Patient?identifier={MRN}|A-1&_summary=count"))),
                  headers=system)
    assert r.status_code == 200, r.text
    assert _holders(http, system, "A-2") == 2
