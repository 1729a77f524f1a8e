"""ffix40: one owner of a request body's Content-Type parameters (``formats.require_body_served``) on every route that
reads a body -- the /fhir router's JSON and ``_search`` form, and the operations' JSON: ``Patient/$match``,
``ServiceRequest/$check-recognition``, the CDS hooks, the duplicate review (rv40e LOW 7: these read a
``fhirVersion=3.0`` or Latin-1 body as R4 in UTF-8, unchecked); a charset compared by the name Python's codecs give
it (rv40e LOW 2); a form body that is not UTF-8 never a 500 (rv40e MED 1).

Real HTTP through FastAPI (TestClient) into the real store on each backend (``module_eng``: SQLite, mongomock), the
patient registered by the HIS's ADT^A04 over ``POST /hl7v2``. Each refusal is checked beside the same request
labelled as R4 in UTF-8, which is served: the label alone decides.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from engine.api import formats
from engine.engine import Engine
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import _nid

both = engine_and_client("ffix40")

R4_UTF8 = "application/fhir+json; fhirVersion=4.0; charset=utf8"  # utf8: UTF-8 by Python's codecs
REFUSED = ["application/fhir+json; fhirVersion=3.0", "application/json; charset=ISO-8859-1",
           "application/fhir+json; charset=gb2312"]


def _bearer(engine: Engine, client: str, scopes: str, kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, scopes, kind=kind)}


def _refused(r: object) -> None:
    assert r.status_code == 415, (r.status_code, r.text[:300])  # type: ignore[attr-defined]
    outcome = r.json()  # type: ignore[attr-defined]
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-supported", outcome
    assert "does not read" in outcome["issue"][0]["diagnostics"], outcome


@pytest.mark.parametrize("content_type", REFUSED, ids=["stu3", "latin1", "gb2312"])
def test_match_reads_the_body_label_as_every_body_is(both: tuple[Engine, TestClient], content_type: str) -> None:
    """``Patient/$match`` with an STU3 or non-UTF-8 label: 415 before the body is read (it had matched the body as R4
    in UTF-8: a ``fhirVersion=3.0`` body answered 422 on its content); labelled R4 in UTF-8, the registered patient
    is matched."""
    _, http = both
    her = registered(http, "FFIX40M", "FFIX40M", "柳^乙", "19620202", "F")
    query = {"resourceType": "Patient", "identifier": her["identifier"], "name": her["name"],
             "gender": "female", "birthDate": "1962-02-02"}
    body = json.dumps({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": query}]},
                      ensure_ascii=False).encode()
    _refused(http.post("/fhir/Patient/$match", content=body, headers={"Content-Type": content_type}))
    r = http.post("/fhir/Patient/$match", content=body, headers={"Content-Type": R4_UTF8})
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json().get("entry") or ()][:1] == [her["id"]], r.text


@pytest.mark.parametrize("content_type", REFUSED, ids=["stu3", "latin1", "gb2312"])
def test_check_recognition_reads_the_body_label(both: tuple[Engine, TestClient], content_type: str) -> None:
    """``ServiceRequest/$check-recognition``: 415 under another version or charset; labelled R4 in UTF-8, answered."""
    _, http = both
    her = registered(http, "FFIX40R", "FFIX40R", "柳^丙", "19630303", "F", f"~{_nid('32092319630303002')}^^^^NNCHN")
    body = json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{her['id']}"}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}}]}).encode()
    _refused(http.post("/fhir/ServiceRequest/$check-recognition", content=body, headers={"Content-Type": content_type}))
    r = http.post("/fhir/ServiceRequest/$check-recognition", content=body, headers={"Content-Type": R4_UTF8})
    assert r.status_code == 200 and r.json()["resourceType"] == "Parameters", r.text


@pytest.mark.parametrize("content_type", ["application/json; charset=ISO-8859-1", "application/json; charset=gbk"],
                         ids=["latin1", "gbk"])
def test_a_cds_hook_call_reads_the_body_label(both: tuple[Engine, TestClient], content_type: str) -> None:
    """A CDS hook call (CDS Hooks 2.0: JSON, UTF-8) labelled in another charset: 415 before the body is read; the
    same call labelled ``charset=UTF-8`` gets its cards."""
    engine, http = both
    her = registered(http, "FFIX40C", "FFIX40C", "柳^丁", "19640404", "F")
    call = {"hookInstance": "0b8b2d1e-5c1f-4d7e-9a51-1d2f3e4a5b6c", "hook": "order-select",
            "context": {"userId": "Practitioner/dr-wang", "patientId": her["id"], "selections": [],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}}}
    headers = _bearer(engine, "ffix40-ehr", "system/ServiceRequest.crus system/Patient.rs system/DiagnosticReport.rs")
    body = json.dumps(call).encode()
    _refused(http.post("/cds-services/huren-recognition-select", content=body,
                       headers={**headers, "Content-Type": content_type}))
    r = http.post("/cds-services/huren-recognition-select", content=body,
                  headers={**headers, "Content-Type": "application/json; charset=UTF-8"})
    assert r.status_code == 200 and "cards" in r.json(), r.text


def test_a_duplicate_review_reads_the_body_label(both: tuple[Engine, TestClient]) -> None:
    """The auditor's review of a duplicate flag labelled Latin-1: 415 before the body is read (a reason in Chinese
    would have been read as UTF-8 bytes of another text); labelled UTF-8, the review goes on to the flag (here none:
    its own 404)."""
    engine, http = both
    headers = _bearer(engine, "ffix40-auditor", "system/DetectedIssue.rus", kind="auditor")
    body = json.dumps({"decision": "upheld", "reason": "复核属实"}, ensure_ascii=False).encode()
    _refused(http.post("/reports/duplicates/no-such-flag/review", content=body,
                       headers={**headers, "Content-Type": "application/json; charset=ISO-8859-1"}))
    r = http.post("/reports/duplicates/no-such-flag/review", content=body,
                  headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.text)


@pytest.mark.parametrize(("label", "served", "read"), [
    ("utf-8", True, True), ("UTF8", True, True), ('"utf8"', True, True), ("u8", True, True),
    ("us-ascii", False, True), ("ASCII", False, True), ("iso-8859-1", False, False), ("latin1", False, False),
    ("gb18030", False, False), ("utf-16", False, False), ("utf-8-sig", False, False), ("no-such-charset", False, False),
    ("", False, False)])
def test_a_charset_is_compared_by_its_codecs_name(label: str, served: bool, read: bool) -> None:
    """Answered (Accept: UTF-8 only) and read (a body: UTF-8 or ASCII) by the canonical name of Python's codecs; a
    name no codec has is neither. No name a sender invents reaches ``codecs.lookup`` (``encodings`` would cache it)."""
    import encodings

    assert formats._served([f"charset={label}"]) is served
    assert formats.body_served(f"application/fhir+json; charset={label}") is read
    before = len(encodings._cache)  # type: ignore[attr-defined]
    for n in range(50):
        formats.body_served(f"application/fhir+json; charset=x-invented-{label}-{n}")
    assert len(encodings._cache) == before  # type: ignore[attr-defined]


@pytest.mark.parametrize(("accept", "status"), [
    ("application/fhir+json;fhirVersion=4.0;q=0, application/fhir+json", 406),  # the specific range: not R4
    ("application/fhir+json;q=0, application/fhir+json;fhirVersion=4.0", 200),  # R4 named: served
    ("application/fhir+json;charset=utf8;q=0, */*", 406),  # R4 JSON in UTF-8 refused; a wildcard names no more
    ("application/json;charset=utf-8;q=0, application/fhir+json;q=0.5", 200),  # the FHIR type still admitted
    ("application/fhir+json;fhirVersion=4.0;q=abc, application/fhir+json;q=0", 406),  # an unread weight passes over
])
def test_the_most_specific_range_decides(both: tuple[Engine, TestClient], accept: str, status: int) -> None:
    """RFC 9110 12.5.1 on the routed /fhir: a range with parameters that name huren's answer weighs it over its bare
    type (a readable weight over an unread one)."""
    _, http = both
    r = http.get("/fhir/Patient?family=FFIX40-NONE", headers={"Accept": accept})
    assert r.status_code == status, (accept, r.status_code, r.text[:200])


def test_a_search_form_body_is_never_a_500(both: tuple[Engine, TestClient]) -> None:
    """Bodies a broken client sends to ``_search``: each a 4xx OperationOutcome or a Bundle, never a 500."""
    engine, http = both
    from engine.api.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False) as plain:
        for body, ctype in ((b"\x00\xff=\xfe", "application/x-www-form-urlencoded"), (b"family=%E6%9F", ""),
                            (b"%%%=&&=%zz", "application/x-www-form-urlencoded; charset=utf-8"),
                            (b"family=a", "application/x-www-form-urlencoded; charset=\"\""),
                            (b"family=a", "application/x-www-form-urlencoded; charset=utf-8; charset=latin1")):
            r = plain.post("/fhir/Patient/_search", content=body,
                           headers={"Content-Type": ctype, "Authorization": http.headers["Authorization"]})
            assert r.status_code < 500, (body, ctype, r.status_code, r.text[:200])
            assert r.json()["resourceType"] in ("OperationOutcome", "Bundle"), r.text
