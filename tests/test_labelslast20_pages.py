"""labelslast20: a registry file that does not parse, met by a person on a page (not an app).

From the review of labelsmend20 (its probes kept): a broken ``clients.json`` / ``staff.json`` gave
people an English OperationOutcome on ``/auth/authorize`` and ``POST /ui/signin``; now a Chinese
page (503). The 503 of ``/auth/token`` is audited as the other refusals there are. Each of the
first two and the audit fail on 0beb298; the hospital systems' guard passes on both."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_launch import app, authorize_params, http, people, pkce  # noqa: F401 - fixtures
from tests.test_staff_signin import PASSWORD, add_staff, rfc6238, sign_in


def _break(path: Any) -> str:
    text = path.read_text("utf-8")
    path.write_text(text.rstrip().rstrip("}") + ",}", "utf-8")
    return text


def _page_503(r: Any) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("text/html"), (r.headers["content-type"], r.text[:200])
    assert "暂" in r.text or "稍后" in r.text or "无法" in r.text, r.text[:300]
    assert "clients.json" not in r.text and "staff.json" not in r.text  # the file's name stays in the log


def test_resident_sign_in_page_with_a_broken_clients_file_is_a_chinese_page(http, engine):  # noqa: F811
    _, challenge = pkce()
    assert http.get("/auth/authorize", params=authorize_params(engine, challenge)).status_code == 200
    _break(engine.settings.data_dir / "clients.json")
    _page_503(http.get("/auth/authorize", params=authorize_params(engine, challenge)))


def test_staff_sign_in_with_a_broken_staff_file_is_a_chinese_page(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    secret = add_staff(monkeypatch, capsys, engine.settings, "wang.li", "auditor")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        _break(engine.settings.data_dir / "staff.json")
        _page_503(sign_in(client, "wang.li", PASSWORD, rfc6238(secret, time.time())))


def test_a_broken_clients_file_at_the_token_endpoint_is_audited(engine: Any) -> None:
    """The token endpoint's 503 (an app, not a page: the OperationOutcome stays) is an audited refusal."""
    secret = engine.auth.registry.add("lab-x", scopes=["system/*.rs"], kind="system")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        path = engine.settings.data_dir / "clients.json"
        good = _break(path)
        r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "lab-x",
                                             "client_secret": secret})
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/fhir+json"), r.text
        path.write_text(good, "utf-8")
        h = {"Authorization": "Bearer " + engine.auth.issue_system_token("auditor-x", "system/AuditEvent.rs")}
        events = client.get("/fhir/AuditEvent?_count=200", headers=h)
        assert events.status_code == 200, events.text
        refused = [e["resource"] for e in events.json().get("entry", [])
                   if e["resource"]["subtype"][0]["code"] == "token-issue"]
        assert [(e["outcome"], e.get("outcomeDesc")) for e in refused] == [("8", "HTTP 503")], events.text[:2000]


def test_a_broken_staff_file_does_not_stop_the_hospital_systems(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """staff.json is the people's file: a hand edit there must not stop HL7 ingest of the HIS."""
    add_staff(monkeypatch, capsys, engine.settings, "wang.li", "auditor")
    token = engine.auth.issue_system_token("his", "system/*.cruds")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {token}"}
        assert client.get("/fhir/Patient?_count=1", headers=h).status_code == 200
        _break(engine.settings.data_dir / "staff.json")
        r = client.get("/fhir/Patient?_count=1", headers=h)
        assert r.status_code == 200, r.text
