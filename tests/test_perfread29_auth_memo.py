"""perfread29: what ``AuthService.authenticate`` decided for a token is kept, and undone at once.

A bearer read no longer asks the store whether its token is revoked on every request: the answer is
kept per token with the shared revocation counter (``engine.auth.generation``) and the client
registry file's state. These tests hold that nothing about when a token stops working moved: a
revocation over ``POST /auth/revoke``, one written by another process on the same store (a second
``AuthService`` on its own connection and its own mapping of the counter, as a second worker or a
``huren`` command has), ``huren client remove`` from another registry, a hand edit of
``clients.json`` and a same-size edit within one timestamp tick each refuse the very next read.
And that the kept answer is used (the revocation lookup is skipped while nothing moved), so the
tests above exercise it. Real HTTP through the app (TestClient), the real SQLite store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.clients import ClientRegistry
from engine.auth.service import AuthService
from engine.repository.sqlite_store import SqliteStore

READ = "/fhir/Patient/p29"


class _Counted:
    """The store's real ``auth_revoked`` collection, its lookups counted (every call goes to it)."""

    def __init__(self, real: Any) -> None:
        self.real, self.gets = real, 0

    def get(self, key: str) -> Any:
        self.gets += 1
        return self.real.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _age(path: Path) -> None:
    """The registry file as a server finds it after a while: older than the racy tick."""
    old = path.stat().st_mtime_ns - 10_000_000_000
    os.utime(path, ns=(old, old))


@pytest.fixture
def setup(engine: Any) -> Any:
    engine.repository.update({"resourceType": "Patient", "id": "p29", "gender": "female"})
    secret = engine.auth.registry.add("his29", scopes=["system/*.rs"], kind="system")
    counted = engine.auth.revoked = _Counted(engine.auth.revoked)
    with TestClient(create_app(engine), raise_server_exceptions=False) as http:
        r = http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=("his29", secret))
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        yield engine, http, secret, token, {"Authorization": f"Bearer {token}"}, counted


def _kept(http: TestClient, held: dict[str, str], counted: _Counted) -> None:
    """Two reads that answer 200, the second from the kept decision (no revocation lookup)."""
    assert http.get(READ, headers=held).status_code == 200
    before = counted.gets
    r = http.get(READ, headers=held)
    assert r.status_code == 200, r.text
    assert counted.gets == before, "the kept decision was not used"


def test_a_revocation_over_http_refuses_the_next_read(setup: Any) -> None:
    engine, http, secret, token, held, counted = setup
    _age(engine.settings.data_dir / "clients.json")
    _kept(http, held, counted)
    assert http.post("/auth/revoke", data={"token": token}, auth=("his29", secret)).status_code == 200
    r = http.get(READ, headers=held)
    assert r.status_code == 401, r.text
    assert "revoked" in r.text


def test_a_revocation_by_another_process_refuses_the_next_read(setup: Any) -> None:
    engine, http, _, token, held, counted = setup
    _age(engine.settings.data_dir / "clients.json")
    _kept(http, held, counted)
    other_store = SqliteStore(engine.settings.sqlite_path)
    other = AuthService(engine.settings, store=other_store)
    try:
        claims = other.decode(token)
        other.revoke_jti(claims["jti"], claims["exp"])
    finally:
        other._revocations.close()  # type: ignore[union-attr]
        other_store.close()
    r = http.get(READ, headers=held)
    assert r.status_code == 401, r.text
    assert "revoked" in r.text


def test_huren_client_remove_from_another_registry_refuses_the_next_read(setup: Any) -> None:
    engine, http, _, _, held, counted = setup
    _age(engine.settings.data_dir / "clients.json")
    _kept(http, held, counted)
    ClientRegistry(engine.settings.data_dir).remove("his29")
    r = http.get(READ, headers=held)
    assert r.status_code == 401, r.text
    assert "registration" in r.text


def test_a_hand_edit_of_the_clients_file_refuses_the_next_read(setup: Any) -> None:
    """Binding the client to an institution by editing the file (no counter moves: the stat sees it)."""
    engine, http, _, _, held, counted = setup
    path = engine.settings.data_dir / "clients.json"
    _age(path)
    _kept(http, held, counted)
    body = json.loads(path.read_text("utf-8"))
    body["clients"]["his29"]["institution"] = "其他医院"
    path.write_text(json.dumps(body, ensure_ascii=False), "utf-8")  # in place, as an editor may
    r = http.get(READ, headers=held)
    assert r.status_code == 401, r.text


def test_a_same_size_edit_in_one_tick_refuses_the_next_read(setup: Any) -> None:
    """A registry file written within the racy tick pins nothing: no decision is kept on it, so an
    edit keeping its inode, size and mtime (a write in the same tick) is still seen."""
    engine, http, _, _, held, _ = setup
    path = engine.settings.data_dir / "clients.json"
    first = path.stat()
    assert http.get(READ, headers=held).status_code == 200
    assert http.get(READ, headers=held).status_code == 200
    text = path.read_text("utf-8")
    edited = text.replace('"system/*.rs"', '"system/*.ws"')
    assert edited != text and len(edited) == len(text)
    with open(path, "r+", encoding="utf-8") as fh:  # the same inode
        fh.write(edited)
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))  # the same tick
    assert path.stat().st_ino == first.st_ino and path.stat().st_size == first.st_size
    r = http.get(READ, headers=held)
    assert r.status_code == 401, r.text
