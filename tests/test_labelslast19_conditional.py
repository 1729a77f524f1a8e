"""Conditional interactions and withheld records (nineteenth round, labelslast19).

Found wrong in labelsmend19's answer to a conditional write whose match is labelled beyond the
caller (a 412 instead of a second record) and in the scope conditional writes needed:

- the 412 was given for any criteria, so a clinician who reads ``DiagnosticReport/hiv`` as 404
  could test what it says: a transaction whose entry 1 is ``POST DiagnosticReport`` with
  ``ifNoneExist=subject=Patient/zhang&code=…|7917-8`` and entry 2 an invalid Patient answered 412
  for 7917-8 and 422 for 718-7 (the same by birth date on a hidden Patient). Now only one
  ``identifier`` -- which the caller already holds -- is refused so; any other criteria answer
  as a search that matches nothing;
- a conditional reference told "matches a record this caller is not shown" apart from "matches
  no Patient": now the same words;
- a ``user/Patient.cr`` token (no ``s``) was refused ``GET Patient?identifier=…`` (403) but
  ``POST Patient`` with ``If-None-Exist: identifier=…`` answered 200 with the matched record: a
  conditional interaction now needs the search scope, over HTTP and in a Bundle.

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
LOINC = "http://loinc.org"


def _patient(mrn: str, pid: str | None = None, label: str | None = None, **extra: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], **extra}
    if pid:
        patient["id"] = pid
    if label:
        patient["meta"] = {"security": [{"system": CONF, "code": label}]}
    return patient


def _report(code: str, rid: str | None = None, label: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": "final",
                              "code": {"coding": [{"system": LOINC, "code": code}]},
                              "subject": {"reference": "Patient/zhang"}}
    if rid:
        report["id"] = rid
    if label:
        report["meta"] = {"security": [{"system": CONF, "code": label}]}
    return report


INVALID = {"resourceType": "Patient", "gender": "not-a-gender"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("labelslast19-cond") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for path, body in (("Patient/zhang", _patient("A-1", "zhang")),
                           ("Patient/hidden", _patient("A-3", "hidden", "R", birthDate="1981-03-04",
                                                       gender="female", name=[{"family": "王", "given": ["秀"]}])),
                           ("DiagnosticReport/hiv", _report("7917-8", "hiv", "R"))):
            assert http.put(f"/fhir/{path}", json=body, headers=system).status_code == 201
        yield engine, http, system


def _token(engine: Any, scopes: list[str]) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject="user-l19", kind="user", client_id="user-l19", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def _count(http: TestClient, system: dict[str, str], query: str) -> int:
    return http.get(f"/fhir/{query}{'&' if '?' in query else '?'}_summary=count", headers=system).json()["total"]


def _probe(http: TestClient, caller: dict[str, str], rtype: str, criteria: str) -> tuple[int, str]:
    """A transaction rolled back by its invalid second entry: the status tells which entry failed."""
    body = _report("0000-0") if rtype == "DiagnosticReport" else _patient("P-new")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": body, "request": {"method": "POST", "url": rtype, "ifNoneExist": criteria}},
        {"resource": INVALID, "request": {"method": "POST", "url": "Patient"}}]}
    r = http.post("/fhir", json=bundle, headers=caller)
    return r.status_code, r.json()["issue"][0].get("diagnostics", "")


@pytest.mark.parametrize(("rtype", "withheld", "other"), [
    ("DiagnosticReport", f"subject=Patient/zhang&code={LOINC}|7917-8", f"subject=Patient/zhang&code={LOINC}|718-7"),
    ("Patient", "birthdate=1981-03-04", "birthdate=1981-03-05"),
    ("Patient", "family=王&gender=female", "family=王&gender=male"),
])
def test_a_withheld_record_cannot_be_tested_by_conditional_criteria(
        world: Any, rtype: str, withheld: str, other: str) -> None:
    engine, http, system = world
    clinician = _token(engine, ["user/Patient.cruds", "user/DiagnosticReport.cruds"])
    assert http.get("/fhir/DiagnosticReport/hiv", headers=clinician).status_code == 404
    assert http.get("/fhir/Patient/hidden", headers=clinician).status_code == 404
    before = _count(http, system, rtype)
    answers = [_probe(http, clinician, rtype, criteria) for criteria in (withheld, other)]
    assert answers[0][0] == answers[1][0] == 422, answers  # the invalid entry, both times
    assert "not shown" not in answers[0][1]
    assert _count(http, system, rtype) == before  # rolled back


def test_one_identifier_held_by_a_withheld_record_is_still_refused(world: Any) -> None:
    """The caller already holds the identifier: refusing it tells them nothing new, and keeps a
    second Patient A-3 out of the store."""
    engine, http, system = world
    clinician = _token(engine, ["user/Patient.cruds"])
    status, text = _probe(http, clinician, "Patient", f"identifier={MRN}|A-3")
    assert status == 412 and "not shown" in text, text
    assert _count(http, system, f"Patient?identifier={MRN}|A-3") == 1


def test_a_conditional_reference_to_a_withheld_record_reads_as_no_match(world: Any) -> None:
    engine, http, system = world
    clinician = _token(engine, ["user/Patient.cruds", "user/Encounter.cruds"])
    texts = []
    for mrn in ("A-3", "A-9"):  # held by the R-labelled Patient, held by no one
        encounter = {"resourceType": "Encounter", "status": "finished",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                     "subject": {"reference": f"Patient?identifier={MRN}|{mrn}"}}
        r = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}}]}, headers=clinician)
        assert r.status_code == 412, r.text
        texts.append(r.json()["issue"][0]["diagnostics"].replace(mrn, "?"))
    assert texts[0] == texts[1], texts


def test_a_conditional_write_needs_the_search_scope(world: Any) -> None:
    engine, http, system = world
    for scopes in (["user/Patient.cr"], ["user/Patient.cru"]):
        caller = _token(engine, scopes)
        assert http.get(f"/fhir/Patient?identifier={MRN}|A-1", headers=caller).status_code == 403
        r = http.post("/fhir/Patient", json=_patient("A-1"), headers={**caller, "If-None-Exist": f"identifier={MRN}|A-1"})
        assert r.status_code == 403 and "zhang" not in r.text, r.text
        r = http.post("/fhir", headers=caller, json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _patient("A-1"), "request": {"method": "POST", "url": "Patient",
                                                       "ifNoneExist": f"identifier={MRN}|A-1"}}]})
        assert r.status_code == 403 and "zhang" not in r.text, r.text
        if "u" in scopes[0].rpartition(".")[2]:
            r = http.put(f"/fhir/Patient?identifier={MRN}|A-1", json=_patient("A-1"), headers=caller)
            assert r.status_code == 403, r.text
    assert _count(http, system, f"Patient?identifier={MRN}|A-1") == 1
    # a plain create needs no search
    assert http.post("/fhir/Patient", json=_patient("C-1"), headers=_token(engine, ["user/Patient.cr"])).status_code == 201
