"""rv38k: review probes of ufix38 (``/admin/fidelity`` negotiated, ``ui_signin._next``), perf38a (``read_reference``
relative-first, ``IndexRows`` built by ``object.__new__``) and perf38b (``NotItems.passes`` by value).

Real HTTP through FastAPI's TestClient into the real store on each backend (``tests.module_store``; rv38g's fed
module for the fidelity page). A probe that shows a defect is a strict xfail naming its severity.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_rv38g_probes import BASE, HTML, fed, http, module_eng, operator

__all__ = ["fed", "http", "module_eng", "operator"]


# ---- ufix38: every answer of the negotiated address says it varies by Accept --------------------------------

@pytest.mark.parametrize("accept", ["*/*", "application/json"])
def test_rv38k_a_refused_program_is_told_the_answer_varies_by_accept(fed: Engine, accept: str) -> None:
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": accept}, follow_redirects=False)
    assert r.status_code == 401, r.status_code
    assert "accept" in r.headers.get("vary", "").lower(), dict(r.headers)


def test_rv38k_a_browser_refused_is_sent_to_sign_in_and_a_program_told_401_for_one_address(fed: Engine) -> None:
    """The two refusals of one address differ only by Accept (q values weighed): Chromium's Accept is a page."""
    with TestClient(create_app(fed), base_url=BASE) as anon:
        page = anon.get("/admin/fidelity", headers={"Accept": HTML}, follow_redirects=False)
        low = anon.get("/admin/fidelity", headers={"Accept": "application/json;q=0.9, text/html;q=0.8"},
                       follow_redirects=False)
    assert page.status_code == 303 and low.status_code == 401, (page.status_code, low.status_code)
    assert low.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("place", "expected"), [
    ("/ui/a/%2E%2E/%2E%2E/fhir/Patient", "/ui/duplicates"), ("/ui/x/..", "/ui/duplicates"),
    ("/ui/x/.", "/ui/duplicates"), ("/admin/fidelity/../../fhir/Patient", "/ui/duplicates"),
    ("/admin/fidelity?institution=阜宁", "/admin/fidelity?institution=%E9%98%9C%E5%AE%81")])
def test_rv38k_a_signed_in_person_is_sent_on_only_to_a_named_page(operator: TestClient, place: str,
                                                                  expected: str) -> None:
    r = operator.get("/ui/signin", params={"next": place}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, expected), (place, r.headers)


# ---- perf38a: references read through the real store, relative and absolute on this server -----------------

@pytest.fixture(scope="module")
def writer(module_eng: Engine) -> Iterator[TestClient]:
    token = module_eng.auth.issue_system_token("rv38k-his", "system/*.cruds")
    with TestClient(create_app(module_eng), base_url=BASE) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _patient(writer: TestClient, family: str) -> str:
    r = writer.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": family}],
                                           "gender": "female", "birthDate": "1980-01-01"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize("form", ["relative", "history", "absolute"])
def test_rv38k_a_reference_in_each_form_is_found_by_its_search(module_eng: Engine, writer: TestClient,
                                                                 form: str) -> None:
    pid = _patient(writer, f"RV38K{form}")
    ref = {"relative": f"Patient/{pid}", "history": f"Patient/{pid}/_history/1",
           "absolute": f"{module_eng.repository.base_url}/Patient/{pid}"}[form]
    obs = {"resourceType": "Observation", "status": "final", "subject": {"reference": ref},
           "performer": [{"reference": "Organization/fnxrmyy"}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
           "effectiveDateTime": "2026-01-02T08:00:00+08:00",
           "valueQuantity": {"value": 120, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}
    r = writer.post("/fhir/Observation", json=obs)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    for query in ({"subject": f"Patient/{pid}"}, {"patient": pid}, {"subject:Patient": pid}):
        found = writer.get("/fhir/Observation", params=query).json()
        assert [e["resource"]["id"] for e in found.get("entry") or ()] == [oid], (form, query, found)
    everything = writer.get(f"/fhir/Patient/{pid}/$everything").json()
    assert oid in {e["resource"]["id"] for e in everything.get("entry") or ()}, everything


def test_rv38k_a_fhir_client_preferring_fhir_json_is_told_401_not_sent_to_sign_in(fed: Engine) -> None:
    """rv38k (noted): ``application/fhir+json`` is JSON as much as ``application/json`` -- a FHIR client without
    a token preferring it over a page is a program (401 OperationOutcome), not a browser (303 to sign in)."""
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": "application/fhir+json, text/html;q=0.9"},
                     follow_redirects=False)
        page = anon.get("/admin/fidelity", headers={"Accept": "text/html, application/fhir+json;q=0.9"},
                        follow_redirects=False)
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome", r.status_code
    assert page.status_code == 303, page.status_code
