"""``_format`` that is not JSON is refused with 406 on the data routes, as on ``metadata``.

``GET /fhir/metadata?_format=xml`` answered 406 Not Acceptable, but a search, a read, a vread,
``_history`` and ``$everything`` asked for XML answered JSON under a 200: a client that asked for
XML got a body it did not ask for. R4 (http.html) makes ``_format`` the client's choice of
representation; huren has JSON only. The JSON spellings (``json``, ``application/json``,
``application/fhir+json`` with parameters) still answer. Real HTTP through FastAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def test_a_format_other_than_json_is_406_everywhere(http: TestClient, engine: Any, client_token: Any) -> None:
    http.headers["Authorization"] = "Bearer " + client_token(engine)
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"text": "张三"}]}
    assert http.put("/fhir/Patient/p1", json=patient).status_code == 201
    paths = ["/fhir/Patient", "/fhir/Patient/p1", "/fhir/Patient/p1/_history/1", "/fhir/Patient/p1/_history",
             "/fhir/Patient/p1/$everything", "/fhir/metadata"]
    for path in paths:
        for fmt in ("xml", "application/fhir+xml", "text/turtle", "html"):
            r = http.get(path, params={"_format": fmt})
            assert r.status_code == 406, (path, fmt, r.status_code)
            assert r.headers["content-type"].startswith("application/fhir+json")
            assert r.json()["issue"][0]["code"] == "not-supported"
        for fmt in ("json", "application/json", "application/fhir+json", "application/fhir+json; fhirVersion=4.0"):
            r = http.get(path, params={"_format": fmt})
            assert r.status_code == 200, (path, fmt, r.text)
    r = http.post("/fhir/Patient/_search?_format=xml", content="name=张三",
                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 406
    assert http.get("/fhir/Patient", params={"name": "张三"}).json()["total"] == 1
    # the operations on Patient answer the same way
    r = http.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": "urn:x|1", "_format": "xml"})
    assert r.status_code == 406
    r = http.post("/fhir/Patient/$match?_format=xml", json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient}]})
    assert r.status_code == 406
