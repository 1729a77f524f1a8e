"""A client that asks for ``application/json`` gets its FHIR JSON answers named ``application/json``
(R4 http.html#mime-type: "If a client provides a generic mime type in the Accept header ... the server
SHOULD respond with the requested mime type"); every other client keeps ``application/fhir+json``.
The body is the same. Through the real app (FastAPI TestClient) over the real SQLite store, on the
fast read (``engine.api.fast_read``), the router's read and search, an error, and ``_format``.
Twenty-seventh round, the lead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.api.formats import accepts_json, wants_plain_json
from engine.engine import Engine
from engine.settings import Settings

MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    eng = Engine(Settings(data_dir=tmp_path_factory.mktemp("label") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("label-test", "system/*.cruds")
        made = client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [
            {"system": MRN, "value": "L27-1"}], "name": [{"family": "李"}]})
        assert made.status_code == 201, made.text
        yield client, made.json()["id"]
    eng.close()


def _type(response: Any) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.mark.parametrize("accept, expected", [
    ("application/json", "application/json"),
    ("application/json, text/plain;q=0.5", "application/json"),
    ("application/fhir+json;q=0.5, application/json", "application/json"),
    ("application/fhir+json", "application/fhir+json"),
    ("application/json, application/fhir+json", "application/fhir+json"),  # a tie: the FHIR name
    ("application/json, */*", "application/fhir+json"),
    ("*/*", "application/fhir+json"),
    (None, "application/fhir+json"),
])
def test_the_label_follows_what_was_asked_on_every_kind_of_answer(http: Any, accept: str | None,
                                                                  expected: str) -> None:
    client, pid = http
    headers = {} if accept is None else {"Accept": accept}
    fast = client.get(f"/fhir/Patient/{pid}", headers=headers)  # the fast read
    routed = client.get(f"/fhir/Patient/{pid}/_history/1", headers=headers)  # the router's vread
    search = client.get("/fhir/Patient", params={"identifier": f"{MRN}|L27-1"}, headers=headers)
    missing = client.get("/fhir/Patient/no-such-record", headers=headers)  # an OperationOutcome
    assert [r.status_code for r in (fast, routed, search, missing)] == [200, 200, 200, 404]
    assert [_type(r) for r in (fast, routed, search, missing)] == [expected] * 4
    assert fast.json()["id"] == pid and search.json()["total"] == 1
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_format_overrides_accept_for_the_label(http: Any) -> None:
    client, pid = http
    plain = client.get(f"/fhir/Patient/{pid}", params={"_format": "application/json"},
                       headers={"Accept": "application/fhir+json"})
    fhir = client.get(f"/fhir/Patient/{pid}", params={"_format": "json"}, headers={"Accept": "application/json"})
    assert (plain.status_code, _type(plain)) == (200, "application/json")
    assert (fhir.status_code, _type(fhir)) == (200, "application/fhir+json")
    assert plain.content == fhir.content  # the same body under either name


def test_pages_and_other_types_are_not_relabelled(http: Any) -> None:
    client, _ = http
    meta = client.get("/fhir/metadata", headers={"Accept": "application/json"})
    assert (meta.status_code, _type(meta)) == (200, "application/json")
    refused = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert refused.status_code == 406 and _type(refused) == "application/fhir+json"


def test_the_weights_as_rfc_9110_reads_them() -> None:
    assert wants_plain_json("application/json;q=0.9, application/fhir+json;q=0.8", [])
    assert not wants_plain_json("application/json;q=0.8, application/fhir+json;q=0.9", [])
    assert not wants_plain_json("application/json;q=0, */*", [])
    assert wants_plain_json("application/json, application/*;q=0.5", [])
    assert not wants_plain_json("APPLICATION/JSON, application/*", [])
    # the admission rule kept its answers through its rewrite onto the shared weights
    assert accepts_json("") and accepts_json("*/*") and accepts_json("application/*")
    assert not accepts_json("application/fhir+json;q=0, application/json;q=0, */*")
    assert not accepts_json("application/fhir+xml") and not accepts_json("text/html")
    assert accepts_json("application/fhir+xml, application/json;q=0.1")
    assert accepts_json("application/json;q=oops")
