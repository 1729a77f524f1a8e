"""privprobe27: what resident A's token reaches of resident B, through every FHIR read path -- and,
at the end, what a bound hospital system and a clinician learn of an R-labelled result of B's.

The example feeds go in as real HL7 (``POST /hl7v2``) into one real store; a hospital's system then
writes records in A's compartment that cite B's (``tests/privprobe27_world.py``). A's token
(SMART patient context, ``patient/*.rs``) reads, vreads, searches (every parameter type, chains,
``_has``, includes with ``:iterate``, ``_elements``/``_summary``, ``_total``, ``_sort``), pages,
reads history, runs ``$everything`` and Bundle GETs: nothing may name B (her name, number, any id of
her records), and "B's, not yours" must answer exactly as "no such record".
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.privprobe27_world import B_NAME, build
from tests.test_rvrvops26_quarantine_access import _session

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """The world, and one of B's results re-sent R-labelled by her hospital (for the bound probes
    below; to A it is B's either way)."""
    for world in build(tmp_path_factory):
        sysh = world.system()
        rid = world.b_refs["Observation"][0]
        obs = world.http.get(f"/fhir/Observation/{rid}", headers=sysh).json()
        obs["meta"] = {"security": [{"system": SEC, "code": "R"}]}
        assert world.http.put(f"/fhir/Observation/{rid}", json=obs, headers=sysh).status_code == 200
        world.r_obs = rid
        world.r_reports = [d["id"] for d in world.engine.repository.search(
            "DiagnosticReport", [("_count", "500")]).resources if f"Observation/{rid}" in json.dumps(d)]
        assert world.r_reports, "the feed's report cites the result"
        yield world


def _clean(w, resp, label=""):
    assert resp.status_code == 200, (label, resp.status_code, resp.text[:400])
    assert w.names_b(resp.text) == [], (label, w.names_b(resp.text), resp.text[:600])
    return resp.json()


def _like_missing(w, h, path, real):
    r = w.http.get(path, headers=h)
    m = w.http.get(path.replace(real, "zz-missing-0"), headers=h)
    assert (r.status_code, m.status_code) in ((404, 404), (403, 403), (410, 410)), (path, r.status_code, m.status_code)
    assert r.text.replace(real, "X") == m.text.replace("zz-missing-0", "X"), (path, r.text, m.text)
    assert w.names_b(r.text.replace(real, "X")) == [], r.text


def _ids(bundle):
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}


def test_the_world_holds_both(w):
    """Guard: the system client sees B's records and the links; A sees their own."""
    assert len(w.b_refs["Observation"]) >= 2 and w.b_refs.get("DetectedIssue")
    own = _clean(w, w.http.get("/fhir/Observation?_count=200", headers=w.resident()))
    assert len(own.get("entry", [])) >= 10


def test_reads_vreads_and_instance_history_of_b_are_as_missing(w):
    h = w.resident()
    for rtype, ids in w.b_refs.items():
        for rid in ids[:2]:
            _like_missing(w, h, f"/fhir/{rtype}/{rid}", rid)
            _like_missing(w, h, f"/fhir/{rtype}/{rid}/_history/1", rid)
            _like_missing(w, h, f"/fhir/{rtype}/{rid}/_history", rid)
            _like_missing(w, h, f"/fhir/{rtype}/{rid}?_elements=id", rid)
            _like_missing(w, h, f"/fhir/{rtype}/{rid}?_summary=false", rid)


def test_conditional_reads_of_b_are_as_missing(w):
    h = w.resident()
    rid = w.b_refs["Observation"][0]
    for header in ({"If-None-Match": 'W/"1"'}, {"If-None-Match": "*"},
                   {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        r = w.http.get(f"/fhir/Observation/{rid}", headers={**h, **header})
        m = w.http.get("/fhir/Observation/zz-missing-0", headers={**h, **header})
        assert r.status_code == m.status_code == 404, (header, r.status_code, m.status_code)
        assert r.text.replace(rid, "X") == m.text.replace("zz-missing-0", "X")
        head = w.http.head(f"/fhir/Observation/{rid}", headers={**h, **header})
        assert head.status_code == 404 and dict(head.headers).get("etag") is None


LINKED_TYPES = ("DetectedIssue", "Provenance", "Observation", "DiagnosticReport", "Encounter", "ServiceRequest",
                "Condition", "AuditEvent", "RelatedPerson")


@pytest.mark.parametrize("rtype", LINKED_TYPES)
def test_a_record_of_a_naming_b_is_not_shown_to_a(w, rtype):
    """A's own record citing B's (written by a hospital): a read shows nothing of B (refused whole, or
    without the citation)."""
    h = w.resident()
    for rid, t in w.links.items():
        if t != rtype:
            continue
        r = w.http.get(f"/fhir/{t}/{rid}", headers=h)
        assert r.status_code in (200, 404), (rid, r.status_code, r.text[:300])
        assert w.names_b(r.text) == [], (rid, w.names_b(r.text), r.text[:600])


SEARCHES = [
    "Observation?_count=200",
    "Observation?_count=200&_include=Observation:derived-from&_include=Observation:has-member",
    "Observation?_count=200&_include:iterate=Observation:has-member&_include:iterate=Observation:derived-from",
    "Observation?_count=200&_revinclude=Provenance:target&_revinclude=DetectedIssue:implicated",
    "Observation?_count=200&_revinclude:iterate=Observation:has-member&_revinclude:iterate=Observation:derived-from",
    "DiagnosticReport?_count=200&_include=DiagnosticReport:result",
    "ServiceRequest?_count=200&_include=ServiceRequest:based-on",
    "ServiceRequest?_count=200&_revinclude=ServiceRequest:based-on",
    "Encounter?_count=200&_include=Encounter:part-of",
    "Encounter?_count=200&_revinclude=Encounter:part-of",
    "Condition?_count=200&_include=Condition:evidence-detail",
    "DetectedIssue?_count=200&_include=DetectedIssue:implicated",
    "DetectedIssue?_count=200",
    "Provenance?_count=200&_include=Provenance:target",
    "AuditEvent?_count=200",
    "Observation?_count=200&_elements=derivedFrom,hasMember,subject",
    "Observation?_count=200&_total=accurate",
    "Observation?_summary=count",
    "Patient?_count=200&_revinclude=Observation:subject&_revinclude=DetectedIssue:patient",
    "Patient?_count=200&_revinclude=Encounter:subject&_revinclude:iterate=Encounter:part-of",
    "Observation?_count=200&_sort=-date",
    "Observation?_count=200&_sort=patient",
    "DiagnosticReport?_count=200&_elements=result",
    "Encounter?_count=200&_total=accurate&_sort=-date",
    "RelatedPerson?_count=200",
    "Patient?_count=200&_revinclude=RelatedPerson:patient",
]


@pytest.mark.parametrize("query", SEARCHES)
def test_a_search_names_nothing_of_b(w, query):
    _clean(w, w.http.get(f"/fhir/{query}", headers=w.resident()), query)


def _search_total(w, h, query):
    r = w.http.get(f"/fhir/{query}", headers=h)
    return r.status_code, (r.json().get("total") if r.status_code == 200 else r.text)


def test_searches_naming_b_answer_as_for_a_made_up_value(w):
    """Every parameter type, chained and ``_has``: B's value answers as a made-up one."""
    h = w.resident()
    b, obs, sr, enc = w.b[0], w.b_refs["Observation"][0], w.b_refs["ServiceRequest"][0], w.b_refs["Encounter"][0]
    probes = [
        (f"Observation?subject=Patient/{b}&_total=accurate", b),
        (f"Observation?patient={b}&_total=accurate", b),
        (f"Observation?_id={obs}&_total=accurate", obs),
        (f"Observation?derived-from=Observation/{obs}&_total=accurate", obs),
        (f"Observation?has-member=Observation/{obs}&_total=accurate", obs),
        (f"DiagnosticReport?result=Observation/{obs}&_total=accurate", obs),
        (f"Provenance?target=Observation/{obs}&_total=accurate", obs),
        (f"DetectedIssue?implicated=Observation/{obs}&_total=accurate", obs),
        (f"ServiceRequest?based-on=ServiceRequest/{sr}&_total=accurate", sr),
        (f"Encounter?part-of=Encounter/{enc}&_total=accurate", enc),
        (f"Condition?evidence-detail=Observation/{obs}&_total=accurate", obs),
        (f"AuditEvent?entity=Patient/{b}&_total=accurate", b),
        (f"AuditEvent?patient=Patient/{b}&_total=accurate", b),
        (f"Observation?subject:Patient.name={quote(B_NAME)}&_total=accurate", quote(B_NAME)),
        (f"Observation?subject.identifier={w.b_number}&_total=accurate", w.b_number),
        (f"Observation?subject:Patient.identifier={w.b_number}&_total=accurate", w.b_number),
        (f"Patient?name={quote(B_NAME)}&_total=accurate", quote(B_NAME)),
        (f"Patient?identifier={w.b_number}&_total=accurate", w.b_number),
        (f"Patient?_has:Observation:subject:_id={obs}&_total=accurate", obs),  # (``_has``: 400 alike)
        (f"Observation?derived-from:Observation.subject=Patient/{b}&_total=accurate", b),
        (f"DiagnosticReport?result.subject=Patient/{b}&_total=accurate", b),
        (f"DiagnosticReport?result:Observation.patient.name={quote(B_NAME)}&_total=accurate", quote(B_NAME)),
        (f"Encounter?part-of.subject:Patient.name={quote(B_NAME)}&_total=accurate", quote(B_NAME)),
        (f"ServiceRequest?based-on:ServiceRequest.subject=Patient/{b}&_total=accurate", b),
    ]
    made_up = {b: "zz-missing-0", obs: "zz-missing-1", sr: "zz-missing-2", enc: "zz-missing-3",
               w.b_number: "110101199003070000", quote(B_NAME): quote("查无此人")}
    diffs = []
    for query, real in probes:
        got = _search_total(w, h, query)
        fake = _search_total(w, h, query.replace(real, made_up[real]))
        if got != fake or (got[0] == 200 and got[1] != 0) or (got[0] != 200 and w.names_b(str(got[1]))):
            diffs.append((query, got, fake))
    assert diffs == []


def test_paging_links_hold_for_the_token_that_made_them(w):
    """A next link made for a system client, followed with A's token: only A's records."""
    sysh, h = w.system(), w.resident()
    page = w.http.get("/fhir/Observation?_count=5", headers=sysh).json()
    seen = []
    url = next((lk["url"] for lk in page.get("link", []) if lk["relation"] == "next"), None)
    while url:
        path = url[url.index("/fhir/"):]
        resp = w.http.get(path, headers=h)
        if resp.status_code != 200:
            assert resp.status_code in (400, 403, 404, 410) and not w.names_b(resp.text)
            break
        body = _clean(w, resp, path)
        seen += list(_ids(body))
        url = next((lk["url"] for lk in body.get("link", []) if lk["relation"] == "next"), None)
    assert not set(seen) & set(w.b_refs["Observation"])


def test_type_and_system_history_name_nothing_of_b(w):
    h = w.resident()
    for path in ("/fhir/Observation/_history?_count=500", "/fhir/_history?_count=500",
                 "/fhir/DetectedIssue/_history", "/fhir/Provenance/_history", "/fhir/AuditEvent/_history",
                 "/fhir/Patient/_history", "/fhir/RelatedPerson/_history"):
        r = w.http.get(path, headers=h)
        assert r.status_code in (200, 400, 403, 404, 405), (path, r.status_code)
        assert w.names_b(r.text) == [], (path, w.names_b(r.text), r.text[:500])


def test_everything_of_a_names_nothing_of_b_and_b_is_as_missing(w):
    h = w.resident()
    for pid in w.a:
        _clean(w, w.http.get(f"/fhir/Patient/{pid}/$everything?_count=500", headers=h), pid)
        every = "Observation,DiagnosticReport,DetectedIssue,Provenance,AuditEvent,RelatedPerson,Condition,Encounter"
        _clean(w, w.http.get(f"/fhir/Patient/{pid}/$everything?_type={every}&_count=500", headers=h), pid)
    _like_missing(w, h, f"/fhir/Patient/{w.b[0]}/$everything", w.b[0])


def test_batch_gets_of_b_answer_as_missing(w):
    h = w.resident()
    obs, b = w.b_refs["Observation"][0], w.b[0]
    urls = [f"Observation/{obs}", f"Patient/{b}", f"Observation?subject=Patient/{b}",
            f"Observation/{obs}/_history/1", f"Observation/{obs}/_history",
            "DiagnosticReport?_include=DiagnosticReport:result", "Observation?_include=Observation:has-member"]
    for url in urls:
        bundle = {"resourceType": "Bundle", "type": "batch",
                  "entry": [{"request": {"method": "GET", "url": url}},
                            {"request": {"method": "GET", "url": url.replace(obs, "zz-missing-0").replace(b, "zz-missing-0")}}]}
        r = w.http.post("/fhir", json=bundle, headers=h)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        entries = r.json()["entry"]
        texts = [str(e).replace(obs, "X").replace(b, "X").replace("zz-missing-0", "X").replace(f"entry[{i}]", "entry[i]")
                 for i, e in enumerate(entries)]
        assert texts[0] == texts[1], (url, texts)
        assert w.names_b(r.text.replace(obs, "").replace(b, "")) == [] or w.names_b(texts[0]) == [], (url, r.text[:600])


def test_transaction_gets_of_b_answer_as_missing(w):
    """A transaction Bundle's GET entries (read, search) are decided as a batch's are."""
    h = w.resident()
    obs, b = w.b_refs["Observation"][0], w.b[0]
    answers = []
    for rid, pid in ((obs, b), ("zz-missing-0", "zz-missing-1")):
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [{"request": {"method": "GET", "url": f"Observation?subject=Patient/{pid}&_total=accurate"}},
                            {"request": {"method": "GET", "url": f"Observation/{rid}"}}]}
        r = w.http.post("/fhir", json=bundle, headers=h)
        answers.append((r.status_code, r.text.replace(obs, "X").replace(b, "Y").replace("zz-missing-0", "X")
                        .replace("zz-missing-1", "Y")))
    assert answers[0] == answers[1], answers
    assert w.names_b(answers[0][1]) == []


def test_history_since_and_at_name_nothing_of_b(w):
    h = w.resident()
    for path in ("/fhir/Observation/_history?_since=2000-01-01T00:00:00Z&_count=500",
                 "/fhir/_history?_since=2000-01-01T00:00:00Z&_count=500",
                 "/fhir/Observation/pp27-obs-member/_history", "/fhir/Observation/pp27-obs-member/_history/1",
                 "/fhir/DiagnosticReport/pp27-dr-ab/_history/1", "/fhir/AuditEvent/pp27-audit-ab/_history"):
        r = w.http.get(path, headers=h)
        assert r.status_code in (200, 400, 404), (path, r.status_code)
        assert w.names_b(r.text) == [], (path, w.names_b(r.text), r.text[:400])


def test_bs_attempt_on_as_record_tells_a_nothing_of_b(w):
    """B's token reads A's result (404 to her; the audit record names its owner, A, for his "who
    looked"): A's AuditEvent search, his who-looked page and his ``$everything`` name nothing of B --
    neither her Patient, nor the subject of her sign-in."""
    own = w.engine.repository.search("Observation", [("subject", f"Patient/{w.a[0]}"), ("_count", "1")]).resources[0]
    assert w.http.get(f"/fhir/Observation/{own['id']}", headers=w.resident_b()).status_code == 404
    h = w.resident()
    for path in ("/fhir/AuditEvent?_count=500", f"/fhir/AuditEvent?entity=Observation/{own['id']}&_count=500",
                 "/ui/me/who-looked", f"/fhir/Patient/{w.a[0]}/$everything?_type=AuditEvent&_count=1000"):
        r = w.http.get(path, headers=h)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert w.names_b(r.text) == [] and "person-b" not in r.text, (path, r.text[:600])


def _check(w, h, pid):
    order = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2025-03-22T08:00:00+08:00",
             "code": {"coding": [{"system": "urn:huren:code:FNZYY", "code": "XCG"}], "text": "血常规"}}
    r = w.http.post("/fhir/ServiceRequest/$check-recognition", headers=h,
                    json={"resourceType": "Parameters", "parameter": [{"name": "order", "resource": order}]})
    return r.status_code, r.text.replace(pid, "X")


def test_check_recognition_and_cds_for_b_answer_as_for_no_one(w):
    h = w.resident()
    assert _check(w, h, w.b[0]) == _check(w, h, "zz-missing-0")
    assert _check(w, h, w.b[0])[0] == 404
    services = [s["id"] for s in w.http.get("/cds-services", headers=h).json()["services"]]
    for sid in services:
        answers = []
        for pid in (w.b[0], "zz-missing-0"):
            r = w.http.post(f"/cds-services/{sid}", headers=h, json={
                "hook": "order-select", "hookInstance": "pp27", "fhirServer": "http://127.0.0.1:0/fhir",
                "context": {"patientId": pid, "userId": "Practitioner/x", "selections": [],
                            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}}})
            answers.append((r.status_code, r.text.replace(pid, "X")))
        assert answers[0] == answers[1] and answers[0][0] in (400, 403, 404), (sid, answers)
        assert w.names_b(answers[0][1]) == []


# -- a caller some labels are withheld from who is not a resident ---------------------------------------
# What a client some labels are withheld from -- a hospital's system bound to another
# institution, a clinician's page session -- learns of an R-labelled result through the records citing it.
#
# The example feeds in by real HL7 (``tests/privprobe27_world.py``); one of 李秀英's results is then
# re-sent R-labelled by her hospital's system (real HTTP). It reads 404 to the bound client, as a
# made-up id does. The unlabelled records citing it -- her own DiagnosticReport (from the feed), and
# the records a hospital wrote citing it (``hasMember``, ``derivedFrom``, ``evidence.detail``) -- were
# shown with its id, and a search by it (``has-member=``, ``derived-from=``, ``evidence-detail=``)
# answered 1 where a made-up id answers 0. Records built from others (``confidentiality.DERIVED``: the
# flag and the Provenance) are withheld whole, as before. Mended at write time (twenty-seventh round,
# labelmark27, ``engine.result_labels``): a record citing a result carries the result's label, given
# when it is written and again when the result's label rises, so each of them now carries R and reads
# as missing, whole; the search by the reference counts none of them. The guard that a writer cannot
# tell the R result by citing it was taken out with it: a writer some labels are withheld from now can
# (its own record reads back 404) -- already so by a PUT at any id not of huren's form a trusted client
# labelled, not for a feed's result: ``tests/test_labelmark27_results.py`` pins that as a strict xfail.


def _bound(w):
    token, _ = w.engine.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy",
                                         scopes=["system/*.rs"], extra={"institution": "FNZYY"})
    return {"headers": w.h(token)}


def _clinician(w):
    cookies, _ = _session(w.engine, "clinician", name="dr.pp27")
    return {"cookies": cookies}


WHO = [pytest.param(_bound, id="bound-system"), pytest.param(_clinician, id="clinician")]


@pytest.mark.parametrize("who", WHO)
def test_the_r_result_and_the_records_built_from_it_read_as_missing(w, who):
    """Guard (holds before and after): the result itself, the flag and the Provenance citing it."""
    how = who(w)
    r = w.http.get(f"/fhir/Observation/{w.r_obs}", **how)
    m = w.http.get("/fhir/Observation/zz-missing-0", **how)
    assert r.status_code == m.status_code == 404
    assert r.text.replace(w.r_obs, "X") == m.text.replace("zz-missing-0", "X")
    for path in ("DetectedIssue/pp27-flag-ab", "Provenance/pp27-prov-ab"):  # (403: a type the role does not read)
        assert w.http.get(f"/fhir/{path}", **how).status_code in (403, 404), path
    for query in (f"Provenance?target=Observation/{w.r_obs}", f"DetectedIssue?implicated=Observation/{w.r_obs}"):
        r = w.http.get(f"/fhir/{query}&_summary=count", **how)
        assert r.status_code == 403 or r.json()["total"] == 0, query



@pytest.mark.parametrize("who", WHO)
def test_records_citing_the_r_result_do_not_show_its_id(w, who):
    """Each record citing the R result reads as a made-up id of its type does (it carries R: the
    write-time label, labelmark27), and the include and ``$everything`` show neither it nor the id."""
    how = who(w)
    reads = [f"DiagnosticReport/{w.r_reports[0]}", "Observation/pp27-obs-member", "Observation/pp27-obs-derived",
             "Condition/pp27-cond-ab"]
    answered = 0
    for ref in reads:
        rtype, rid = ref.split("/")
        real = w.http.get(f"/fhir/{ref}", **how)
        fake = w.http.get(f"/fhir/{rtype}/zz-missing-0", **how)
        if real.status_code == fake.status_code == 403:  # a type the role does not read
            continue
        answered += 1
        assert real.status_code == fake.status_code == 404, (ref, real.status_code)
        assert real.text.replace(rid, "X") == fake.text.replace("zz-missing-0", "X")
    assert answered >= 3
    for path in (f"DiagnosticReport?_id={w.r_reports[0]}&_include=DiagnosticReport:result",
                 f"Patient/{w.b[0]}/$everything"):
        r = w.http.get(f"/fhir/{path}", **how)
        if r.status_code == 403:
            continue
        assert r.status_code == 200 and w.r_obs not in r.text, (path, r.status_code)


@pytest.mark.parametrize("who", WHO)
def test_a_search_by_the_r_results_id_answers_as_for_a_made_up_one(w, who):
    how = who(w)
    totals = {}
    for param, rtype in (("has-member", "Observation"), ("derived-from", "Observation"),
                         ("evidence-detail", "Condition"), ("result", "DiagnosticReport")):  # (result: labelmark27)
        real = w.http.get(f"/fhir/{rtype}?{param}=Observation/{w.r_obs}&_summary=count", **how)
        fake = w.http.get(f"/fhir/{rtype}?{param}=Observation/zz-missing-0&_summary=count", **how)
        if real.status_code == fake.status_code == 403:  # a type the role does not search
            continue
        totals[param] = (real.json()["total"], fake.json()["total"])
    assert len(totals) >= 2
    assert all(real == fake for real, fake in totals.values()), totals
