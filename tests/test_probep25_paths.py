"""probep25: resident A against B through Bundles, paging links, writes, tokens, operations, and a
staff client bound to an institution against a record labelled R (twenty-fifth round). The same
world as tests/test_probep25_privacy.py (one engine, data written by a trusted client over HTTP)."""

from __future__ import annotations

import json

import pytest

from tests.test_probep25_privacy import B_NAME, B_NID, _h, build_world, names_b, resident


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    return world.probe_client

from engine.identity.nationalid import check_character  # noqa: E402

C_NID = "32092319800101001" + check_character("32092319800101001")
R = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def _sys(engine):
    return _h(engine.auth.issue_system_token("his-a", "system/*.cruds"))


def _entry_resources(bundle):
    return [e.get("resource") or {} for e in bundle.get("entry", [])]


def test_batch_gets_of_b_look_like_missing_ones(http, world):
    h = resident(world)

    def batch(ids_):
        return {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": u}} for u in ids_]}
    real = ["Patient/pb", "Observation/obs-b", "Observation/obs-b/_history/1", "Observation?subject=Patient/pb",
            "Observation?patient=pb&_summary=count", "Patient/pb/$everything", "Binary/bin-b",
            "Observation?_id=obs-b", "Patient?identifier=" + B_NID]
    fake = [u.replace("pb", "zz").replace("obs-b", "obs-zz").replace("bin-b", "bin-zz").replace(B_NID, "320923199001019999")
            for u in real]
    r = http.post("/fhir", json=batch(real), headers=h)
    m = http.post("/fhir", json=batch(fake), headers=h)
    assert r.status_code == m.status_code == 200, (r.status_code, r.text[:400])
    rr, mm = r.json()["entry"], m.json()["entry"]
    for u, a, b in zip(real, rr, mm, strict=True):
        assert a["response"]["status"] == b["response"]["status"], (u, a, b)
        ra, rb = a.get("resource") or {}, b.get("resource") or {}
        assert ra.get("total") == rb.get("total"), (u, ra, rb)
        assert names_b(json.dumps(a, ensure_ascii=False).replace(u, "")) == [], (u, a)


def test_transaction_of_gets_and_resident_writes_refused(http, world):
    h = resident(world)
    t = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-b"}},
        {"request": {"method": "GET", "url": "Observation?subject=Patient/pb"}}]}
    r = http.post("/fhir", json=t, headers=h)
    assert r.status_code in (200, 400, 403, 404), r.text[:300]
    assert names_b(r.text.replace("Observation?subject=Patient/pb", "").replace("Observation/obs-b", "")) == [], r.text


def test_a_paging_link_gives_another_token_nothing_of_the_first(http, world):
    ha, hb = resident(world, "pa"), resident(world, "pb")
    first = http.get("/fhir/Observation?_count=1", headers=ha).json()
    nxt = [lk["url"] for lk in first["link"] if lk["relation"] == "next"]
    assert nxt, first["link"]
    from urllib.parse import urlsplit
    u = urlsplit(nxt[0])
    path = u.path + ("?" + u.query if u.query else "")
    page_b = http.get(path, headers=hb)
    assert page_b.status_code in (200, 404, 410), page_b.text[:300]
    if page_b.status_code == 200:
        for res in _entry_resources(page_b.json()):
            assert (res.get("subject") or {}).get("reference") != "Patient/pa", res
    page_a = http.get(path, headers=ha).json()
    for res in _entry_resources(page_a):
        assert "Patient/pb" not in json.dumps(res), res


@pytest.mark.parametrize("scopes", [["patient/*.cruds"], ["patient/*.rs"], ["patient/Observation.cud"]])
def test_resident_writes_on_b_change_nothing(http, world, scopes):
    t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=scopes, patient="pa")
    h = _h(t)
    sysh = _sys(world)
    before = {p: http.get(p, headers=sysh).json() for p in ("/fhir/Observation/obs-b", "/fhir/Patient/pb")}
    count = http.get("/fhir/Observation?subject=Patient/pb&_summary=count", headers=sysh).json()["total"]
    obs = {"resourceType": "Observation", "id": "obs-b", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/pb"}}
    tries = [
        http.put("/fhir/Observation/obs-b", json=obs, headers=h),
        http.put("/fhir/Observation/obs-b", json={**obs, "subject": {"reference": "Patient/pa"}}, headers=h),
        http.post("/fhir/Observation", json={k: v for k, v in obs.items() if k != "id"}, headers=h),
        http.delete("/fhir/Observation/obs-b", headers=h),
        http.put("/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|" + B_NID,
                 json={"resourceType": "Patient", "name": [{"text": "改名"}]}, headers=h),
        http.post("/fhir/Observation", json={k: v for k, v in obs.items() if k != "id"},
                  headers={**h, "If-None-Exist": "patient=pb"}),
        http.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "PUT", "url": "Observation/obs-b"}, "resource": obs},
            {"request": {"method": "DELETE", "url": "Patient/pb"}}]}),
    ]
    for r in tries:
        assert r.status_code in (400, 403, 404, 405, 412, 422), (r.request.method, r.request.url, r.status_code, r.text[:300])
        assert names_b(r.text.replace(B_NID, "")) == [] or r.status_code == 400, r.text
    after = {p: http.get(p, headers=sysh).json() for p in before}
    assert after == before
    assert http.get("/fhir/Observation?subject=Patient/pb&_summary=count", headers=sysh).json()["total"] == count


def test_put_on_b_id_answers_like_a_missing_id(http, world):
    t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=["patient/*.cru"], patient="pa")
    h = _h(t)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pa"}}
    r = http.put("/fhir/Observation/obs-b", json={**obs, "id": "obs-b"}, headers=h)
    m = http.put("/fhir/Observation/zz-missing", json={**obs, "id": "zz-missing"}, headers=h)
    assert r.status_code in (403, 404, 405), r.text
    if m.status_code in (200, 201):  # a missing id was created (upsert): the answer differs by itself
        http.delete("/fhir/Observation/zz-missing", headers=_sys(world))
    assert r.text.replace("obs-b", "X") == m.text.replace("zz-missing", "X") or m.status_code in (200, 201), (r.text, m.text)


@pytest.mark.parametrize("how", ["expired", "wrong-aud", "no-patient", "other-issuer", "none"])
def test_bad_tokens_read_nothing(http, world, how):
    if how == "none":
        h = {}
    elif how == "expired":
        t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=["patient/*.rs"],
                                      patient="pa", ttl=-60)
        h = _h(t)
    elif how == "wrong-aud":
        t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=["patient/*.rs"],
                                      patient="pa", extra={"aud": "https://elsewhere.example/fhir"})
        h = _h(t)
    elif how == "other-issuer":
        t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=["patient/*.rs"],
                                      patient="pa", extra={"iss": "https://elsewhere.example"})
        h = _h(t)
    else:
        t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr", scopes=["patient/*.rs"])
        h = _h(t)
    for path in ("/fhir/Observation", "/fhir/Patient/pb", "/fhir/Patient", "/fhir/Observation?_summary=count"):
        r = http.get(path, headers=h)
        assert r.status_code in (401, 403), (how, path, r.status_code, r.text[:300])
        assert names_b(r.text) == [], r.text


def test_operations_refuse_a_resident(http, world):
    h = resident(world)
    match = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
        "resourceType": "Patient", "name": [{"text": B_NAME}], "birthDate": "1990-01-01",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": B_NID}]}}]}
    mr = http.post("/fhir/Patient/$match", json=match, headers=h)  # answered among what A may read
    assert mr.status_code in (200, 403) and names_b(mr.text) == [] and not mr.json().get("entry"), mr.text
    for r in (
              http.get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:2.16.156.10011.1.3|" + B_NID, headers=h),
              http.get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:huren:mrn:FNXRMYY|PB-MRN", headers=h),
              http.post("/fhir/Patient/$link", json={"resourceType": "Parameters"}, headers=h),
              http.post("/cds-services/order-select", json={"hook": "order-select", "hookInstance": "x",
                                                            "context": {"patientId": "pb"}}, headers=h),
              http.get("/admin", headers=h)):
        assert r.status_code in (401, 403, 404, 405), (r.request.url, r.status_code, r.text[:300])
        assert names_b(r.text.replace(B_NID, "").replace(B_NAME, "")) == [] and "Patient/pb" not in r.text, r.text


def test_system_and_type_history_and_search(http, world):
    h = resident(world)
    for path in ("/fhir/_history", "/fhir/Observation/_history", "/fhir?_type=Observation,Patient",
                 "/fhir/Patient/_history", "/fhir/_search"):
        r = http.get(path, headers=h)
        assert r.status_code != 500, path
        body = r.text
        assert "obs-b" not in body and B_NAME not in body and "Patient/pb" not in body, (path, body[:500])


# ---------------------------------------------------------------- staff bound to an institution vs R


@pytest.fixture(scope="module")
def labelled(http, world):
    sysh = _sys(world)
    pc = {"resourceType": "Patient", "id": "pc", "meta": {"security": [R]}, "name": [{"text": "孙保密"}],
          "generalPractitioner": [{"reference": "Practitioner/dr-1"}],
          "managingOrganization": {"reference": "Organization/org-1"},
          "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": C_NID}]}
    obs = {"resourceType": "Observation", "id": "obs-c", "meta": {"security": [R]}, "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
           "effectiveDateTime": "2026-09-20T08:00:00+08:00",
           "subject": {"reference": "Patient/pc"}, "performer": [{"reference": "Practitioner/dr-1"}]}
    prov = {"resourceType": "Provenance", "id": "prov-c", "recorded": "2026-09-20T08:00:00+08:00",
            "target": [{"reference": "Observation/obs-c"}], "agent": [{"who": {"reference": "Organization/org-1"}}]}
    for r in (pc, obs, prov):
        resp = http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=sysh)
        assert resp.status_code in (200, 201), resp.text
    t, _ = world.auth.issue_token(subject="his-b", kind="system", client_id="his-b", scopes=["system/*.rs"],
                                  extra={"institution": "FNZYY"})
    return _h(t)


WITHHELD = ("pc", "obs-c", "prov-c", "孙保密", C_NID)


def _nothing_withheld(text):
    return [w for w in WITHHELD if (f'"{w}"' in text or f"/{w}\"" in text or w in ("孙保密", C_NID) and w in text)]


@pytest.mark.parametrize("query", [
    "Patient/pc", "Observation/obs-c", "Observation/obs-c/_history/1", "Provenance/prov-c", "Patient/pc/$everything",
    "Patient", "Observation", "Provenance", "Observation?subject=Patient/pc", "Observation?subject:Patient.name=孙保密",
    "Practitioner?_revinclude=Patient:general-practitioner", "Practitioner?_revinclude=Observation:performer",
    "Organization?_revinclude=Patient:organization", "Observation?_include=Observation:subject",
    "Observation?_revinclude=Provenance:target", "Provenance?target=Observation/obs-c",
    "Patient?identifier=" + C_NID, "Observation?_id=obs-c", "Patient/pc/_history",
])
def test_bound_staff_do_not_see_r(http, world, labelled, query):
    r = http.get("/fhir/" + query, headers=labelled)
    assert r.status_code in (200, 400, 403, 404), (query, r.status_code, r.text[:300])
    text = r.text
    if r.status_code == 200:
        b = r.json()
        b.pop("link", None)
        text = json.dumps(b, ensure_ascii=False)
    assert _nothing_withheld(text) == [], (query, _nothing_withheld(text), text[:800])


@pytest.mark.parametrize("query,real,fake", [
    ("Observation?subject=Patient/pc&_summary=count", "pc", "zz"),
    ("Patient?identifier=" + C_NID + "&_summary=count", C_NID, "320923198001010099"),
    ("Provenance?target=Observation/obs-c&_summary=count", "obs-c", "obs-zz"),
    ("Observation/obs-c", "obs-c", "obs-zz"), ("Patient/pc/$everything", "pc", "zz"),
])
def test_bound_staff_counts_do_not_confirm_r(http, world, labelled, query, real, fake):
    r = http.get("/fhir/" + query, headers=labelled)
    m = http.get("/fhir/" + query.replace(real, fake), headers=labelled)
    assert r.status_code == m.status_code, (query, r.text[:300], m.text[:300])
    if r.status_code == 200:
        assert r.json().get("total") == m.json().get("total"), (query, r.json().get("total"), m.json().get("total"))
    else:
        assert r.text.replace(real, "X") == m.text.replace(fake, "X")


def test_guard_labelled_record_seen_by_unbound_system(http, world, labelled):
    """The fixture is live: an unbound system client reads pc (so the withholding above is real)."""
    assert http.get("/fhir/Patient/pc", headers=_sys(world)).status_code == 200
