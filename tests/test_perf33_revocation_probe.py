"""The revocation check of every authenticated request is one primary-key probe (``Collection.holds``,
thirty-third round): no body read or parsed, the same answer as ``get``, on both backends, inside a
transaction as outside; and a token revoked by another process is refused by this one at once (no
answer is kept between requests: each request probes the store)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

ROOT = Path(__file__).resolve().parent.parent


def test_holds_answers_as_get_does(store):
    coll = store.collection("perf33_probe")
    coll.insert({"_id": "jti-1", "exp": 5})
    assert coll.holds("jti-1") is True
    assert coll.holds("jti-2") is False
    assert coll.holds("") is False
    coll.delete("jti-1")
    assert coll.holds("jti-1") is False
    assert coll.get("jti-1") is None


def test_holds_sees_this_threads_uncommitted_insert(store):
    """Inside the writer's transaction the probe goes through the writer's connection (as ``query``
    does), so what the transaction wrote is seen; a rollback takes it back."""
    coll = store.collection("perf33_probe_tx")
    try:
        with store.transaction():
            coll.insert({"_id": "jti-tx", "exp": 5})
            assert coll.holds("jti-tx") is True
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert coll.holds("jti-tx") is False


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_revoked_by_another_process_is_refused_at_once(settings):
    """Two processes on one data directory (``serve --workers``): the second revokes the token; the
    very next request to the first is refused, and the one after (nothing was kept)."""
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        token = engine.auth.issue_system_token("perf33-client", "system/*.cruds")
        for _ in range(3):  # accepted, and remembered (the signature check's LRU, the Caller cache)
            assert http.get("/fhir/Patient?_count=1", headers=_bearer(token)).status_code == 200
        script = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from pathlib import Path
            from engine.engine import Engine
            from engine.settings import Settings
            with Engine(Settings(data_dir=Path({str(settings.data_dir)!r}), http_port=0, mllp_port=0)) as other:
                claims = other.auth.decode({token!r})
                other.auth.revoke_jti(claims["jti"], claims["exp"])
        """)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        for _ in range(2):
            r = http.get("/fhir/Patient?_count=1", headers=_bearer(token))
            assert r.status_code == 401, r.text
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
            assert "revoked" in r.json()["issue"][0]["diagnostics"]
