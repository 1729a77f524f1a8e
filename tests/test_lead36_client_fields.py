"""Client authentication at the OAuth endpoints reads every ``Authorization`` field (review rv36b's LOW):
two Basic credentials -- a proxy appending its own beside the client's -- are refused at ``/auth/token``,
``/auth/introspect`` and ``/auth/revoke`` (RFC 9110 makes Authorization one field, RFC 6749 2.3 one
method), and the revocation asked for does not happen. One field still works at each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_rv36b_probes import _basic


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


@pytest.fixture
def bare(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def _clients(engine: Engine) -> tuple[str, str]:
    his = engine.auth.registry.add("his-a", scopes=["system/*.cruds"], kind="system")
    lis = engine.auth.registry.add("lis-b", scopes=["system/Observation.rs"], kind="system")
    return _basic("his-a", his), _basic("lis-b", lis)


def _token(bare: TestClient, basic: str) -> str:
    got = bare.post("/auth/token", data={"grant_type": "client_credentials"}, headers=[("Authorization", basic)])
    assert got.status_code == 200, got.text
    return got.json()["access_token"]


@pytest.mark.parametrize("path", ["/auth/introspect", "/auth/revoke"])
def test_two_basic_fields_are_refused_and_one_is_taken(engine: Engine, bare: TestClient, path: str) -> None:
    his, lis = _clients(engine)
    token = _token(bare, his)
    two = bare.post(path, data={"token": token}, headers=[("Authorization", his), ("Authorization", lis)])
    assert two.status_code == 400, two.text
    assert two.json()["error"] == "invalid_request"
    # refused means not done: the token still reads
    read = bare.get("/fhir/Patient", headers=[("Authorization", f"Bearer {token}")])
    assert read.status_code == 200, read.text
    one = bare.post(path, data={"token": token}, headers=[("Authorization", his)])
    assert one.status_code == 200, one.text
    if path == "/auth/introspect":
        assert one.json()["active"] is True
    else:
        gone = bare.get("/fhir/Patient", headers=[("Authorization", f"Bearer {token}")])
        assert gone.status_code == 401, gone.text


def test_two_basic_fields_at_the_token_endpoint_name_the_reason(engine: Engine, bare: TestClient) -> None:
    his, lis = _clients(engine)
    two = bare.post("/auth/token", data={"grant_type": "client_credentials"},
                    headers=[("Authorization", his), ("Authorization", lis)])
    assert two.status_code == 400, two.text
    assert two.json() == {"error": "invalid_request",
                          "error_description": "send one Authorization field: this request carried several"}
    assert _token(bare, lis)
