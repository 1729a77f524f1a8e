"""A change to a client's registration takes effect on the next request, not when its tokens expire (labels20).

Found wrong: ``huren client add --institution CODE`` binds a system client to its hospital, and a
bound client reads no R/V record -- but the binding was carried in the token, so a token issued
*before* binding kept reading R and V records for the rest of its hour. Likewise a client removed
(``huren client remove``) or registered again with narrower scopes or a new secret kept its old
tokens' reach. Now a ``client_credentials`` token carries its client's registration fingerprint
and is refused (401 ``invalid_token``) once the stored client differs. Real CLI, real tokens over
HTTP, the real store.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.cli import main as cli_main
from engine.engine import Engine
from engine.settings import Settings

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _add(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["client", "add", *args]) == 0
    return capsys.readouterr().out.strip().rsplit(" ", 1)[-1]


def _token(http: TestClient, client_id: str, secret: str) -> dict[str, str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = http.post("/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _doc(did: str, code: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"resourceType": "DocumentReference", "id": did, "status": "current",
                           "subject": {"reference": "Patient/zhang"},
                           "content": [{"attachment": {"contentType": "text/plain", "data": "5Ye66Zmi5bCP57uT"}}]}
    if code:
        doc["securityLabel"] = [{"coding": [{"system": CONF, "code": code}]}]
    return doc


def _introspect(http: TestClient, token: dict[str, str], client_id: str, secret: str) -> bool:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = http.post("/auth/introspect", data={"token": token["Authorization"].split(" ", 1)[1]},
                  headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


def test_binding_a_client_ends_the_reach_of_its_earlier_tokens(
        settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    own = _add(capsys, "his-county", "--scope", "system/*.cruds")
    township = _add(capsys, "his-township", "--scope", "system/*.cruds")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        county = _token(http, "his-county", own)
        for body in ({"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]},
                     _doc("plain", None), _doc("restricted", "R"), _doc("very", "V")):
            assert http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=county).status_code == 201
        early = _token(http, "his-township", township)
        assert http.get("/fhir/DocumentReference/restricted", headers=early).status_code == 200  # not bound yet
        assert _introspect(http, early, "his-county", own)

        # the operator binds the township's system to its hospital while the server runs
        bound_secret = _add(capsys, "his-township", "--scope", "system/*.cruds", "--institution", "FNYLWSY")
        for did in ("restricted", "very"):
            r = http.get(f"/fhir/DocumentReference/{did}", headers=early)
            assert r.status_code == 401, (did, r.status_code, r.text)
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
        r = http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=early)
        assert r.status_code == 401, r.text
        assert not _introspect(http, early, "his-county", own)
        # a token issued after binding reads as a bound client: no R, no V, the rest as before
        late = _token(http, "his-township", bound_secret)
        assert http.get("/fhir/DocumentReference/restricted", headers=late).status_code == 404
        found = http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=late).json()
        assert ({e["resource"]["id"] for e in found.get("entry") or ()}, found["total"]) == ({"plain"}, 1)
        # the client whose registration did not change keeps its token
        assert http.get("/fhir/DocumentReference/very", headers=county).status_code == 200


def test_removing_or_re_registering_a_client_ends_its_tokens(
        settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    secret = _add(capsys, "auditor-a", "--scope", "system/*.rs", "--kind", "auditor")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        first = _token(http, "auditor-a", secret)
        assert http.get("/fhir/Patient?_count=1", headers=first).status_code == 200
        # registered again with narrower scopes (and so a new secret): the old token's wider scopes end
        secret = _add(capsys, "auditor-a", "--scope", "system/DetectedIssue.rs", "--kind", "auditor")
        r = http.get("/fhir/Patient?_count=1", headers=first)
        assert r.status_code == 401, r.text
        second = _token(http, "auditor-a", secret)
        assert http.get("/fhir/Patient?_count=1", headers=second).status_code == 403  # its scope now
        assert http.get("/fhir/DetectedIssue?_count=1", headers=second).status_code == 200
        # removed: nothing it holds opens anything any more
        assert cli_main(["client", "remove", "auditor-a"]) == 0
        r = http.get("/fhir/DetectedIssue?_count=1", headers=second)
        assert r.status_code == 401, r.text


def test_a_token_from_before_this_release_is_refused_once_its_client_is_bound(
        settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A token carrying no registration fingerprint (issued by the release before, still within its
    hour) is held against the stored binding: bound since, it no longer reads."""
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    _add(capsys, "his-township", "--scope", "system/*.cruds")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        token, claims = engine.auth.issue_token(subject="his-township", kind="system", client_id="his-township",
                                                scopes=["system/*.cruds"])  # as the release before issued it
        assert "cgen" not in claims
        old = {"Authorization": f"Bearer {token}"}
        assert http.put("/fhir/DocumentReference/restricted", json=_doc("restricted", "R"), headers=old).status_code == 201
        assert http.get("/fhir/DocumentReference/restricted", headers=old).status_code == 200
        _add(capsys, "his-township", "--scope", "system/*.cruds", "--institution", "FNYLWSY")
        r = http.get("/fhir/DocumentReference/restricted", headers=old)
        assert r.status_code == 401, r.text
