"""Two residents fed through the real HL7 path, one resident's token against every route of the app.

司马光明 (A) and 欧阳娜娜 (B) are each registered and given a blood count at two member hospitals
(ADT^A04 + ORU^R01 posted to ``/hl7v2``), so each has two Patient records linked by national ID.
A hospital system then searches Patients and gets both back (one audited interaction naming A and
B), reads B alone, and runs a search that returns A only but names B's ID number in its query.

With A's token (``patient/*.rs``) every route is hit -- read, vread, history, searches with chains,
``_include``/``_revinclude``, ``$everything`` (also ``_type=AuditEvent``), transaction and batch
Bundles with GET entries, AuditEvent searches and reads, identity operations, CDS, reports, admin,
audit, and every GET path the app publishes in ``/openapi.json`` with B's ids in the path -- and
no response may carry a byte of B: B's Patient ids, B's national ID, B's name, B's MRNs, the ids
of B's records, in the body (plain, URL-decoded, or base64-encoded as AuditEvent queries are) or
in a header. The one exception is a search Bundle's ``link`` URLs, which repeat A's own request
(FHIR requires the self link to state the parameters used); they are checked to be exactly that.

Status conventions: something of B's addressed directly is 404, worded exactly like a missing
resource (so existence does not leak); an interaction A's token does not permit is 403; searches
that reach nothing of A's are 200 with no entries.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from fastapi.testclient import TestClient
from stdnum.cn import ric

from engine.api.app import create_app

ER7 = "x-application/hl7-v2+er7"
NNCHN_OID = "urn:oid:2.16.156.10011.1.3"


def _nid(seventeen: str) -> str:
    return seventeen + ric.calc_check_digit(seventeen + "0")


A = {"nid": _nid("32092319850303003"), "family": "司马", "given": "光明", "sex": "M", "birth": "19850303",
     "mrn": {"FNXRMYY": "ZYA80010101", "FNZYY": "MZA80010102"}}
B = {"nid": _nid("32092319920202002"), "family": "欧阳", "given": "娜娜", "sex": "F", "birth": "19920202",
     "mrn": {"FNXRMYY": "ZYB92020201", "FNZYY": "MZB92020202"}}
CBC = {"FNXRMYY": "XCG^血常规^L", "FNZYY": "1001^血常规^L"}


def _messages(who: dict[str, Any], tag: str) -> list[bytes]:
    out = []
    for n, inst in enumerate(("FNXRMYY", "FNZYY")):
        mrn = who["mrn"][inst]
        pid = (f"PID|1||{who['nid']}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{who['family']}^{who['given']}||"
               f"{who['birth']}|{who['sex']}")
        adt = [f"MSH|^~\\&|HIS|{inst}|HUREN|FUNING|2026091008{n}000||ADT^A04^ADT_A01|{inst}-ADT-{tag}{n}|P|2.5.1",
               "EVN|A04|20260910080000", pid, f"PV1|1|O|JZ^^^{inst}||||||||||||||||{mrn}-1^^^{inst}^VN"]
        oru = [f"MSH|^~\\&|LIS|{inst}|HUREN|FUNING|2026091011{n}000||ORU^R01^ORU_R01|{inst}-LIS-{tag}{n}|P|2.5.1",
               pid, f"PV1|1|O|JZ^^^{inst}||||||||||||||||{mrn}-1^^^{inst}^VN",
               f"ORC|RE|{tag}{n}01^HIS|L{tag}{n}01^LIS||CM",
               f"OBR|1|{tag}{n}01^HIS|L{tag}{n}01^LIS|{CBC[inst]}|||20260910090000|||||||||D1^陈^明||||||"
               "20260910110000|||F",
               "OBX|1|NM|WBC^白细胞计数^L||6.4|10\\S\\9/L|3.5-9.5|N|||F|||20260910100000"]
        out += ["\r".join(adt).encode() + b"\r", "\r".join(oru).encode() + b"\r"]
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("matrix-feeds") / "var", http_port=0, mllp_port=0))
    http = TestClient(create_app(engine))
    feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/MessageHeader.c"),
            "Content-Type": ER7}
    for message in _messages(A, "A") + _messages(B, "B"):
        r = http.post("/hl7v2", content=message, headers=feed)
        assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA", r.text
    ids = {k: sorted(engine.identity.patients_for_number(p["nid"])) for k, p in (("A", A), ("B", B))}
    assert len(ids["A"]) == 2 and len(ids["B"]) == 2, ids

    his = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-fnxrmyy", "system/*.rs")}
    everyone = http.get("/fhir/Patient?_count=100", headers=his)  # one interaction naming A and B
    assert {e["resource"]["id"] for e in everyone.json()["entry"]} >= set(ids["A"] + ids["B"])
    assert http.get(f"/fhir/Patient/{ids['B'][0]}", headers=his).status_code == 200
    # a search that finds A only, and names B's ID number in its query
    only_a = http.get("/fhir/Patient", headers=his, params={
        "identifier": f"{A['nid']},{B['nid']}", "gender": "male"})
    assert {e["resource"]["id"] for e in only_a.json()["entry"]} == set(ids["A"])

    records: dict[str, list[tuple[str, str]]] = {}
    for key in ("A", "B"):
        found: set[tuple[str, str]] = set()
        for pid in ids[key]:
            found |= {(r["resourceType"], r["id"]) for r in engine.repository.everything(pid).resources}
        records[key] = sorted(found)
    events = engine.repository.search("AuditEvent", [("_count", "1000")]).resources
    both = [e["id"] for e in events
            if {f"Patient/{p}" for p in ids["A"] + ids["B"]} <= {(x.get("what") or {}).get("reference")
                                                                  for x in e.get("entity", [])}]
    yield {"engine": engine, "http": http, "ids": ids, "records": records, "both_events": both, "his": his}
    http.close()
    engine.close()


@pytest.fixture(scope="module")
def a_token(world) -> dict[str, str]:
    engine = world["engine"]
    token, _ = engine.auth.issue_token(subject="person-a", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs", "openid", "fhirUser"], patient=world["ids"]["A"][0])
    return {"Authorization": f"Bearer {token}"}


def b_markers(world) -> list[str]:
    """Everything that would identify B or B's records."""
    ids = world["ids"]["B"]
    rec_ids = [rid for rtype, rid in world["records"]["B"] if rtype != "Organization"]
    return sorted({*ids, B["nid"], B["family"] + B["given"], B["family"], B["given"], *B["mrn"].values(), *rec_ids})


_B64 = re.compile(r"^[A-Za-z0-9+/]{8,}={0,2}$")


def _strings(node: Any, *, drop_links: bool) -> list[str]:
    """Every string in a JSON document (keys too), base64 values also decoded; Bundle links left out."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if drop_links and k == "link" and isinstance(v, list) and all(isinstance(x, dict) and "relation" in x
                                                                         for x in v):
                continue
            out.append(k)
            out += _strings(v, drop_links=drop_links)
    elif isinstance(node, list):
        for v in node:
            out += _strings(v, drop_links=drop_links)
    elif isinstance(node, str):
        out.append(node)
        if _B64.match(node) and len(node) % 4 == 0:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                out.append(base64.b64decode(node, validate=True).decode("utf-8"))
    return out


def _links(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [x["url"] for x in node.get("link", []) if isinstance(x, dict) and "relation" in x and "url" in x] \
            if isinstance(node.get("link"), list) else []
        return found + [u for v in node.values() for u in _links(v)]
    if isinstance(node, list):
        return [u for v in node for u in _links(v)]
    return []


def _plain_and_unquoted(texts: list[str]) -> str:
    """``texts`` as they are and URL-unescaped, each unescaped once, joined by NUL: a marker (no NUL in it) is in the
    result exactly when it is in one of the texts or in one of them unescaped. The check had unescaped every text
    again for every marker (suite45c: ~1/4 of this file's CPU)."""
    return "\0".join([*texts, *(unquote(t) for t in texts)])


def assert_nothing_of_b(world, response, sent: str = "") -> None:
    """No marker of B in the headers or the body (JSON walked, base64 decoded, URL escapes undone).

    ``sent`` is the request A made: search Bundle links may repeat it and nothing else."""
    markers = b_markers(world)
    assert all(markers)
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert not [m for m in markers if m in _plain_and_unquoted([headers])], (where, headers)
    try:
        doc = json.loads(response.content)
    except ValueError:
        doc = None
    if doc is None:
        text = response.content.decode("utf-8", "replace")
        leaked = [m for m in markers if m in _plain_and_unquoted([text])]
        assert not leaked, (where, leaked, text[:500])
        return
    searched = _plain_and_unquoted(_strings(doc, drop_links=True))
    leaked = sorted(m for m in markers if m in searched)
    assert not leaked, (where, leaked, response.text[:800])
    for url in _links(doc):  # links repeat the request, nothing more
        rest = unquote(url)
        for piece in re.split(r"[?&=,|/\s]", unquote(sent)):
            if piece:
                rest = rest.replace(piece, "")
        assert not [m for m in markers if m in rest], (where, url)


def get(world, headers, url: str, **kw):
    r = world["http"].get(url, headers=headers, follow_redirects=False, **kw)
    assert r.status_code < 500, (url, r.status_code, r.text[:300])
    assert_nothing_of_b(world, r, url + ("?" + urlencode(kw["params"]) if "params" in kw else ""))
    return r


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]


# -- the markers are real: the hospital sees them, so their absence for A means something -----------------------
def test_the_markers_are_what_the_system_sees(world):
    http, his = world["http"], world["his"]
    body = http.get(f"/fhir/Patient/{world['ids']['B'][0]}", headers=his).text
    assert B["nid"] in body and B["family"] in body and B["given"] in body
    # the hospital's search of everyone is audited; where one AuditEvent names A and B together, the
    # system sees both (the tests below check that A never does; the audit trail may instead keep
    # one event per patient, and then there is nothing of B's in A's compartment to begin with)
    for event_id in world["both_events"]:
        event = http.get(f"/fhir/AuditEvent/{event_id}", headers=his).text
        assert all(p in event for p in world["ids"]["B"])


# -- direct reads ---------------------------------------------------------------------------------------------------
def test_reads_vreads_and_histories_of_b_are_404_like_nothing(world, a_token):
    for rtype, rid in world["records"]["B"]:
        if rtype == "Organization":
            continue
        for suffix in ("", "/_history", "/_history/1", "/_history/2"):
            r = get(world, a_token, f"/fhir/{rtype}/{rid}{suffix}")
            missing = get(world, a_token, f"/fhir/{rtype}/no-such-id{suffix}")
            assert r.status_code == 404 == missing.status_code, (rtype, rid, suffix, r.text)
            assert r.content == missing.content
    shared = set(world["records"]["B"])  # what names B too (the hospital's search of everyone)
    for rtype, rid in world["records"]["A"]:
        if rtype != "Organization" and (rtype, rid) not in shared:
            assert get(world, a_token, f"/fhir/{rtype}/{rid}").status_code == 200, (rtype, rid)
            assert get(world, a_token, f"/fhir/{rtype}/{rid}/_history").status_code == 200


def test_type_and_system_history_leak_nothing(world, a_token):
    for url in ("/fhir/Observation/_history", "/fhir/Patient/_history", "/fhir/_history"):
        assert get(world, a_token, url).status_code in (400, 404)


# -- searches ---------------------------------------------------------------------------------------------------------
def _searches(world) -> list[str]:
    b1, b2 = world["ids"]["B"]
    a1 = world["ids"]["A"][0]
    nid = B["nid"]
    obs_b = next(rid for t, rid in world["records"]["B"] if t == "Observation")
    return [
        "/fhir/Patient", "/fhir/Observation", "/fhir/DiagnosticReport", "/fhir/Encounter", "/fhir/AuditEvent",
        f"/fhir/Patient?_id={b1},{b2}", f"/fhir/Patient?identifier={nid}",
        f"/fhir/Patient?identifier={NNCHN_OID}|{nid}", f"/fhir/Patient?family={B['family']}",
        f"/fhir/Patient?name={B['given']}", f"/fhir/Patient?identifier=urn:huren:mrn:FNXRMYY|{B['mrn']['FNXRMYY']}",
        f"/fhir/Observation?subject=Patient/{b1}", f"/fhir/Observation?patient={b2}", f"/fhir/Observation?_id={obs_b}",
        f"/fhir/Observation?patient.identifier={nid}", f"/fhir/Observation?patient.identifier={NNCHN_OID}|{nid}",
        f"/fhir/Observation?subject:Patient.name={B['family']}", f"/fhir/AuditEvent?patient.identifier={nid}",
        f"/fhir/AuditEvent?patient={b1}", f"/fhir/AuditEvent?patient={a1}", f"/fhir/AuditEvent?entity={b1}",
        "/fhir/AuditEvent?_summary=count", "/fhir/Observation?_summary=count", "/fhir/AuditEvent?_count=1",
        "/fhir/Observation?_include=Observation:patient", "/fhir/Observation?_include=Observation:subject",
        "/fhir/DiagnosticReport?_include=DiagnosticReport:result",
        "/fhir/Patient?_revinclude=AuditEvent:patient", "/fhir/Patient?_revinclude=Observation:subject",
        f"/fhir/Patient?_id={a1}&_revinclude=AuditEvent:patient&_revinclude=AuditEvent:entity",
        "/fhir/AuditEvent?_include=AuditEvent:patient", "/fhir/AuditEvent?_include=AuditEvent:entity",
    ]


def test_searches_chains_and_includes_return_only_a(world, a_token):
    mine = set(world["records"]["A"])
    for url in _searches(world):
        r = get(world, a_token, url)
        assert r.status_code == 200, (url, r.text)
        for res in entries(r.json()):
            if res["resourceType"] != "AuditEvent":
                assert (res["resourceType"], res["id"]) in mine, (url, res["resourceType"], res["id"])


def test_a_sees_who_touched_their_record_and_only_that(world, a_token):
    events = entries(get(world, a_token, f"/fhir/AuditEvent?patient={world['ids']['A'][0]}&_count=1000").json())
    assert events, "A finds the hospital's accesses to A's record"
    assert not {e["id"] for e in events} & set(world["both_events"])  # the event naming B too is withheld
    assert all("query" not in x for e in events for x in e.get("entity", []))
    listed = get(world, a_token, "/fhir/AuditEvent?_count=1000").json()
    assert listed["total"] == len(entries(listed))  # the count covers what A may see, not what was withheld
    for event_id in world["both_events"]:
        assert get(world, a_token, f"/fhir/AuditEvent/{event_id}").status_code == 404


def test_paging_a_confined_search_leaks_nothing_on_any_page(world, a_token):
    """Every page of A's AuditEvents (each request here is itself audited into A's compartment, so
    the set grows while paging: oldest first, the new ones come at the end)."""
    seen: list[str] = []
    url: str | None = "/fhir/AuditEvent?_count=2&_sort=_lastUpdated"
    while url:
        bundle = get(world, a_token, url).json()
        seen += [r["id"] for r in entries(bundle)]
        nxt = [lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"]
        url = "/fhir" + nxt[0].split("/fhir", 1)[1] if nxt else None
        assert len(seen) < 500
    assert seen and len(seen) == len(set(seen))
    assert not set(seen) & set(world["both_events"])


# -- $everything, Bundles, identity operations -----------------------------------------------------------------------
def test_everything(world, a_token):
    a1 = world["ids"]["A"][0]
    for pid in world["ids"]["B"]:
        for query in ("", "?_type=AuditEvent", "?_type=Patient,Observation"):
            assert get(world, a_token, f"/fhir/Patient/{pid}/$everything{query}").status_code == 404
    for query in ("", "?_type=AuditEvent", "?_type=AuditEvent,Patient&_count=1000"):
        r = get(world, a_token, f"/fhir/Patient/{a1}/$everything{query}")
        assert r.status_code == 200
        assert not {x["id"] for x in entries(r.json())} & set(world["both_events"])


def test_transaction_and_batch_get_entries(world, a_token):
    b1 = world["ids"]["B"][0]
    nid = B["nid"]
    gets = [f"Patient/{b1}", f"Patient/{b1}/_history/1", f"Patient?identifier={nid}",
            f"Observation?patient.identifier={nid}", f"AuditEvent?patient={b1}", "AuditEvent",
            f"Patient?_id={world['ids']['A'][0]}&_revinclude=AuditEvent:patient",
            *[f"{t}/{i}" for t, i in world["records"]["B"] if t != "Organization"],
            *[f"AuditEvent/{i}" for i in world["both_events"]]]
    for kind in ("batch", "transaction"):
        bundle = {"resourceType": "Bundle", "type": kind,
                  "entry": [{"request": {"method": "GET", "url": u}} for u in gets]}
        r = world["http"].post("/fhir", json=bundle, headers=a_token)
        assert r.status_code in (200, 404), (kind, r.text[:300])
        assert_nothing_of_b(world, r, " ".join(gets))
        if kind == "batch":
            statuses = [e["response"]["status"] for e in r.json()["entry"]]
            direct = [i for i, u in enumerate(gets) if "?" not in u and u != "AuditEvent"]
            assert all(statuses[i].startswith("404") for i in direct), statuses


def test_identity_operations(world, a_token):
    nid = B["nid"]
    r = get(world, a_token, "/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{NNCHN_OID}|{nid}"})
    assert r.status_code == 404
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
        "resourceType": "Patient", "identifier": [{"system": NNCHN_OID, "value": nid}],
        "name": [{"family": B["family"], "given": [B["given"]]}], "gender": "female", "birthDate": "1992-02-02"}}]}
    r = world["http"].post("/fhir/Patient/$match", json=body, headers=a_token)
    assert r.status_code == 200 and r.json()["total"] == 0
    assert_nothing_of_b(world, r, json.dumps(body, ensure_ascii=False))


# -- the operations around FHIR ----------------------------------------------------------------------------------------
def test_cds_reports_admin_and_audit(world, a_token):
    http = world["http"]
    b1 = world["ids"]["B"][0]
    hook = {"hookInstance": "00000000-0000-4000-8000-0000000000a1", "hook": "order-select", "context": {
        "userId": "Practitioner/x", "patientId": b1, "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                                                     "entry": []}}}
    for path, body in (("/cds-services/huren-recognition-select", hook),
                       ("/cds-services/huren-recognition-select/feedback", {"feedback": [{"card": "x"}]})):
        r = http.post(path, json=body, headers=a_token)
        assert r.status_code == 403, (path, r.text)
        assert_nothing_of_b(world, r)
    check = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{b1}"}},
        {"name": "code", "valueCoding": {"system": "urn:huren:code:FNXRMYY", "code": "XCG"}}]}
    r = http.post("/fhir/ServiceRequest/$check-recognition", json=check, headers=a_token)
    assert r.status_code == 404 and r.content == http.post(
        "/fhir/ServiceRequest/$check-recognition", headers=a_token,
        json={**check, "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/nobody"}},
                                     check["parameter"][1]]}).content
    assert_nothing_of_b(world, r)
    for url in ("/reports/duplicates", "/reports/duplicates?_format=csv", "/admin/quarantine", "/admin/fidelity",
                "/admin/metrics", "/admin/health", "/audit/verify"):
        assert get(world, a_token, url).status_code == 403, url
    for url in ("/audit/checkpoints", "/audit/public-key", "/cds-services"):
        assert get(world, a_token, url).status_code == 200, url


def test_every_published_get_route_with_b_in_the_path(world, a_token):
    """Every GET of ``/openapi.json`` (so a new route is covered without touching this test), path
    parameters filled with B's ids, with and without query parameters naming B."""
    b1 = world["ids"]["B"][0]
    nid = B["nid"]
    b_records = [(t, i) for t, i in world["records"]["B"] if t != "Organization"]
    messages = [d["_id"] for d in world["engine"].ingestor.messages.find({}) if "B" in str(d.get("control_id", d["_id"]))] \
        if hasattr(world["engine"].ingestor.messages, "find") else []
    queries = ("", f"?patient={b1}", f"?subject=Patient/{b1}", f"?patient.identifier={nid}", f"?identifier={nid}")
    checked = 0
    for path, ops in world["http"].app.openapi()["paths"].items():
        if "get" not in ops:
            continue
        names = re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)
        fills: list[dict[str, str]] = []
        if {"rtype", "rid"} <= set(names):
            fills = [{"rtype": t, "rid": i, "vid": "1"} for t, i in b_records]
        elif names:
            values = [b1, nid, *messages, *B["mrn"].values()]
            fills = [{n: v for n in names} for v in values]
        else:
            fills = [{}]
        for fill in fills:
            url = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m, f=fill: f.get(m.group(1), b1), path)
            for query in queries:
                r = get(world, a_token, url + query)
                if "rid" in fill:
                    assert r.status_code == 404, (url + query, r.status_code)
                checked += 1
    assert checked > 100


def test_b_does_not_learn_who_probed_their_record(world, a_token):
    """Runs last: A's refused reads of B's ids are audited in B's compartment, naming A as the
    requesting resident. B may see that their records were touched, never by which resident."""
    engine, http = world["engine"], world["http"]
    token, _ = engine.auth.issue_token(subject="person-b", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=world["ids"]["B"][0])
    b_token = {"Authorization": f"Bearer {token}"}
    a_markers = ["person-a", *world["ids"]["A"], A["nid"], A["family"], A["given"], *A["mrn"].values()]
    for url in ("/fhir/AuditEvent?_count=1000", f"/fhir/Patient/{world['ids']['B'][0]}/$everything?_type=AuditEvent",
                "/fhir/Patient?_revinclude=AuditEvent:patient&_count=1000"):
        r = http.get(url, headers=b_token)
        assert r.status_code == 200, r.text
        assert not [m for m in a_markers if m in r.text], url
