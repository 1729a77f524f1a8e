"""rvlast25b review of txfix25's content negotiation: the most specific Accept range decides, on the
routers and the fast read path alike, through the real app over the real store.

The tests only read: one engine a module and backend (``tests.module_store``, suitedup31), the
patient they read written once, its PUT answered 201 (``paths``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_txfix25_rv_review import _patient

eng = module_eng

REFUSED = [
    "application/fhir+xml",
    "application/fhir+json;q=0, application/json;q=0, */*",
    "application/*;q=0, */*",
    "application/fhir+json;q=0, application/*",
    "text/html, application/xhtml+xml",
]
TAKEN = [
    "application/fhir+xml, */*;q=0.1",
    "application/json;q=0, application/fhir+json",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/fhir+json; fhirVersion=4.0",
    "application/fhir+json;q=abc",
    "",
]


@pytest.fixture(scope="module")
def http(eng: Engine) -> Iterator[TestClient]:
    """The real app over the module's engine, a system client's token (``system/*.cruds``)."""
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("test-system", "system/*.cruds")
        yield client


@pytest.fixture(scope="module")
def paths(http: TestClient) -> list[str]:
    """Patient/acc written (created: 201), and the paths reading it the tests ask."""
    assert http.put("/fhir/Patient/acc", json={**_patient("acc"), "id": "acc"}).status_code == 201
    return ["/fhir/Patient/acc", "/fhir/Patient?_id=acc", "/fhir/Patient/acc/_history", "/fhir/metadata"]


@pytest.mark.parametrize("accept", REFUSED)
def test_accept_admitting_no_json_is_406_outcome_everywhere(http: TestClient, paths: list[str], accept: str) -> None:
    for path in paths:
        r = http.get(path, headers={"Accept": accept})
        assert r.status_code == 406, (path, accept, r.status_code, r.text[:200])
        assert r.json()["resourceType"] == "OperationOutcome", (path, r.text[:200])
        # _format overrides Accept (R4 http.html#mime-type)
        sep = "&" if "?" in path else "?"
        assert http.get(f"{path}{sep}_format=json", headers={"Accept": accept}).status_code == 200, (path, accept)


@pytest.mark.parametrize("accept", TAKEN)
def test_accept_admitting_json_is_answered(http: TestClient, paths: list[str], accept: str) -> None:
    for path in paths:
        r = http.get(path, headers={"Accept": accept})
        assert r.status_code == 200, (path, accept, r.status_code, r.text[:200])


def test_metadata_varies_on_accept(http: TestClient) -> None:
    r = http.get("/fhir/metadata")
    assert r.status_code == 200 and "accept" in r.headers.get("vary", "").lower(), dict(r.headers)


def test_content_type_is_one_the_client_accepts(http: TestClient, paths: list[str]) -> None:
    """``application/fhir+json;q=0, application/json``: JSON is taken -- as application/json, the one
    the client accepts, not labelled application/fhir+json, the one it said it does not."""
    r = http.get(paths[0], headers={"Accept": "application/fhir+json;q=0, application/json"})
    assert r.status_code == 200, r.text[:200]
    assert r.headers["content-type"].split(";")[0] == "application/json", r.headers["content-type"]
