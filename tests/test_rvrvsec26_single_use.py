"""rvsec26: review probes of secmend26's single use of authorization codes and refresh tokens
(``auth_redeemed``): a legitimate redemption is never refused, rotation keeps working across
workers, a replay still ends the grant. Real HTTP against two workers on one store."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests import test_secmend26_single_use as su
from tests.test_resident_launch import exchange
from tests.test_secmend26_single_use import _code, _opens, _refresh

workers = su.workers  # the two-worker fixture (SQLite and mongomock)


def test_refresh_rotation_alternating_workers_keeps_working(workers: tuple[Engine, TestClient, TestClient]) -> None:
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    seen = {tokens["refresh_token"]}
    for i in range(6):
        http = (c1, c2)[i % 2]
        r = http.post("/auth/token", data=_refresh(tokens["refresh_token"]))
        assert r.status_code == 200, (i, r.text)
        tokens = r.json()
        assert tokens["refresh_token"] not in seen
        seen.add(tokens["refresh_token"])
        assert _opens((c2, c1)[i % 2], tokens) == 200
    # no legitimate use was taken for a second one
    assert not [d["_id"] for d in engine.auth.resident.redeemed.find({}) if d["_id"].endswith(":replayed")]


def test_a_refused_attempt_does_not_use_up_the_code(workers: tuple[Engine, TestClient, TestClient]) -> None:
    """A wrong verifier, a wrong redirect_uri: refused before the code is redeemed; the right
    request after them (on the other worker) is honoured and its tokens stay good."""
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    assert exchange(c1, code, "x" * 43).status_code == 400
    assert exchange(c2, code, verifier, redirect_uri="https://evil.example/cb").status_code == 400
    r = exchange(c2, code, verifier)
    assert r.status_code == 200, r.text
    assert _opens(c1, r.json()) == 200


def test_a_code_replayed_after_its_refresh_rotated_revokes_the_rotated_tokens(
        workers: tuple[Engine, TestClient, TestClient]) -> None:
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    rotated = c2.post("/auth/token", data=_refresh(tokens["refresh_token"])).json()
    assert _opens(c1, rotated) == 200
    assert exchange(c2, code, verifier).status_code == 400
    assert _opens(c1, rotated) == 401 and _opens(c1, tokens) == 401
    assert c1.post("/auth/token", data=_refresh(rotated["refresh_token"])).status_code == 400


def test_a_code_whose_exchange_failed_inside_huren_can_be_tried_again(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first exchange fails while huren issues the tokens (a store error: here the token issue
    raises once, as SQLite's "database is locked" under several workers would): a 500, nothing
    issued, the code never marked used. Before secmend26 the client's retry of the same code was
    honoured; now the code's ``auth_redeemed`` row was written before the failure, so the retry is
    "already been used" -- a sign-in refused that issued nothing."""
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    real = engine.auth.issue_token
    failed: list[bool] = []

    def issue(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise RuntimeError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.auth, "issue_token", issue)
    broken = TestClient(create_app(engine), base_url="https://huren.test", raise_server_exceptions=False)
    assert exchange(broken, code, verifier).status_code == 500
    monkeypatch.undo()
    retry = exchange(c2, code, verifier)
    assert retry.status_code == 200, retry.text
    assert _opens(c1, retry.json()) == 200


def test_a_refresh_token_used_again_after_its_rotation_failed_ends_the_grant(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotation fails inside huren after the refresh token was marked used (a 500, no successor).
    Presenting that token again is refused "its grant is revoked" -- and, as before secmend26, the
    grant then is revoked: the access token it came with stops opening the record. Now the
    ``:settled`` row is never written, so ``_second_use`` waits for a settle that never comes and
    nobody revokes: the refusal says "revoked" of a grant that is still live."""
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    real = engine.auth.issue_token
    failed: list[bool] = []

    def issue(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise RuntimeError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.auth, "issue_token", issue)
    broken = TestClient(create_app(engine), base_url="https://huren.test", raise_server_exceptions=False)
    assert broken.post("/auth/token", data=_refresh(tokens["refresh_token"])).status_code == 500
    monkeypatch.undo()
    again = c2.post("/auth/token", data=_refresh(tokens["refresh_token"]))
    assert again.status_code == 400 and "revoked" in again.json()["error_description"], again.text
    assert _opens(c1, tokens) == 401
