"""Every ``/fhir`` answer that can carry a person's record says ``Cache-Control: no-store``.

Before, none said anything of caching: a browser keeps such an answer in its HTTP cache
(heuristic freshness from ``Last-Modified``, the back button), so a resident's results read on a
shared phone stayed on it after sign-out. Reads (the fast path and the router's), vreads,
searches, ``$everything``, Bundles, ``_history``, HEAD, a 304 and an error now say ``no-store``;
the CapabilityStatement and the SMART configuration keep their public caching.
Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings


def test_fhir_answers_are_not_stored_and_the_public_documents_keep_their_caching(tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0))
    try:
        with TestClient(create_app(engine)) as http:
            system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
            obs: dict[str, Any] = {"resourceType": "Observation", "id": "glu", "status": "final",
                                   "code": {"text": "血糖"}, "subject": {"reference": "Patient/zhang"},
                                   "effectiveDateTime": "2026-09-20T08:00:00+08:00",
                                   "performer": [{"reference": "Organization/fnxrmyy"}],
                                   "valueQuantity": {"value": 5.5, "unit": "mmol/L"}}
            for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                         {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]}, obs):
                r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
                assert r.status_code == 201, r.text
                assert r.headers.get("cache-control") == "no-store"  # a write answers the resource too
            me = {"Authorization": "Bearer " + engine.auth.issue_token(
                subject="zhang-app", kind="patient", client_id="resident-app", scopes=["patient/*.rs"],
                patient="zhang")[0]}
            etag = http.get("/fhir/Observation/glu", headers=me).headers["etag"]
            batch = {"resourceType": "Bundle", "type": "batch",
                     "entry": [{"request": {"method": "GET", "url": "Observation?subject=Patient/zhang"}}]}
            answers = {
                "fast read": http.get("/fhir/Observation/glu", headers=me),
                "read with _elements": http.get("/fhir/Observation/glu?_elements=valueQuantity", headers=me),
                "vread": http.get("/fhir/Observation/glu/_history/1", headers=me),
                "history": http.get("/fhir/Observation/glu/_history", headers=me),
                "search": http.get("/fhir/Observation?subject=Patient/zhang", headers=me),
                "search by POST": http.post("/fhir/Observation/_search", data={"subject": "Patient/zhang"},
                                            headers=me),
                "$everything": http.get("/fhir/Patient/zhang/$everything", headers=me),
                "batch": http.post("/fhir", json=batch, headers=me),
                "HEAD": http.head("/fhir/Observation/glu", headers=me),
                "304": http.get("/fhir/Observation/glu", headers={**me, "If-None-Match": etag}),
                "404": http.get("/fhir/Observation/someone-elses", headers=me),
                "401": http.get("/fhir/Observation/glu"),
            }
            statuses = {name: r.status_code for name, r in answers.items()}
            assert statuses == {**dict.fromkeys(answers, 200), "304": 304, "404": 404, "401": 401}, statuses
            assert answers["fast read"].json()["valueQuantity"]["value"] == 5.5
            stored = {name: r.headers.get("cache-control") for name, r in answers.items()}
            assert stored == dict.fromkeys(answers, "no-store"), stored
            # the public documents keep the caching their routes give them
            for path in ("/fhir/metadata", "/fhir/.well-known/smart-configuration"):
                r = http.get(path)
                assert (r.status_code, r.headers.get("cache-control")) == (200, "public, max-age=300"), path
            # a header given once, not twice
            assert len(answers["search"].headers.get_list("cache-control")) == 1
    finally:
        engine.close()
