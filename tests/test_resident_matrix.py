"""No cross-patient read: two residents, a family member acting for one, and a system client
against every endpoint and interaction.

张三 has records at two hospitals (fn-zhang, fz-zhang, linked by national ID); 李四 has one
(fn-li). 王五 (fn-wang), 李四's son, acts for her with her consent ("proxy"). Each resident must see
exactly their own compartment, the proxy exactly 李四's (not 张三's, and not even 王五's own), and
anything else must look exactly like something that does not exist (404, same message shape, no
count, no include, no paging hint). The system client sees everything.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("engine.api.fhir", reason="needs the /fhir router on main")

from engine.api.app import create_app  # noqa: E402
from engine.identity.nationalid import check_character  # noqa: E402

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}


def nid(base17: str) -> str:
    return base17 + check_character(base17)


ZHANG = nid("32092319900101123")
LI = nid("32092319921120004")
WANG = nid("32092319700505007")
OWN = {"zhang": {"fn-zhang", "fz-zhang"}, "li": {"fn-li"}, "wang": {"fn-wang"}, "proxy": {"fn-li"}}
NIDS = {"zhang": ZHANG, "li": LI, "wang": WANG}
OBS = {"fn-zhang": "obs-fn-zhang", "fz-zhang": "obs-fz-zhang", "fn-li": "obs-fn-li", "fn-wang": "obs-fn-wang"}
# (me, other): every resident against the other, the proxy against both the other resident and
# the proxy's own records
PAIRS = [("zhang", "li"), ("li", "zhang"), ("proxy", "zhang"), ("proxy", "wang")]


def _patient(pid: str, inst: str, number: str, name: str, gender: str, birth: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"text": name}], "gender": gender, "birthDate": birth,
            "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid.upper()},
                           {"system": "urn:oid:2.16.156.10011.1.3", "value": number, "type": NNCHN}]}


def _obs(pid: str, value: float) -> dict:
    return {"resourceType": "Observation", "id": OBS[pid], "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Organization/fnxrmyy"}],
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One engine for the module: every test here only reads (the write attempts are refused)."""
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("matrix") / "var", http_port=0, mllp_port=0))
    repo = engine.repository
    repo.update({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"})
    repo.update(_patient("fn-zhang", "FNXRMYY", ZHANG, "张三", "male", "1990-01-01"))
    repo.update(_patient("fz-zhang", "FNZYY", ZHANG, "张三", "male", "1990-01-01"))
    repo.update(_patient("fn-li", "FNXRMYY", LI, "李四", "female", "1992-11-20"))
    repo.update(_patient("fn-wang", "FNXRMYY", WANG, "王五", "male", "1970-05-05"))
    for i, pid in enumerate(OBS):
        repo.update(_obs(pid, 5.0 + i))
        repo.update({**_obs(pid, 6.0 + i)})  # a second version, for vread/history
        repo.update({"resourceType": "DiagnosticReport", "id": f"dr-{pid}", "status": "final",
                     "code": {"text": "Glucose panel"}, "subject": {"reference": f"Patient/{pid}"},
                     "effectiveDateTime": "2026-09-20T09:00:00+08:00", "issued": "2026-09-20T10:00:00+08:00",
                     "performer": [{"reference": "Organization/fnxrmyy"}],
                     "result": [{"reference": f"Observation/{OBS[pid]}"}]})
    gone = _obs("fn-li", 9.9)
    gone["id"] = "obs-fn-li-deleted"
    repo.update(gone)
    repo.delete("Observation", "obs-fn-li-deleted")
    grant = engine.auth.resident.family.grant("fn-li", WANG, name="王五", relationship="CHILD", end="2099-12-31")
    engine.proxy_grant = grant  # the test's note of whom the proxy token names
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def http(world):
    with TestClient(create_app(world)) as c:
        yield c


def token(engine, who: str) -> dict:
    if who == "system":
        t = engine.auth.issue_system_token("his-a", "system/*.cruds")
    elif who == "proxy":  # 王五 acting for 李四, as his sign-in issues it
        grant = engine.proxy_grant
        key = grant.related["identifier"][0]["value"]
        t, _ = engine.auth.issue_token(subject=key, kind="patient", client_id="phr", person=key,
                                       scopes=["patient/*.rs", "openid", "fhirUser"], patient="fn-li",
                                       extra={"acting": grant.related_id, "consent": grant.consent_id})
    else:
        patient = {"zhang": "fn-zhang", "li": "fn-li"}[who]
        t, _ = engine.auth.issue_token(subject=f"person-{who}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs", "openid", "fhirUser"], patient=patient)
    return {"Authorization": f"Bearer {t}"}


def ids_in(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}


def patients_in(bundle: dict) -> set[str]:
    """The patient each entry belongs to (by subject), or its own id for Patient resources."""
    out = set()
    for e in bundle.get("entry", []):
        r = e.get("resource") or {}
        if r.get("resourceType") == "Patient":
            out.add(r["id"])
        elif "subject" in r:
            out.add(r["subject"]["reference"].split("/", 1)[1])
    return out


def _same_as_missing(http, headers, path: str, real_id: str) -> None:
    """The response for someone else's resource is byte-for-byte the response for a missing one."""
    r = http.get(path, headers=headers)
    missing = http.get(path.replace(real_id, "no-such-id"), headers=headers)
    assert r.status_code == 404 == missing.status_code, (path, r.status_code, r.text)
    assert r.text.replace(real_id, "X") == missing.text.replace("no-such-id", "X")


@pytest.mark.parametrize("me,other", PAIRS)
def test_reads_outside_the_compartment_look_like_nothing(http, world, me, other):
    h = token(world, me)
    for pid in OWN[me]:
        assert http.get(f"/fhir/Patient/{pid}", headers=h).status_code == 200
        assert http.get(f"/fhir/Observation/{OBS[pid]}", headers=h).status_code == 200
        assert http.get(f"/fhir/Observation/{OBS[pid]}/_history/1", headers=h).status_code == 200
        assert http.get(f"/fhir/Observation/{OBS[pid]}/_history", headers=h).status_code == 200
    for pid in OWN[other]:
        _same_as_missing(http, h, f"/fhir/Patient/{pid}", pid)
        _same_as_missing(http, h, f"/fhir/Observation/{OBS[pid]}", OBS[pid])
        assert http.get(f"/fhir/Observation/{OBS[pid]}/_history/1", headers=h).status_code == 404
        _same_as_missing(http, h, f"/fhir/Observation/{OBS[pid]}/_history", OBS[pid])
        _same_as_missing(http, h, f"/fhir/DiagnosticReport/dr-{pid}", f"dr-{pid}")
        _same_as_missing(http, h, f"/fhir/Patient/{pid}/$everything", pid)


def test_deleted_record_of_another_patient_is_404_not_410(http, world):
    _same_as_missing(http, token(world, "zhang"), "/fhir/Observation/obs-fn-li-deleted", "obs-fn-li-deleted")


def test_vread_of_another_patient_reads_like_a_missing_one(http, world):
    _same_as_missing(http, token(world, "zhang"), "/fhir/Observation/obs-fn-li/_history/1", "obs-fn-li")


SEARCHES = [
    "/fhir/Observation",
    "/fhir/Observation?_count=1",
    "/fhir/Patient",
    "/fhir/DiagnosticReport?_include=DiagnosticReport:result",
    "/fhir/Patient?_revinclude=Observation:subject",
    "/fhir/Observation?code=http://loinc.org|2345-7",
    "/fhir/Observation?subject=Patient/{other}",
    "/fhir/Observation?patient={other}",
    "/fhir/Observation?_id={other_obs}",
    "/fhir/Observation?subject:Patient.identifier=urn:huren:mrn:FNXRMYY|{OTHER}",
    "/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|{other_nid}",
    "/fhir/Observation?_summary=count",
]


@pytest.mark.parametrize("me,other", PAIRS)
@pytest.mark.parametrize("query", SEARCHES)
def test_searches_includes_chains_and_paging_stay_inside(http, world, me, other, query):
    h = token(world, me)
    other_pid = sorted(OWN[other])[0]
    url = query.format(other=other_pid, OTHER=other_pid.upper(), other_obs=OBS[other_pid],
                       other_nid=NIDS[other])
    seen_patients: set[str] = set()
    seen_ids: set[str] = set()
    pages = 0
    while url:
        r = http.get(url, headers=h)
        assert r.status_code == 200, (url, r.text)
        bundle = r.json()
        seen_patients |= patients_in(bundle)
        seen_ids |= ids_in(bundle)
        if "_summary=count" in url:
            assert bundle["total"] == (2 if me == "zhang" else 1)
        nxt = [lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"]
        url = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
        pages += 1
        assert pages < 20
    assert seen_patients <= OWN[me], (query, seen_patients)
    assert not any(i in seen_ids for p in OWN[other] for i in (p, OBS[p], f"dr-{p}"))


def test_a_resident_sees_the_whole_person_across_hospitals(http, world):
    bundle = http.get("/fhir/Observation", headers=token(world, "zhang")).json()
    assert ids_in(bundle) == {"obs-fn-zhang", "obs-fz-zhang"}


def test_batch_entries_outside_are_404_and_writes_are_refused(http, world):
    h = token(world, "zhang")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-fn-li"}},
        {"request": {"method": "GET", "url": "Observation/obs-fn-zhang"}},
        {"request": {"method": "GET", "url": "Observation?patient=fn-li"}},
        {"request": {"method": "GET", "url": "Observation/no-such-id"}},
    ]}
    r = http.post("/fhir", json=batch, headers=h)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"].startswith("404")
    assert entries[1]["response"]["status"].startswith("200")
    assert ids_in(entries[2].get("resource", {})) == set()
    # the refusal reads exactly like the answer for a record that does not exist
    assert (str(entries[0]).replace("obs-fn-li", "X") == str(entries[3]).replace("no-such-id", "X"))
    assert "李四" not in r.text and "6.0" not in str(entries[0])

    writes = [
        ("put", "/fhir/Observation/obs-fn-zhang", _obs("fn-zhang", 1.0)),
        ("post", "/fhir/Observation", _obs("fn-zhang", 1.0)),
        ("delete", "/fhir/Observation/obs-fn-zhang", None),
        ("post", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _obs("fn-zhang", 1.0), "request": {"method": "PUT", "url": "Observation/obs-fn-zhang"}}]}),
    ]
    for method, path, body in writes:
        r = http.request(method.upper(), path, json=body, headers=h)
        assert r.status_code == 403, (method, path, r.status_code)
    assert world.repository.read("Observation", "obs-fn-zhang")["valueQuantity"]["value"] == 6.0


def test_system_client_sees_everyone(http, world):
    h = token(world, "system")
    assert ids_in(http.get("/fhir/Observation", headers=h).json()) == set(OBS.values())
    assert http.get("/fhir/Observation/obs-fn-li", headers=h).status_code == 200


def test_bad_and_missing_tokens_get_nothing(http, world):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic eDp5"}):
        for path in ("/fhir/Observation", "/fhir/Observation/obs-fn-li", "/fhir/Patient/fn-li/$everything"):
            r = http.get(path, headers=headers)
            assert r.status_code == 401 and "obs-fn-li" not in r.text and "李四" not in r.text
            assert re.match(r"Bearer", r.headers["www-authenticate"])


FOREIGN = {  # me -> (a record of someone else to point at, what of theirs must never come back)
    "zhang": ("fn-li", ("李四", LI, "obs-fn-li", "dr-fn-li")),
    "proxy": ("fn-zhang", ("张三", ZHANG, "obs-fn-zhang", "dr-fn-zhang", "fz-zhang", "obs-fn-wang", WANG)),
}


@pytest.mark.parametrize("me", sorted(FOREIGN))
def test_every_get_endpoint_of_the_app_keeps_the_other_resident_out(http, world, me):
    """Scan every GET route the app publishes (FHIR, reports, audit, admin, CDS, UI) with 张三's token
    (and with 王五's, acting for 李四), path parameters pointing at someone else's records: nothing
    of theirs may come back (for the proxy, nothing of 张三's nor of 王五's own records)."""
    h = token(world, me)
    fill = {"rtype": "Observation", "type": "Observation", "resource_type": "Observation"}
    target, markers = FOREIGN[me]
    checked = 0
    for path, ops in http.app.openapi()["paths"].items():
        if "get" not in ops:
            continue
        url = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: fill.get(m.group(1), target), path)
        for query in ("", f"?patient={target}", f"?subject=Patient/{target}"):
            r = http.get(url + query, headers=h, follow_redirects=False)
            assert r.status_code < 500, (url + query, r.status_code, r.text[:300])
            leaked = [m for m in markers if m in r.text]
            assert not leaked, (url + query, r.status_code, leaked)
            checked += 1
    assert checked > 30
    # the markers are what 李四's data look like: the system client does get them back
    assert "李四" in http.get("/fhir/Patient/fn-li", headers=token(world, "system")).text
