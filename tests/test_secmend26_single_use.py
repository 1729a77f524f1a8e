"""secmend26: an authorization code and a refresh token are redeemed once, and a second use ends
the grant however it is timed -- on SQLite and on MongoDB (mongomock).

``test_probesec26_races.py`` presents one code (or refresh token) to two workers at the same moment
and finds both honoured on the base. These tests fix the one interleaving a race may or may not
hit: the second use arrives while the first is issuing its tokens (here: from inside the first's
``issue_token``, through the other worker's real app). RFC 6749 §4.1.2: the second use is denied
and what the code issued is revoked; RFC 9700 §4.14.2 (refresh token rotation): a reused refresh
token revokes the grant -- including the tokens the first use is just issuing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_launch import APP, REDIRECT, ZHANG, exchange, ingest, patient, pkce, sign_in

SCOPE = "launch/patient patient/*.rs offline_access"


@pytest.fixture
def workers(backend_settings: Settings) -> Iterator[tuple[Engine, TestClient, TestClient]]:
    """Two workers on one store: two Engines on one data directory (SQLite), or two apps on one
    MongoDB store (mongomock keeps a database per client, so its two apps share one Engine)."""
    with ExitStack() as stack:
        e1 = stack.enter_context(Engine(backend_settings))
        e2 = e1 if backend_settings.mongodb_uri else stack.enter_context(Engine(backend_settings))
        ingest(e1, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "13800001111"))
        e1.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT], public=True)
        c1 = stack.enter_context(TestClient(create_app(e1), base_url="https://huren.test"))
        c2 = stack.enter_context(TestClient(create_app(e2), base_url="https://huren.test"))
        yield e1, c1, c2


def _code(engine: Engine, http: TestClient) -> tuple[str, str]:
    verifier, challenge = pkce()
    return parse_qs(urlsplit(sign_in(http, engine, ZHANG, challenge, scope=SCOPE)).query)["code"][0], verifier


def _refresh(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": APP}


def _while_issuing(monkeypatch: pytest.MonkeyPatch, engine: Engine, second: Callable[[], Any]) -> list[Any]:
    """Run ``second`` (the other worker's request) once, from inside the first worker's next token issue."""
    real = engine.auth.issue_token
    got: list[Any] = []
    started: list[bool] = []

    def issue(*args: Any, **kwargs: Any) -> Any:
        if not started:  # (set first: on one Engine the second request's own issue comes here too)
            started.append(True)
            got.append(second())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.auth, "issue_token", issue)
    return got


def _opens(http: TestClient, tokens: dict[str, Any]) -> int:
    return http.get(f"/fhir/Patient/{tokens['patient']}",
                    headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code


def test_a_code_used_again_while_its_tokens_are_issued_is_refused_and_ends_the_grant(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    second = _while_issuing(monkeypatch, engine, lambda: exchange(c2, code, verifier))
    first = exchange(c1, code, verifier)
    monkeypatch.undo()
    assert first.status_code == 200, first.text
    [again] = second
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    # what the code issued is revoked, as after a replay that comes later
    tokens = first.json()
    assert _opens(c1, tokens) == 401
    assert c2.post("/auth/token", data=_refresh(tokens["refresh_token"])).status_code == 400


def test_a_refresh_token_used_again_while_its_successor_is_issued_ends_the_grant(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    assert _opens(c1, tokens) == 200
    second = _while_issuing(monkeypatch, engine, lambda: c2.post("/auth/token", data=_refresh(tokens["refresh_token"])))
    first = c1.post("/auth/token", data=_refresh(tokens["refresh_token"]))
    monkeypatch.undo()
    assert first.status_code == 200, first.text
    [again] = second
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    rotated = first.json()
    assert _opens(c1, rotated) == 401 and _opens(c1, tokens) == 401
    assert c1.post("/auth/token", data=_refresh(rotated["refresh_token"])).status_code == 400


def test_used_one_after_the_other_on_either_worker(workers: tuple[Engine, TestClient, TestClient]) -> None:
    """The plain sequence on each backend: a code redeemed once, a refresh token rotated, and a
    later reuse of either (through the other worker) revokes what they gave."""
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    rotated = c2.post("/auth/token", data=_refresh(tokens["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    rotated_tokens = rotated.json()
    assert _opens(c2, rotated_tokens) == 200
    reuse = c1.post("/auth/token", data=_refresh(tokens["refresh_token"]))
    assert reuse.status_code == 400 and "revoked" in reuse.json()["error_description"]
    assert _opens(c2, rotated_tokens) == 401
    assert c2.post("/auth/token", data=_refresh(rotated_tokens["refresh_token"])).status_code == 400

    code, verifier = _code(engine, c1)
    tokens = exchange(c2, code, verifier).json()
    assert _opens(c1, tokens) == 200
    replay = exchange(c1, code, verifier)
    assert replay.status_code == 400 and "already been used" in replay.json()["error_description"]
    assert _opens(c1, tokens) == 401
    assert c1.post("/auth/token", data=_refresh(tokens["refresh_token"])).status_code == 400
