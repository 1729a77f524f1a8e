"""secfix26: what a token exchange that fails inside huren (a 500 after the code or refresh token was
redeemed) leaves behind. A code's redemption is undone -- the retry is honoured, and a real use after
that successful retry is still a replay that ends the grant. A refresh token stays used and its
rotation is settled -- a reuse that came while the failing rotation was issuing ends the grant, never
a "revoked" refusal with the grant still live. Real HTTP, two workers on one store (SQLite, mongomock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests import test_secmend26_single_use as su
from tests.test_resident_launch import exchange
from tests.test_secmend26_single_use import _code, _opens, _refresh

workers = su.workers  # the two-worker fixture (SQLite and mongomock)


def _fail_once(monkeypatch: pytest.MonkeyPatch, engine: Engine, meanwhile: Callable[[], Any] | None = None) -> list[Any]:
    """The next token issue on ``engine`` fails (as SQLite's "database is locked" would), after
    running ``meanwhile`` (the other worker's request) from inside it."""
    real = engine.auth.issue_token
    got: list[Any] = []

    def issue(*args: Any, **kwargs: Any) -> Any:
        if not got:
            got.append(meanwhile() if meanwhile else None)
            raise RuntimeError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.auth, "issue_token", issue)
    return got


def _broken(engine: Engine) -> TestClient:
    return TestClient(create_app(engine), base_url="https://huren.test", raise_server_exceptions=False)


def test_a_code_used_after_its_failed_exchange_was_retried_is_a_replay(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    _fail_once(monkeypatch, engine)
    assert exchange(_broken(engine), code, verifier).status_code == 500
    monkeypatch.undo()
    retry = exchange(c2, code, verifier)
    assert retry.status_code == 200, retry.text
    assert _opens(c1, retry.json()) == 200
    again = exchange(c1, code, verifier)
    assert again.status_code == 400 and "already been used" in again.text, again.text
    assert _opens(c2, retry.json()) == 401
    assert c1.post("/auth/token", data=_refresh(retry.json()["refresh_token"])).status_code == 400


def test_a_reuse_while_a_failing_rotation_issues_ends_the_grant(
        workers: tuple[Engine, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse finds the rotation unsettled and leaves the revoking to it; the rotation then fails.
    It still settles on its way out and sees the reuse, so the grant ends as the reuse was told."""
    engine, c1, c2 = workers
    code, verifier = _code(engine, c1)
    tokens = exchange(c1, code, verifier).json()
    got = _fail_once(monkeypatch, engine, lambda: c2.post("/auth/token", data=_refresh(tokens["refresh_token"])))
    assert _broken(engine).post("/auth/token", data=_refresh(tokens["refresh_token"])).status_code == 500
    monkeypatch.undo()
    assert got[0].status_code == 400 and "revoked" in got[0].json()["error_description"], got[0].text
    assert _opens(c2, tokens) == 401
