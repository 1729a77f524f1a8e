"""rvlead27: review of 3a86a2d5 / 59459ff6 (FHIR JSON answers labelled application/json when asked).

Through the real app (TestClient) over the real SQLite store. Each test fails on 86d1939b."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    eng = Engine(Settings(data_dir=tmp_path_factory.mktemp("rvl27") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rvl27", "system/*.cruds")
        made = client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "周"}]})
        assert made.status_code == 201, made.text
        yield client, made.json()["id"]
    eng.close()


def _type(response: Any) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def test_a_percent_encoded_format_name_is_read_as_the_router_reads_it(http: Any) -> None:
    """``%5Fformat`` is ``_format`` to the router (Starlette decodes the name) but the middleware's
    ``b"_format" in query`` pre-check misses it: the same request is answered by _format's rule for the
    body and by Accept's for the label."""
    client, pid = http
    encoded = client.get(f"/fhir/Patient/{pid}?%5Fformat=application/json", headers={"Accept": "application/fhir+json"})
    plain = client.get(f"/fhir/Patient/{pid}?_format=application/json", headers={"Accept": "application/fhir+json"})
    assert (plain.status_code, _type(plain)) == (200, "application/json")
    assert (encoded.status_code, _type(encoded)) == (200, _type(plain))


def test_application_star_outranks_star_star_for_the_fhir_type(http: Any) -> None:
    """RFC 9110 12.5.1: the most specific range that matches gives a type its weight -- application/fhir+json
    is weighed by ``application/*`` (0.1), not ``*/*`` (1), so application/json (0.5) is preferred.
    ``wants_plain_json`` takes the max of the two."""
    client, pid = http
    r = client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/json;q=0.5, application/*;q=0.1, */*"})
    assert (r.status_code, _type(r)) == (200, "application/json")


def test_the_refusal_of_a_too_large_body_follows_the_label_as_every_other_error(http: Any) -> None:
    """RequestLimits sits outside JsonLabel: its 413 OperationOutcome keeps application/fhir+json for a
    client that accepts application/json alone, where a 401/404/422 is relabelled."""
    client, _ = http
    big = b'{"resourceType": "Patient", "x": "' + b"a" * (60 * 1024 * 1024) + b'"}'
    r = client.post("/fhir/Patient", content=big,
                    headers={"Accept": "application/json", "Content-Type": "application/fhir+json"})
    assert r.status_code == 413
    assert _type(r) == "application/json"
