"""probesec26: single use under two workers. `huren serve --workers N` runs N processes on one data
directory; here two Engines on one data directory (each its own store connections, as two worker
processes have) each serve a real app, and the same authorization code (or refresh token) is
presented to both at the same moment.

RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server MUST
deny the request". OAuth 2.0 Security BCP (RFC 9700) §4.14.2: with refresh token rotation, a
refresh token used twice is detected and the grant revoked -- which needs the second use to be
refused, not to race through.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_launch import APP, REDIRECT, ZHANG, exchange, ingest, patient, pkce, sign_in

TRIES = 40
SCOPE = "launch/patient patient/*.rs offline_access"


@pytest.fixture
def workers(settings: Settings) -> Iterator[tuple[Engine, TestClient, TestClient]]:
    s = settings.with_(extra={**settings.extra, "resident_auth": {
        "sends_per_id_source": 10_000, "sends_per_source": 10_000, "sends_per_id": 10_000,
        "posts_per_source": 10_000}})
    with Engine(s) as e1, Engine(s) as e2:
        ingest(e1, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "13800001111"))
        e1.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT], public=True)
        with TestClient(create_app(e1), base_url="https://huren.test") as c1, \
                TestClient(create_app(e2), base_url="https://huren.test") as c2:
            yield e1, c1, c2


def _both(calls) -> list[int]:  # noqa: ANN001
    bar = threading.Barrier(len(calls))
    out: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        bar.wait()
        out[i] = calls[i]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_a_code_presented_to_two_workers_at_once_is_redeemed_once(workers) -> None:
    engine, c1, c2 = workers
    outcomes = []
    for _ in range(TRIES):
        verifier, challenge = pkce()
        code = parse_qs(urlsplit(sign_in(c1, engine, ZHANG, challenge, scope=SCOPE)).query)["code"][0]
        got = _both([lambda c=c, code=code, v=verifier: exchange(c, code, v) for c in (c1, c2)])
        outcomes.append(got)
        assert sorted(got) == [200, 400], f"one code redeemed {got.count(200)} times: {outcomes}"


def test_a_refresh_token_presented_to_two_workers_at_once_is_used_once(workers) -> None:
    engine, c1, c2 = workers
    outcomes = []
    for _ in range(TRIES):
        verifier, challenge = pkce()
        code = parse_qs(urlsplit(sign_in(c1, engine, ZHANG, challenge, scope=SCOPE)).query)["code"][0]
        refresh = exchange(c1, code, verifier).json()["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": APP}
        got = _both([lambda c=c, form=form: c.post("/auth/token", data=form) for c in (c1, c2)])
        outcomes.append(got)
        assert sorted(got) == [200, 400], f"one refresh token used {got.count(200)} times: {outcomes}"
