"""Two answers a client got wrong from ``/fhir``, as RFC 6750 and R4 say they should read.

- A bearer token without the scope for the request got 403 with no ``WWW-Authenticate``
  challenge: RFC 6750 (3.1) names this case ``insufficient_scope``, and SMART clients read the
  challenge to tell "ask for more scope" from "not allowed". Now the challenge says so; a
  missing or bad token stays 401 ``invalid_token``/no error code.
- ``Patient/{id}/$everything?_type=Foo`` (a type that does not exist: a typo of ``Observation``)
  answered 200 with an empty Bundle -- "this patient has none" -- instead of the 400 a search
  of ``/fhir/Foo`` gets.

Real HTTP through FastAPI, real tokens, SQLite.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("api18c") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        body = {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]}
        assert http.put("/fhir/Patient/zhang", json=body, headers=system).status_code == 201
        yield engine, http, system
    engine.close()


def test_a_token_without_the_scope_is_challenged_with_insufficient_scope(world: Any) -> None:
    engine, http, _ = world
    narrow = {"Authorization": f"Bearer {engine.auth.issue_system_token('lab', 'system/Observation.rs')}"}
    for method, path in (("GET", "/fhir/Patient/zhang"), ("GET", "/fhir/Patient?name=张"),
                         ("DELETE", "/fhir/Observation/x")):
        r = http.request(method, path, headers=narrow)
        assert r.status_code == 403, (method, path)
        challenge = r.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer ") and 'error="insufficient_scope"' in challenge, (path, challenge)
    bad = http.get("/fhir/Patient/zhang", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_everything_of_a_type_that_does_not_exist_is_a_400(world: Any) -> None:
    _, http, system = world
    r = http.get("/fhir/Patient/zhang/$everything?_type=Observaton", headers=system)
    assert r.status_code == 400 and "Observaton" in r.text and r.json()["issue"][0]["expression"] == ["_type"]
    ok = http.get("/fhir/Patient/zhang/$everything?_type=Patient", headers=system)
    assert ok.status_code == 200 and ok.json()["total"] == 1


def test_head_of_a_version(world: Any) -> None:
    _, http, system = world
    full = http.get("/fhir/Patient/zhang/_history/1", headers=system)
    head = http.head("/fhir/Patient/zhang/_history/1", headers=system)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", full.headers["etag"])
    assert head.headers["content-length"] == str(len(full.content))
