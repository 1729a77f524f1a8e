"""perfread28: the fast read keeps its Accept decision per header value; the same header decides the
same way every time, a refused one stays 406 when asked again, and headers past the memo's bound are
decided afresh, never wrongly -- through the real app over the real store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api import fast_read
from tests.test_fhir_api import eng, http
from tests.test_lastfix25_rv_accept import REFUSED, TAKEN
from tests.test_txfix25_rv_review import _patient

__all__ = ["eng", "http"]


def test_repeated_accept_decides_alike(http: TestClient) -> None:
    assert http.put("/fhir/Patient/memo", json={**_patient("memo"), "id": "memo"}).status_code == 201
    for _ in range(3):  # the first decides and keeps; the next two are read from the memo
        for accept in REFUSED:
            r = http.get("/fhir/Patient/memo", headers={"Accept": accept})
            assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome", (accept, r.text[:200])
        for accept in TAKEN:
            r = http.get("/fhir/Patient/memo", headers={"Accept": accept})
            assert r.status_code == 200 and r.json()["id"] == "memo", (accept, r.text[:200])
    assert fast_read._ACCEPT_ADMITS[b"application/fhir+xml"] is False
    assert fast_read._ACCEPT_ADMITS[b"application/fhir+json; fhirVersion=4.0"] is True


def test_past_the_bound_still_decided(http: TestClient, request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if "mongomock" in request.node.name:  # the memo sits before the store: one backend is enough
        pytest.skip("decided before the store; run on SQLite")
    assert http.put("/fhir/Patient/memo2", json={**_patient("memo2"), "id": "memo2"}).status_code == 201
    # a bound a few values above what is kept already (256 in a server), so the run is short
    monkeypatch.setattr(fast_read, "_ACCEPT_KEPT", len(fast_read._ACCEPT_ADMITS) + 4)
    for i in range(24):
        refused = i % 2 == 0
        accept = f"application/fhir+xml;q=0.{i:03d}" if refused else f"application/fhir+json;q=0.{i:03d}"
        r = http.get("/fhir/Patient/memo2", headers={"Accept": accept})
        assert r.status_code == (406 if refused else 200), (accept, r.status_code)
    assert len(fast_read._ACCEPT_ADMITS) <= fast_read._ACCEPT_KEPT
