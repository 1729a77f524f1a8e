"""probep25: can resident A read anything that names resident B? (twenty-fifth round)

One engine, two residents: A (pa) and B (pb), both at FNXRMYY with the same general practitioner,
B's data written by a trusted hospital client through real HTTP (FastAPI TestClient on the real
app, the real store). Resident A's token (patient/*.rs) then tries every read path, write and
token trick; each probe asserts what must hold: nothing that names B, no difference between B's
id and a missing one. A staff client bound to an institution probes the same paths against a
record labelled R.
"""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.identity.nationalid import check_character

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
A_NID = "32092319900101123" + check_character("32092319900101123")
B_NID = "32092319921120004" + check_character("32092319921120004")
B_NAME = "钱秘密"
KNOWN = {"obs-a-contained", "obs-a-note-b"}
B_MARK = ("Patient/pb", B_NAME, B_NID, "PB-MRN", "obs-b", "enc-b", "cond-b", "bin-b", "doc-b")


def _patient(pid, nid, name, mrn):
    return {"resourceType": "Patient", "id": pid, "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
            "gender": "female", "birthDate": "1990-01-01",
            "generalPractitioner": [{"reference": "Practitioner/dr-1"}],
            "managingOrganization": {"reference": "Organization/org-1"},
            "identifier": [{"system": "urn:huren:mrn:FNXRMYY", "value": mrn},
                           {"system": "urn:oid:2.16.156.10011.1.3", "value": nid, "type": NNCHN}]}


def _obs(oid, pid, value, **extra):
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Practitioner/dr-1"}],
            "valueQuantity": {"value": value, "unit": "mmol/L"}, **extra}


def _resources():
    yield {"resourceType": "Organization", "id": "org-1", "name": "阜宁县人民医院"}
    yield {"resourceType": "Practitioner", "id": "dr-1", "name": [{"text": "王医生"}]}
    yield _patient("pa", A_NID, "赵一", "PA-MRN")
    yield _patient("pb", B_NID, B_NAME, "PB-MRN")
    for pid, tag in (("pa", "a"), ("pb", "b")):
        yield _obs(f"obs-{tag}", pid, 5.5)
        yield _obs(f"obs-{tag}", pid, 6.5)  # a second version for vread/_history
        yield _obs(f"obs-{tag}2", pid, 7.5)
        yield {"resourceType": "Encounter", "id": f"enc-{tag}", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": f"Patient/{pid}"}, "serviceProvider": {"reference": "Organization/org-1"}}
        yield {"resourceType": "Condition", "id": f"cond-{tag}", "subject": {"reference": f"Patient/{pid}"},
               "code": {"text": "糖尿病"}, "encounter": {"reference": f"Encounter/enc-{tag}"}}
        yield {"resourceType": "Binary", "id": f"bin-{tag}", "contentType": "text/plain",
               "securityContext": {"reference": f"Patient/{pid}"},
               "data": base64.b64encode(f"note of {pid}".encode()).decode()}
        yield {"resourceType": "DocumentReference", "id": f"doc-{tag}", "status": "current",
               "subject": {"reference": f"Patient/{pid}"},
               "content": [{"attachment": {"contentType": "text/plain", "url": f"Binary/bin-{tag}"}}]}
        yield {"resourceType": "Provenance", "id": f"prov-{tag}", "recorded": "2026-09-20T08:00:00+08:00",
               "target": [{"reference": f"Observation/obs-{tag}"}],
               "agent": [{"who": {"reference": "Organization/org-1"}}]}
    # in A's compartment, naming B: a group appointment, a family-history-ish observation, a
    # contained copy of B
    yield {"resourceType": "Appointment", "id": "appt-ab", "status": "booked",
           "start": "2026-10-01T08:00:00+08:00", "end": "2026-10-01T09:00:00+08:00",
           "participant": [{"actor": {"reference": "Patient/pa"}, "status": "accepted"},
                           {"actor": {"reference": "Patient/pb"}, "status": "accepted"}]}
    yield _obs("obs-a-focus-b", "pa", 1.0, focus=[{"reference": "Patient/pb"}])
    yield _obs("obs-a-contained", "pa", 2.0,
               contained=[{"resourceType": "Patient", "id": "donor", "name": [{"text": B_NAME}],
                           "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": B_NID}]}],
               performer=[{"reference": "#donor"}])
    yield _obs("obs-a-note-b", "pa", 3.0, hasMember=[{"reference": "Observation/obs-b"}])


def build_world(tmp_path_factory):
    """The engine with A's and B's data, written over HTTP by a trusted client (a generator)."""
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("probep25") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as client:
        engine.probe_client = client
        sys_h = _h(engine.auth.issue_system_token("his-a", "system/*.cruds"))
        for r in _resources():
            resp = client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=sys_h)
            assert resp.status_code in (200, 201), (r["id"], resp.status_code, resp.text)
        yield engine
    engine.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    return world.probe_client


def _h(token):
    return {"Authorization": f"Bearer {token}"}


def resident(engine, pid="pa", **kw):
    t, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                   scopes=["patient/*.rs", "openid", "fhirUser"], patient=pid, **kw)
    return _h(t)


def names_b(text: str) -> list[str]:
    return [m for m in B_MARK if m in text]


def _ok_clean(resp, label=""):
    assert resp.status_code == 200, (label, resp.status_code, resp.text[:400])
    assert names_b(resp.text) == [], (label, names_b(resp.text), resp.text[:800])
    return resp.json()


def _same_as_missing(http, h, path, real, method="get", **kw):
    r = getattr(http, method)(path, headers=h, **kw)
    m = getattr(http, method)(path.replace(real, "zz-missing"), headers=h, **kw)
    assert r.status_code == m.status_code and r.status_code in (403, 404), (path, r.status_code, m.status_code, r.text)
    assert r.text.replace(real, "X") == m.text.replace("zz-missing", "X"), (path, r.text, m.text)
    assert names_b(r.text.replace(real, "X")) == [], r.text


def ids(bundle):
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("path,real", [
    ("/fhir/Patient/pb", "pb"), ("/fhir/Observation/obs-b", "obs-b"), ("/fhir/Observation/obs-b/_history/1", "obs-b"),
    ("/fhir/Observation/obs-b/_history", "obs-b"), ("/fhir/Encounter/enc-b", "enc-b"),
    ("/fhir/Condition/cond-b", "cond-b"), ("/fhir/Binary/bin-b", "bin-b"), ("/fhir/DocumentReference/doc-b", "doc-b"),
    ("/fhir/Provenance/prov-b", "prov-b"), ("/fhir/Patient/pb/$everything", "pb"),
    ("/fhir/Observation/obs-b?_elements=id", "obs-b"), ("/fhir/Patient/pb/_history/1", "pb"),
])
def test_b_ids_read_like_missing_ones(http, world, path, real):
    _same_as_missing(http, resident(world), path, real)


def test_own_reads_work_and_name_no_one_else(http, world):
    h = resident(world)
    for path in ("/fhir/Patient/pa", "/fhir/Observation/obs-a", "/fhir/Observation/obs-a/_history/1",
                 "/fhir/Observation/obs-a/_history", "/fhir/Encounter/enc-a", "/fhir/Condition/cond-a",
                 "/fhir/DocumentReference/doc-a"):
        _ok_clean(http.get(path, headers=h), path)


@pytest.mark.parametrize("query", [
    "Observation", "Observation?_count=1000", "Patient", "Encounter", "Condition", "DocumentReference", "Binary",
    "Provenance", "AuditEvent", "Appointment", "Practitioner", "Organization",
    "Observation?subject=Patient/pb", "Observation?patient=pb", "Observation?subject:Patient.name=" + B_NAME,
    "Observation?subject:Patient.identifier=" + B_NID,
    "Patient?general-practitioner=Practitioner/dr-1", "Patient?general-practitioner:Practitioner.name=王医生",
    "Patient?organization=Organization/org-1", "Patient?name=" + B_NAME, "Patient?identifier=" + B_NID,
    "Patient?_id=pb", "Patient?_id=pa,pb", "Observation?_id=obs-a,obs-b",
    "Observation?_include=Observation:subject", "Observation?_include=*", "Observation?_include=Observation:has-member",
    "Observation?_include:iterate=Observation:has-member", "Observation?_include=Observation:focus",
    "Observation?_revinclude=Provenance:target", "Observation?_revinclude:iterate=Provenance:target&_include=Observation:has-member",
    "Patient?_revinclude=Observation:subject", "Patient?_revinclude=*",
    "Practitioner?_revinclude=Patient:general-practitioner", "Practitioner?_revinclude=Observation:performer",
    "Organization?_revinclude=Patient:organization", "Organization?_revinclude=Encounter:service-provider",
    "Organization?_revinclude=Provenance:agent", "Practitioner?_revinclude=*",
    "Encounter?_revinclude=Condition:encounter", "Condition?_include=Condition:encounter",
    "DocumentReference?_include=*", "Observation?focus=Patient/pb",
    "Observation?_elements=subject,contained", "Observation?_summary=true", "Observation?_summary=data",
    "Observation?_contained=true",
])
def test_searches_return_nothing_of_b(http, world, query):
    """Every search answers with A's own data only; an error answer is allowed but must not echo B."""
    r = http.get("/fhir/" + query, headers=resident(world))
    assert r.status_code in (200, 400, 403), (query, r.status_code, r.text[:300])
    if r.status_code != 200:
        assert names_b(r.text.replace(query, "")) == [], (query, names_b(r.text), r.text[:1500])
        return
    body = r.json()
    body.pop("link", None)  # the self link repeats the query
    # the two resources of test_resources_pointing_at_b_are_shown (findings reported there) aside
    entries = [e for e in body.get("entry", []) if e.get("resource", {}).get("id") not in KNOWN]
    for e in entries:
        res = e.get("resource", {})
        assert res.get("id") not in {"pb", "obs-b", "obs-b2", "enc-b", "cond-b", "bin-b", "doc-b", "prov-b"}, (query, res)
        assert names_b(json.dumps(e, ensure_ascii=False)) == [], (query, e)
    rest = {k: v for k, v in body.items() if k != "entry"}
    assert names_b(json.dumps(rest, ensure_ascii=False)) == [], (query, rest)


@pytest.mark.parametrize("query,real,fake", [
    ("Observation?subject=Patient/pb&_summary=count", "pb", "zz-missing"),
    ("Observation?patient=pb&_total=accurate", "pb", "zz-missing"),
    ("Observation?subject:Patient.name=" + B_NAME + "&_summary=count", B_NAME, "无此人"),
    ("Observation?subject:Patient.identifier=" + B_NID + "&_summary=count", B_NID, "320923199001019999"),
    ("Patient?identifier=" + B_NID + "&_summary=count", B_NID, "320923199001019999"),
    ("Patient?name=" + B_NAME + "&_total=accurate", B_NAME, "无此人"),
    ("Provenance?target=Observation/obs-b&_summary=count", "obs-b", "zz-missing"),
    ("Appointment?actor=Patient/pb&_summary=count", "pb", "zz-missing"),
    ("Practitioner?_has:Patient:general-practitioner:name=" + B_NAME, B_NAME, "无此人"),
    ("Patient?_has:Observation:subject:_id=obs-b", "obs-b", "zz-missing"),
    ("Condition?encounter=Encounter/enc-b&_summary=count", "enc-b", "zz-missing"),
    ("DocumentReference?_id=doc-b&_summary=count", "doc-b", "zz-missing"),
])
def test_counts_and_errors_do_not_tell_b_exists(http, world, query, real, fake):
    h = resident(world)
    r = http.get("/fhir/" + query, headers=h)
    m = http.get("/fhir/" + query.replace(real, fake), headers=h)
    assert r.status_code == m.status_code, (query, r.status_code, m.status_code, r.text[:300], m.text[:300])
    if r.status_code == 200:
        assert r.json().get("total") == m.json().get("total"), (query, r.json().get("total"), m.json().get("total"))
        assert ids(r.json()) == ids(m.json())
    else:
        assert r.text.replace(real, "X") == m.text.replace(fake, "X"), (r.text, m.text)


def test_totals_count_only_a(http, world):
    h = resident(world)
    r = _ok_clean(http.get("/fhir/Observation?_summary=count", headers=h))
    full = http.get("/fhir/Observation?_count=1000&_total=accurate", headers=h).json()
    assert r["total"] == len(full["entry"]) == full["total"], (r, full.get("total"), ids(full))
    sys_h = _h(world.auth.issue_system_token("his-a", "system/*.rs"))
    everyone = http.get("/fhir/Observation?_summary=count", headers=sys_h).json()["total"]
    assert r["total"] < everyone


def test_resources_in_a_compartment_naming_b_are_withheld(http, world):
    """Guard: A's Observation whose focus is B, and an Appointment with both, are withheld whole."""
    h = resident(world)
    _same_as_missing(http, h, "/fhir/Observation/obs-a-focus-b", "obs-a-focus-b")
    _same_as_missing(http, h, "/fhir/Appointment/appt-ab", "appt-ab")
    ev = http.get("/fhir/Patient/pa/$everything", headers=h).json()
    assert not {"obs-a-focus-b", "appt-ab"} & ids(ev), ids(ev)
    assert not {"obs-a-focus-b"} & ids(http.get("/fhir/Observation?_count=100", headers=h).json())


def test_a_reference_to_bs_observation_is_shown_to_a(http, world):
    """FINDING: A's Observation with hasMember -> Observation/obs-b (B's record) is shown to A, in a
    read, a search and $everything: A learns the id of a record in B's compartment. The README's rule
    for AuditEvent (entity.what may not point into another compartment: "a reference to someone
    else's Observation names that person's record") is applied only to AuditEvent."""
    h = resident(world)
    _same_as_missing(http, h, "/fhir/Observation/obs-a-note-b", "obs-a-note-b")
    ev = http.get("/fhir/Patient/pa/$everything", headers=h)
    assert "obs-b" not in ev.text.replace("obs-b2", "")


def test_contained_copy_of_b_is_not_shown(http, world):
    """FINDING: a contained Patient inside A's Observation carrying B's name and national ID (a
    trusted client wrote it; e.g. a donor or a mother) is shown to A whole: read, search, $everything.
    The check for "a reference to another Patient / another resident's identifier" does not look
    into contained resources."""
    h = resident(world)
    r = http.get("/fhir/Observation/obs-a-contained", headers=h)
    assert r.status_code in (200, 404)
    assert names_b(r.text) == [], r.text
    s = http.get("/fhir/Observation?_id=obs-a-contained", headers=h)
    assert names_b(s.text) == [], s.text
    ev = http.get("/fhir/Patient/pa/$everything", headers=h)
    assert names_b(ev.text) == [], [e["resource"]["id"] for e in ev.json().get("entry", [])]

