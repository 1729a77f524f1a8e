"""A result filed under the wrong resident and then corrected: its old version is not the first
resident's to read any more.

A hospital sends a glucose result under 张三's record (version 1), sees the mistake and sends it
again under 李四's (version 2). From then on the value is 李四's: 张三's read and ``_history`` of it
answer 404 as for a missing record, and so must a ``vread`` of version 1 -- directly and as a Bundle
entry -- although that version, on its own, names only 张三. The other way round (a result moved
to 张三) 张三 reads the versions that are his and not the one that was 李四's; a record of 张三's
that was deleted still answers its versions to him. Real HTTP through FastAPI, real tokens, the
real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine


def _patient(pid: str, name: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"text": name}],
            "identifier": [{"system": "urn:huren:mrn:FNXRMYY", "value": pid.upper()}]}


def _obs(oid: str, pid: str, value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Organization/fnxrmyy"}],
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                              "code": "mmol/L"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("probe17") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                     _patient("zhang", "张三"), _patient("li", "李四"),
                     _obs("moved-away", "zhang", 7.7), _obs("moved-away", "li", 7.7),  # misfiled, then corrected
                     _obs("moved-here", "li", 8.8), _obs("moved-here", "zhang", 8.8),
                     _obs("own", "zhang", 5.5), _obs("own", "zhang", 5.6)):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text
        assert http.delete("/fhir/Observation/own", headers=system).status_code == 204
        yield engine, http
    engine.close()


def _resident(engine: Any, patient: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"person-{patient}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=patient)
    return {"Authorization": f"Bearer {token}"}


def _batch_get(http: TestClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": url}}]}
    r = http.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["entry"][0]


def test_a_version_of_a_result_moved_to_someone_else_reads_like_a_missing_one(world: Any) -> None:
    engine, http = world
    zhang = _resident(engine, "zhang")
    missing = http.get("/fhir/Observation/no-such-id/_history/1", headers=zhang)
    assert missing.status_code == 404
    for path in ("/fhir/Observation/moved-away", "/fhir/Observation/moved-away/_history",
                 "/fhir/Observation/moved-away/_history/1", "/fhir/Observation/moved-away/_history/2"):
        r = http.get(path, headers=zhang)
        assert r.status_code == 404, (path, r.text)
        assert r.text == missing.text and "7.7" not in r.text
    entry = _batch_get(http, zhang, "Observation/moved-away/_history/1")
    assert entry == _batch_get(http, zhang, "Observation/no-such-id/_history/1")
    assert entry["response"]["status"].startswith("404") and "resource" not in entry


def test_neighbours_the_owner_and_the_system_still_read_their_versions(world: Any) -> None:
    engine, http = world
    zhang, li = _resident(engine, "zhang"), _resident(engine, "li")
    # 李四 reads the result that is now hers, but not the version filed under 张三
    assert http.get("/fhir/Observation/moved-away/_history/2", headers=li).json()["valueQuantity"]["value"] == 7.7
    assert http.get("/fhir/Observation/moved-away/_history/1", headers=li).status_code == 404
    # moved to 张三: his version reads, 李四's earlier one does not (for either of them once moved)
    assert http.get("/fhir/Observation/moved-here/_history/2", headers=zhang).status_code == 200
    assert http.get("/fhir/Observation/moved-here/_history/1", headers=zhang).status_code == 404
    assert http.get("/fhir/Observation/moved-here/_history/1", headers=li).status_code == 404
    assert _batch_get(http, zhang, "Observation/moved-here/_history/2")["resource"]["id"] == "moved-here"
    # a record of his own that was deleted: its versions are still his (410 for the deletion itself)
    assert http.get("/fhir/Observation/own/_history/2", headers=zhang).json()["valueQuantity"]["value"] == 5.6
    assert http.get("/fhir/Observation/own/_history/3", headers=zhang).status_code == 410
    assert http.get("/fhir/Observation/own/_history/2", headers=li).status_code == 404
    assert _batch_get(http, zhang, "Observation/own/_history/1")["resource"]["valueQuantity"]["value"] == 5.5
    system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.rs')}"}
    assert http.get("/fhir/Observation/moved-away/_history/1", headers=system).json()["subject"] == {
        "reference": "Patient/zhang"}
