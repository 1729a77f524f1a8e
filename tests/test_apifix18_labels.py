"""Review mends of the confidentiality labels on ``/fhir`` (api18): a Bundle's search, ``$everything``.

1. A batch's or transaction's ``GET Type?query`` entry ran the repository's search with the
   caller's ``Access`` beside it, not the caller's own search, so the ``_security:not`` /
   ``security-label:not`` an auditor's search adds was never added: an auditor's batch listed and
   counted the R and V documents and a V Observation that the same search over HTTP leaves out.
   Now each entry answers exactly what the search over HTTP answers (matches, ``total``,
   ``_summary=count``, paging, ``_include`` / ``_revinclude``).
2. ``$everything`` of a Patient labelled beyond the caller read that Patient for the system:
   200 (its unlabelled records), where its read and a missing Patient answer 404, and 410 once it
   was deleted where its read answers 404.

Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_api18_security_labels import CONF, _doc  # the labelled documents api18's tests write


def _label(resource: dict[str, Any], code: str | None) -> dict[str, Any]:
    if code:
        resource["meta"] = {"security": [{"system": CONF, "code": code}]}
    return resource


def _obs(oid: str, patient: str, code: str | None = None, order: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
        "performer": [{"reference": "Organization/fnxrmyy"}], "valueQuantity": {"value": 5.5, "unit": "mmol/L"}}
    if order:
        obs["basedOn"] = [{"reference": f"ServiceRequest/{order}"}]
    return _label(obs, code)


def _patient(pid: str, code: str | None = None) -> dict[str, Any]:
    return _label({"resourceType": "Patient", "id": pid, "name": [{"text": pid}]}, code)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("apifix18") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        order = _label({"resourceType": "ServiceRequest", "id": "hiv", "status": "active", "intent": "order",
                        "subject": {"reference": "Patient/zhang"}, "code": {"text": "HIV RNA"}}, "R")
        for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                     _patient("zhang"), _doc("plain", None), _doc("restricted", "R"), _doc("very", "V"),
                     _doc("normal", "N"), order, _obs("open", "zhang"), _obs("psych", "zhang", "V"),
                     _obs("via-order", "zhang", order="hiv"),
                     _patient("li", "V"), _obs("li-open", "li"), _patient("wang", "R"), _patient("zhao")):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text
        for pid in ("wang", "zhao"):  # deleted: one labelled R, one not
            assert http.delete(f"/fhir/Patient/{pid}", headers=system).status_code == 204
        yield engine, http, system
    engine.close()


def _bearer(engine: Any, kind: str, scopes: list[str], **kw: Any) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-x", kind=kind, client_id=f"{kind}-app", scopes=scopes, **kw)
    return {"Authorization": f"Bearer {token}"}


def _auditor(engine: Any) -> dict[str, str]:
    return _bearer(engine, "auditor", ["system/DocumentReference.rs", "system/Observation.rs",
                                       "system/ServiceRequest.rs", "system/Patient.rs"])


def _shape(bundle: dict[str, Any]) -> tuple[Any, ...]:
    """What a searchset answers, its id and links aside: the entries in order, and the total."""
    return ([(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"])
             for e in bundle.get("entry") or ()], bundle.get("total"))


SEARCHES = [
    "DocumentReference?subject=Patient/zhang",
    "DocumentReference?subject=Patient/zhang&_summary=count",
    "DocumentReference?subject=Patient/zhang&_count=1",
    "DocumentReference?subject=Patient/zhang&_count=1&_offset=1",
    "Observation?subject=Patient/zhang",
    "Observation?subject=Patient/zhang&_include=Observation:based-on",
    "Patient?_id=zhang&_revinclude=Observation:subject&_revinclude=DocumentReference:subject",
    "ServiceRequest?subject=Patient/zhang&_revinclude=Observation:based-on",
]


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_search_answers_what_the_same_search_over_http_answers(world: Any, kind: str) -> None:
    engine, http, system = world
    bundle = {"resourceType": "Bundle", "type": kind,
              "entry": [{"request": {"method": "GET", "url": url}} for url in SEARCHES]}
    clinician = _bearer(engine, "user", ["user/Patient.rs", "user/Observation.rs", "user/ServiceRequest.rs",
                                         "user/DocumentReference.rs"])
    for who in (_auditor(engine), clinician):
        r = http.post("/fhir", json=bundle, headers=who)
        assert r.status_code == 200, r.text
        entries = r.json()["entry"]
        for url, entry in zip(SEARCHES, entries, strict=True):
            assert entry["response"]["status"] == "200 OK", (url, entry)
            over_http = http.get(f"/fhir/{url}", headers=who)
            assert over_http.status_code == 200, over_http.text
            assert _shape(entry["resource"]) == _shape(over_http.json()), url
        listed = {e["resource"]["id"] for entry in entries for e in entry["resource"].get("entry") or ()}
        assert listed.isdisjoint({"restricted", "very", "psych", "hiv"}), listed
        assert entries[0]["resource"]["total"] == 2 and entries[1]["resource"]["total"] == 2
        assert entries[4]["resource"]["total"] == 2  # open, via-order: not the V one
    # the hospital's system still reads every record in a Bundle, as over HTTP
    everyone = http.post("/fhir", json=bundle, headers=system).json()["entry"]
    assert everyone[0]["resource"]["total"] == 4 and everyone[4]["resource"]["total"] == 3


def test_everything_of_a_withheld_patient_answers_like_a_missing_one(world: Any) -> None:
    engine, http, system = world
    auditor = _auditor(engine)
    resident_li = _bearer(engine, "patient", ["patient/*.rs"], patient="li")
    for who in (auditor, resident_li):
        for pid in ("li", "no-such"):
            read = http.get(f"/fhir/Patient/{pid}", headers=who)
            r = http.get(f"/fhir/Patient/{pid}/$everything", headers=who)
            assert (r.status_code, r.json()) == (404, read.json()), (pid, r.text)
    missing = http.get("/fhir/Patient/no-such/$everything", headers=auditor)
    assert http.get("/fhir/Patient/li/$everything", headers=auditor).text == missing.text
    # deleted: labelled beyond the auditor -> 404 as its read; unlabelled -> 410 as its read (unchanged)
    for pid, status in (("wang", 404), ("zhao", 410)):
        read = http.get(f"/fhir/Patient/{pid}", headers=auditor)
        r = http.get(f"/fhir/Patient/{pid}/$everything", headers=auditor)
        assert (read.status_code, r.status_code) == (status, status), (pid, r.text)
        assert r.json() == read.json()
    # the neighbours: the system reads Patient/li's $everything; an auditor reads an unlabelled one
    # without the V record in it; the resident whose Patient is R reads theirs (R is theirs to read)
    li = http.get("/fhir/Patient/li/$everything", headers=system).json()
    assert {e["resource"]["id"] for e in li["entry"]} == {"li", "li-open", "fnxrmyy"}
    zhang = http.get("/fhir/Patient/zhang/$everything", headers=auditor)
    assert zhang.status_code == 200
    ids = {e["resource"]["id"] for e in zhang.json()["entry"]}
    assert {"zhang", "open", "plain"} <= ids and ids.isdisjoint({"psych", "restricted", "very", "hiv"})
    r_patient = _patient("sun", "R")
    assert http.put("/fhir/Patient/sun", json=r_patient, headers=system).status_code == 201
    assert http.put("/fhir/Observation/sun-open", json=_obs("sun-open", "sun"), headers=system).status_code == 201
    sun = _bearer(engine, "patient", ["patient/*.rs"], patient="sun")
    mine = http.get("/fhir/Patient/sun/$everything", headers=sun)
    assert mine.status_code == 200, mine.text
    assert {e["resource"]["id"] for e in mine.json()["entry"]} == {"sun", "sun-open"}
