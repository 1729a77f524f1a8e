"""probef25 (twenty-fifth round): R4 search (hl7.org/fhir/R4/search.html) probed through real HTTP.

Each test states the R4 rule it checks. The app is the real one (FastAPI TestClient) over the real
store (SQLite and mongomock, the ``eng`` fixture of tests/test_fhir_api.py), with a system client's token.
The tests that only search the four patients (and the Encounter-dates test, whose records no other
test reads) share one engine a backend (``patients_http``); those writing Observations or patients
keep an engine each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import Names, module_eng, names
from tests.test_fhir_api import eng

__all__ = ["eng", "module_eng", "names"]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"


def _obs(oid: str, value: Any = None, when: str = "2026-09-20T08:00:00+08:00", code: str = "2345-7",
         system: str | None = LOINC, **extra: Any) -> dict[str, Any]:
    coding = {"code": code} if system is None else {"system": system, "code": code}
    body = {"resourceType": "Observation", "id": oid, "status": "final", "code": {"coding": [coding]},
            "subject": {"reference": "Patient/pa"}, "effectiveDateTime": when,
            "performer": [{"reference": "Organization/org"}], **extra}
    if value is not None:
        body["valueQuantity"] = {"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    return body


PATIENTS = [
    {"resourceType": "Patient", "id": "pa", "identifier": [{"system": MRN, "value": "A,1"}],
     "name": [{"family": "Müller", "given": ["Hans"]}], "birthDate": "1990-01-01", "gender": "male"},
    {"resourceType": "Patient", "id": "pb", "identifier": [{"system": MRN, "value": "B|2"}],
     "name": [{"family": "Smith", "given": ["Anna"]}], "birthDate": "1990-06-15", "gender": "female"},
    {"resourceType": "Patient", "id": "pc", "identifier": [{"system": MRN, "value": "C$3"}],
     "name": [{"family": "Smithers", "given": ["Bob"]}], "birthDate": "1991-03", "gender": "male"},
    {"resourceType": "Patient", "id": "pd", "identifier": [{"system": MRN, "value": "D\\4"}],
     "name": [{"family": "Jones"}]},  # no birth date, no gender
]


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        for body in PATIENTS:
            r = client.put(f"/fhir/Patient/{body['id']}", json=body)
            assert r.status_code == 201, r.text
        yield client


@pytest.fixture(scope="module")
def patients_http(module_eng: Engine) -> Iterator[TestClient]:
    """The same app and patients as ``http``, once per module and backend (``tests.module_store``,
    suitedup31), for the tests that write nothing another test of this file reads: the patient
    searches, and the Encounter dates (only that test writes and reads Encounters)."""
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("test-system", "system/*.cruds")
        for body in PATIENTS:
            r = client.put(f"/fhir/Patient/{body['id']}", json=body)
            assert r.status_code == 201, r.text
        yield client


def _put(http: TestClient, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body)
        assert r.status_code in (200, 201), r.text


def _own(http: TestClient, names: Names, query: str, *mine: str) -> list[str]:
    """``_ids`` of ``query`` among the test's own resources ``mine`` (``Names.number`` of the scenario's ids: the
    query restricted by ``_id``), answered in the scenario's ids: a test on the module's store counts only its own
    (suite44e's rule; each of these had opened an engine)."""
    ids = {names.number(i): i for i in mine}
    sep = "&" if "?" in query else "?"
    return sorted(ids[i] for i in _ids(http, query + sep + "_id=" + ",".join(ids)))


def _ids(http: TestClient, query: str) -> list[str]:
    r = http.get(query)
    assert r.status_code == 200, (query, r.text)
    return sorted(e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "include")


# --- dates (search.html#date, #prefix) -------------------------------------------------------------

def test_date_implicit_ranges_and_prefixes_on_a_date(patients_http: TestClient) -> None:
    q = "/fhir/Patient?birthdate="
    assert _ids(patients_http, q + "1990") == ["pa", "pb"]
    assert _ids(patients_http, q + "1990-01") == ["pa"]
    assert _ids(patients_http, q + "eq1990-01-01") == ["pa"]
    assert _ids(patients_http, q + "1991") == ["pc"]  # a stored month lies within the year
    assert _ids(patients_http, q + "1991-03-10") == []  # the stored month is not within the day
    assert _ids(patients_http, q + "lt1990-06-15") == ["pa"]
    assert _ids(patients_http, q + "le1990-06-15") == ["pa", "pb"]
    assert _ids(patients_http, q + "gt1990-06-15") == ["pc"]
    assert _ids(patients_http, q + "ge1990-06-15") == ["pb", "pc"]
    assert _ids(patients_http, q + "ne1990") == ["pc"]  # pd has no value
    assert _ids(patients_http, q + "sa1990-01-01") == ["pb", "pc"]
    assert _ids(patients_http, q + "eb1990-06-15") == ["pa"]
    ap = patients_http.get(q + "ap1990-01-02")  # 'ap' is server-defined: refused clearly is fine
    assert ap.status_code == 400 and ap.json()["issue"][0]["code"] == "not-supported", ap.text


def test_date_with_time_and_zone(patients_http: TestClient, names: Names) -> None:
    http, n = patients_http, names.number
    mine = ("o1", "o2")  # the scenario's ids, each written as n(id)
    _put(http, _obs(n("o1"), 5.4, when="2026-09-20T08:00:00+08:00"), _obs(n("o2"), 5.4, when="2026-09-20T10:30:00+08:00"))
    q = "/fhir/Observation?date="
    assert _own(http, names, q + "2026-09-20T00:00:00Z", *mine) == ["o1"]  # the same instant in another zone
    assert _own(http, names, q + "2026-09-20T08:00:00%2B08:00", *mine) == ["o1"]
    assert _own(http, names, q + "gt2026-09-20T08:00:00%2B08:00", *mine) == ["o2"]
    assert _own(http, names, q + "ge2026-09-20T08:00:00%2B08:00", *mine) == ["o1", "o2"]
    assert _own(http, names, q + "lt2026-09-20T02:00:00Z", *mine) == ["o1"]
    assert _own(http, names, q + "2026-09-20T10:30%2B08:00", *mine) == ["o2"]  # minute precision: the whole minute
    # eq: the search range must contain the stored one; a millisecond does not contain a second
    assert _own(http, names, q + "2026-09-20T08:00:00.000%2B08:00", *mine) == []


def test_a_date_search_value_that_is_not_a_date_is_a_400(patients_http: TestClient) -> None:
    for bad in ("1990-13", "abc", "1990-02-30", "2026-09-20T25:00:00Z", "xx1990"):
        r = patients_http.get("/fhir/Patient?birthdate=" + bad)
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"


# --- number and quantity (search.html#number, #quantity: implicit precision) ----------------------

def test_quantity_implied_precision(patients_http: TestClient, names: Names) -> None:
    http, n = patients_http, names.number
    mine = ("q534", "q536", "q540", "q544", "q546", "q5404")  # the scenario's ids, each written as n(id)
    _put(http, _obs(n("q534"), 5.34), _obs(n("q536"), 5.36), _obs(n("q540"), 5.4), _obs(n("q544"), 5.44),
         _obs(n("q546"), 5.46), _obs(n("q5404"), 5.404))
    q = "/fhir/Observation?value-quantity="
    assert _own(http, names, q + "5.4", *mine) == ["q536", "q540", "q5404", "q544"]
    assert _own(http, names, q + "5.40", *mine) == ["q540", "q5404"]
    assert _own(http, names, q + "5.4|" + UCUM + "|mmol/L", *mine) == ["q536", "q540", "q5404", "q544"]
    assert _own(http, names, q + "5.4||mmol/L", *mine) == ["q536", "q540", "q5404", "q544"]
    assert _own(http, names, q + "5.4|" + UCUM + "|mg/dL", *mine) == []
    assert _own(http, names, q + "gt5.44", *mine) == ["q546"]
    assert _own(http, names, q + "le5.36", *mine) == ["q534", "q536"]


def test_quantity_exponent_form(patients_http: TestClient, names: Names) -> None:
    http, n = patients_http, names.number
    _put(http, _obs(n("q100"), 100), _obs(n("q150"), 150))
    # 1e2: one significant figure -> the range 50..150 (search.html#number: "1e2 ... 95..105"? see report)
    got = http.get(f"/fhir/Observation?value-quantity=1e2&_id={n('q100')},{n('q150')}")
    assert got.status_code in (200, 400), got.text
    if got.status_code == 200:
        ids = sorted(e["resource"]["id"] for e in got.json().get("entry", []))
        assert n("q100") in ids


# --- tokens (search.html#token) --------------------------------------------------------------------

def test_token_forms(patients_http: TestClient, names: Names) -> None:
    http, n = patients_http, names.number
    mine = ("t1", "t2", "t3")  # the scenario's ids, each written as n(id)
    _put(http, _obs(n("t1"), 5, code="2345-7"), _obs(n("t2"), 5, code="2345-7", system=None),
         _obs(n("t3"), 5, code="718-7"))
    q = "/fhir/Observation?code="
    assert _own(http, names, q + "2345-7", *mine) == ["t1", "t2"]
    assert _own(http, names, q + LOINC + "|2345-7", *mine) == ["t1"]
    assert _own(http, names, q + "|2345-7", *mine) == ["t2"]  # no system
    assert _own(http, names, q + "2345-7,718-7", *mine) == ["t1", "t2", "t3"]  # OR
    assert _own(http, names, "/fhir/Observation?code:not=2345-7", *mine) == ["t3"]
    assert _own(http, names, "/fhir/Observation?code:not=" + LOINC + "|2345-7", *mine) == ["t2", "t3"]


def test_token_gender_missing_and_not(patients_http: TestClient) -> None:
    assert _ids(patients_http, "/fhir/Patient?gender=male") == ["pa", "pc"]
    assert _ids(patients_http, "/fhir/Patient?gender:not=male") == ["pb", "pd"]  # :not includes the absent
    assert _ids(patients_http, "/fhir/Patient?gender:missing=true") == ["pd"]
    assert _ids(patients_http, "/fhir/Patient?gender:missing=false") == ["pa", "pb", "pc"]
    assert _ids(patients_http, "/fhir/Patient?birthdate:missing=true") == ["pd"]
    r = patients_http.get("/fhir/Patient?gender:missing=maybe")
    assert r.status_code == 400, r.text


def test_escaped_identifier_values(patients_http: TestClient) -> None:
    q = "/fhir/Patient?identifier=" + MRN + "|"
    assert _ids(patients_http, q + "A\\,1") == ["pa"]
    assert _ids(patients_http, q + "B\\|2") == ["pb"]
    assert _ids(patients_http, q + "C\\$3") == ["pc"]
    assert _ids(patients_http, q + "D\\\\4") == ["pd"]
    assert _ids(patients_http, q + "A\\,1," + MRN + "|B\\|2") == ["pa", "pb"]


# --- strings (search.html#string) ------------------------------------------------------------------

def test_string_defaults_exact_contains(patients_http: TestClient) -> None:
    q = "/fhir/Patient?family="
    assert _ids(patients_http, q + "smith") == ["pb", "pc"]  # starts-with, case-insensitive
    assert _ids(patients_http, q + "SMI") == ["pb", "pc"]
    assert _ids(patients_http, q + "muller") == ["pa"]  # accent-insensitive
    assert _ids(patients_http, q + "Mül") == ["pa"]
    assert _ids(patients_http, "/fhir/Patient?family:exact=Smith") == ["pb"]
    assert _ids(patients_http, "/fhir/Patient?family:exact=smith") == []
    assert _ids(patients_http, "/fhir/Patient?family:exact=Muller") == []
    assert _ids(patients_http, "/fhir/Patient?family:contains=ith") == ["pb", "pc"]
    assert _ids(patients_http, "/fhir/Patient?family:contains=LLE") == ["pa"]
    assert _ids(patients_http, "/fhir/Patient?name=anna") == ["pb"]  # name covers given
    assert _ids(patients_http, q + "smith&family=smithe") == ["pc"]  # AND by repetition
    assert _ids(patients_http, q + "jones,muller") == ["pa", "pd"]  # OR by commas


# --- references (search.html#reference) ------------------------------------------------------------

def test_reference_forms(patients_http: TestClient, names: Names) -> None:
    http, n = patients_http, names.number
    mine = ("r1",)  # the scenario's ids, each written as n(id)
    _put(http, _obs(n("r1"), 5))
    q = "/fhir/Observation?subject="
    assert _own(http, names, q + "pa", *mine) == ["r1"]
    assert _own(http, names, q + "Patient/pa", *mine) == ["r1"]
    assert _own(http, names, q + "https://huren.example/fhir/Patient/pa", *mine) == ["r1"]
    assert _own(http, names, "/fhir/Observation?subject:Patient=pa", *mine) == ["r1"]
    assert _own(http, names, "/fhir/Observation?patient=pa", *mine) == ["r1"]
    assert _own(http, names, q + "Patient/pb", *mine) == []
    assert _own(http, names, q + "Group/pa", *mine) == []


# --- result parameters (search.html#_sort, #count, #total, #summary, #elements) --------------------

def test_sort_several_keys_and_descending(patients_http: TestClient) -> None:
    def order(query: str) -> list[str]:
        r = patients_http.get(query)
        assert r.status_code == 200, r.text
        return [e["resource"]["id"] for e in r.json()["entry"]]
    got = order("/fhir/Patient?_sort=-birthdate")
    assert got[:3] == ["pc", "pb", "pa"]
    assert order("/fhir/Patient?_sort=birthdate")[-3:] == ["pa", "pb", "pc"] or \
        order("/fhir/Patient?_sort=birthdate")[:3] == ["pa", "pb", "pc"]
    assert order("/fhir/Patient?_sort=gender,-family&gender:missing=false") == ["pb", "pc", "pa"]
    assert patients_http.get("/fhir/Patient?_sort=nosuchparam").status_code == 400


def test_count_zero_above_max_and_paging(patients_http: TestClient) -> None:
    r = patients_http.get("/fhir/Patient?_count=0")
    assert r.status_code == 200, r.text
    b = r.json()
    assert b.get("entry", []) == [] and b["total"] == 4
    r = patients_http.get("/fhir/Patient?_count=100000")
    assert r.status_code == 200, r.text
    assert len(r.json()["entry"]) == 4
    seen: list[str] = []
    page = patients_http.get("/fhir/Patient?_count=1&_sort=family").json()
    while True:
        seen += [e["resource"]["id"] for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = patients_http.get(nxt[0].replace("https://huren.example", "")).json()
    assert seen == ["pd", "pa", "pb", "pc"]
    assert patients_http.get("/fhir/Patient?_count=-1").status_code == 400
    assert patients_http.get("/fhir/Patient?_count=abc").status_code == 400


def test_total_and_summary_count(patients_http: TestClient) -> None:
    b = patients_http.get("/fhir/Patient?_summary=count").json()
    assert b["total"] == 4 and not b.get("entry")
    b = patients_http.get("/fhir/Patient?_total=none").json()
    assert len(b["entry"]) == 4
    b = patients_http.get("/fhir/Patient?_total=accurate").json()
    assert b["total"] == 4
    assert patients_http.get("/fhir/Patient?_total=bogus").status_code == 400


def test_summary_and_elements_mark_subsetted(patients_http: TestClient) -> None:
    r = patients_http.get("/fhir/Patient?_elements=birthDate&_id=pa")
    assert r.status_code == 200, r.text
    res = r.json()["entry"][0]["resource"]
    assert res["birthDate"] == "1990-01-01" and "name" not in res and res["id"] == "pa"
    assert any(t.get("code") == "SUBSETTED" for t in res.get("meta", {}).get("tag", []))
    r = patients_http.get("/fhir/Patient/pa?_elements=gender")
    assert r.status_code == 200, r.text
    assert "name" not in r.json() and r.json()["gender"] == "male"
    r = patients_http.get("/fhir/Patient?_summary=true&_id=pa")  # not claimed: refused clearly, not ignored
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported", r.text


def test_unknown_parameter_lenient_and_strict(patients_http: TestClient) -> None:
    # search.html#errors: the server chooses its default; huren's is strict (a 400 naming it)
    r = patients_http.get("/fhir/Patient?nosuchparam=1")
    assert r.status_code == 400 and "nosuchparam" in r.text
    r = patients_http.get("/fhir/Patient?nosuchparam=1", headers={"Prefer": "handling=lenient"})
    assert r.status_code == 200, r.text
    self_link = next(link["url"] for link in r.json()["link"] if link["relation"] == "self")
    assert "nosuchparam" not in self_link  # patients_http.html#search: the self link says what was applied
    assert len(r.json()["entry"]) == 4
    r = patients_http.get("/fhir/Patient?nosuchparam=1", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_date_prefixes_against_a_stored_month_and_a_period(patients_http: TestClient) -> None:
    """search.html#prefix: each prefix compares the search range with the stored value's range (pc is born
    "1991-03": a month; an Encounter lasts nine days; an open Period has no end)."""
    q = "/fhir/Patient?birthdate="
    assert _ids(patients_http, q + "gt1990") == ["pc"]
    assert _ids(patients_http, q + "le1990") == ["pa", "pb"]
    assert _ids(patients_http, q + "lt1991-03-15") == ["pa", "pb", "pc"]  # the month overlaps what lies below
    assert _ids(patients_http, q + "gt1991-03-15") == ["pc"]
    assert _ids(patients_http, q + "sa1991-02-28") == ["pc"]
    assert _ids(patients_http, q + "sa1991-03-15") == []
    assert _ids(patients_http, q + "eb1991-03-15") == ["pa", "pb"]
    assert _ids(patients_http, "/fhir/Patient?gender=MALE") == []  # administrative-gender codes are case-sensitive
    enc = {"resourceType": "Encounter", "status": "finished", "subject": {"reference": "Patient/pa"},
           "class": {"system": "patients_http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
           "serviceProvider": {"reference": "Organization/org"}}
    _put(patients_http, {**enc, "id": "e9", "period": {"start": "2026-09-01T08:00:00+08:00", "end": "2026-09-10T08:00:00+08:00"}},
         {**enc, "id": "eopen", "period": {"start": "2026-09-01T08:00:00+08:00"}})
    q = "/fhir/Encounter?date="
    assert _ids(patients_http, q + "2026-09-05") == []  # a day does not contain nine days
    assert _ids(patients_http, q + "2026-09") == ["e9"]  # the open one may run past September
    assert _ids(patients_http, q + "ne2026-09-05") == ["e9", "eopen"]
    assert _ids(patients_http, q + "ge2026-09-05") == ["e9", "eopen"]
    assert _ids(patients_http, q + "gt2030") == ["eopen"]  # no end: still going
    assert _ids(patients_http, q + "eb2030") == ["e9"]
    assert _ids(patients_http, q + "sa2026-08-31") == ["e9", "eopen"]


def test_count_above_the_maximum_is_capped_with_a_next_link(http: TestClient) -> None:
    r = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": f"m{i}"}, "request": {"method": "PUT", "url": f"Patient/m{i}"}}
        for i in range(1000)]})
    assert r.status_code == 200, r.text[:300]
    b = http.get("/fhir/Patient?_count=1500").json()
    assert b["total"] == 1004 and len(b["entry"]) == 1000
    nxt = next(link["url"] for link in b["link"] if link["relation"] == "next")
    assert len(http.get(nxt.replace("https://huren.example", "")).json()["entry"]) == 4
