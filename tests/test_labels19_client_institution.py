"""A system client bound to an institution reads no record labelled R or V (labels19).

Found wrong: every ``system`` client read R (restricted) and V (very restricted) records as sent,
the systems of *other* hospitals (a township clinic's HIS) too -- clients carried no institution,
so nothing told the sending hospital's system from any other. ``huren client add --institution
CODE`` now binds a system client to its hospital; its tokens carry the institution, and since no
rule tells which records are that institution's own, a bound client reads neither R nor V (404, left
out of searches and totals, as an auditor). An unbound system client (the sending hospitals' own
HIS) reads everything as before. Real CLI, real ``client_credentials`` token over HTTP, real store.
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


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _add(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["client", "add", *args]) == 0
    return capsys.readouterr().out.strip().rsplit(" ", 1)[-1]


def _doc(did: str, code: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"resourceType": "DocumentReference", "id": did, "status": "current",
                           "subject": {"reference": "Patient/zhang"},
                           "content": [{"attachment": {"contentType": "text/plain", "data": "5Ye66Zmi5bCP57uT"}}]}
    if code:
        doc["securityLabel"] = [{"coding": [{"system": CONF, "code": code}]}]
    return doc


def test_a_system_client_bound_to_another_hospital_reads_no_restricted_record(
        settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    own = _add(capsys, "his-county", "--scope", "system/*.cruds")
    other = _add(capsys, "his-township", "--scope", "system/*.cruds", "--institution", "FNYLWSY")
    assert cli_main(["client", "list"]) == 0
    assert "institution=FNYLWSY" in capsys.readouterr().out
    # only a system client is bound (an auditor or a user reads no R/V already)
    assert cli_main(["client", "add", "aud", "--scope", "system/*.rs", "--kind", "auditor",
                     "--institution", "FNYLWSY"]) == 2
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        tokens = {}
        for cid, secret in (("his-county", own), ("his-township", other)):
            r = http.post("/auth/token", data={"grant_type": "client_credentials"}, headers=_basic(cid, secret))
            assert r.status_code == 200, r.text
            tokens[cid] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        county, township = tokens["his-county"], tokens["his-township"]
        for body in ({"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]},
                     _doc("plain", None), _doc("restricted", "R"), _doc("very", "V")):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=county)
            assert r.status_code == 201, r.text
        missing = http.get("/fhir/DocumentReference/no-such", headers=township)
        for did in ("restricted", "very"):
            assert http.get(f"/fhir/DocumentReference/{did}", headers=county).status_code == 200
            r = http.get(f"/fhir/DocumentReference/{did}", headers=township)
            assert (r.status_code, r.text) == (404, missing.text), did
        found = http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=township).json()
        assert ({e["resource"]["id"] for e in found.get("entry") or ()}, found["total"]) == ({"plain"}, 1)
        assert http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=county).json()["total"] == 3
        # nor written over
        r = http.put("/fhir/DocumentReference/very", json=_doc("very", None), headers=township)
        assert r.status_code == 404, r.text
        assert http.get("/fhir/DocumentReference/very", headers=county).json()["securityLabel"][0]["coding"][0]["code"] == "V"
