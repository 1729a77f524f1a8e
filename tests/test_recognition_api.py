"""``POST /fhir/ServiceRequest/$check-recognition`` and ``POST /admin/reload`` over real HTTP (TestClient)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import ALICE, A, B, World, cbc

OP = "/fhir/ServiceRequest/$check-recognition"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def http(engine: Any) -> TestClient:
    return TestClient(create_app(engine))


def bearer(engine: Any, scopes: str = "system/*.cruds", kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("t-" + kind, scopes, kind=kind)}


def _history(engine: Any) -> tuple[World, str, str, list[Any]]:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-0001")
    r1 = w.report(A, pa, cbc(A), "2026-03-02T09:00:00+08:00")
    r2 = w.report(A, pa, cbc(A), "2026-03-06T09:00:00+08:00")
    old = w.report(A, pa, cbc(A), "2026-02-01T09:00:00+08:00")
    return w, pa, pb, [r1, r2, old]


def test_check_with_a_service_request_lists_newest_first_with_window_left(engine: Any, http: TestClient) -> None:
    _, _, pb, (r1, r2, _) = _history(engine)
    stored_before = len(engine.repository.search("DetectedIssue", [("_count", "100")]).resources)
    draft = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": cbc(B),
             "subject": {"reference": pb}, "authoredOn": "2026-03-08T10:00:00+08:00"}
    res = http.post(OP, json=draft, headers=bearer(engine))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["resourceType"] == "Parameters"
    found = [p for p in body["parameter"] if p["name"] == "recognisable"]
    parts = [{q["name"]: q for q in p["part"]} for p in found]
    assert [p["result"]["valueReference"]["reference"] for p in parts] == [
        f"DiagnosticReport/{r2.resource['id']}", f"DiagnosticReport/{r1.resource['id']}"]
    assert [p["windowLeft"]["valueInteger"] for p in parts] == [5, 1]
    assert parts[0]["resource"]["resource"]["id"] == r2.resource["id"]
    assert {p["name"]: p for p in body["parameter"]}["item"]["valueCoding"]["code"] == "CBC"
    # a check stores nothing
    assert len(engine.repository.search("DetectedIssue", [("_count", "100")]).resources) == stored_before


def test_check_with_patient_and_code(engine: Any, http: TestClient) -> None:
    _, _, pb, (_, r2, _) = _history(engine)
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": pb}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "date", "valueDate": "2026-03-12"},
    ]}
    res = http.post(OP, json=params, headers=bearer(engine))  # institution from managingOrganization
    assert res.status_code == 200, res.text
    found = [p for p in res.json()["parameter"] if p["name"] == "recognisable"]
    assert len(found) == 1  # 03-02 is 10 days old: outside the 7-day window
    assert found[0]["part"][0]["valueReference"]["reference"] == f"DiagnosticReport/{r2.resource['id']}"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"resourceType": "Parameters", "parameter": []}, 400, "'patient' and 'code'"),
    ({"resourceType": "Patient"}, 400, "ServiceRequest or a Parameters"),
    ({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/nope"}},
                                                  {"name": "code", "valueCoding": {"code": "x"}}]}, 404, "not found"),
])
def test_bad_input_is_an_operation_outcome(engine: Any, http: TestClient, body: dict, status: int, words: str) -> None:
    res = http.post(OP, json=body, headers=bearer(engine))
    assert res.status_code == status
    assert res.json()["resourceType"] == "OperationOutcome"
    assert words in res.json()["issue"][0]["diagnostics"]


def test_check_needs_a_token_and_the_right_scope(engine: Any, http: TestClient) -> None:
    assert http.post(OP, json={"resourceType": "ServiceRequest"}).status_code == 401
    res = http.post(OP, json={"resourceType": "ServiceRequest"}, headers=bearer(engine, "system/Patient.rs"))
    assert res.status_code == 403


def test_order_created_over_the_repository_returns_warning(engine: Any) -> None:
    w, _, pb, (_, r2, _) = _history(engine)
    out = w.order(B, pb, cbc(B), "2026-03-08T10:00:00+08:00")
    assert out.issues and out.issues[0]["severity"] == "warning"
    assert f"DiagnosticReport/{r2.resource['id']}" in out.issues[0]["diagnostics"]


def test_reload_swaps_rules_and_keeps_them_on_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    items = (Path(__file__).resolve().parent.parent / "mappings" / "recognition" / "items.yaml").read_text("utf-8")
    (site / "items.yaml").write_text(items, encoding="utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", site=site)) as engine:
        http = TestClient(create_app(engine))
        assert engine.recognition.rules.items["CBC"].window_days == 7
        (site / "items.yaml").write_text(items.replace("window_days: 7,  scope: [community], reasons: [R01, R02, R03]}",
                                                       "window_days: 5,  scope: [community], reasons: [R01, R02, R03]}"),
                                         encoding="utf-8")
        assert http.post("/admin/reload", headers=bearer(engine, "system/Patient.cruds")).status_code == 403
        res = http.post("/admin/reload", headers=bearer(engine))
        assert res.status_code == 200, res.text
        assert engine.recognition.rules.items["CBC"].window_days == 5
        (site / "items.yaml").write_text("- {code: CBC, name: x, category: 检验, window_days: soon}\n", encoding="utf-8")
        res = http.post("/admin/reload", headers=bearer(engine))
        assert res.status_code == 422
        diag = res.json()["issue"][0]["diagnostics"]
        assert "items.yaml:1: [0].window_days" in diag and "previous rules still in force" in diag
        assert engine.recognition.rules.items["CBC"].window_days == 5


def test_bad_rules_stop_start_up(tmp_path: Path) -> None:
    from mappings.sitefiles import RulesError

    site = tmp_path / "site"
    site.mkdir()
    (site / "qc.yaml").write_text("- {institution: FNZYY, item: CBC, passed: yes-ish, from: 2026-01-01, until: 2026-02-01}\n",
                                  encoding="utf-8")
    with pytest.raises(RulesError, match=r"qc.yaml:1: \[0\].passed: 'yes-ish' is not of type 'boolean'"):
        Engine(Settings(data_dir=tmp_path / "var", site=site))


@pytest.mark.slow
def test_sighup_reloads_rules_in_huren_serve(tmp_path: Path) -> None:
    """A real ``huren serve``: edit the site's items.yaml, send SIGHUP, the next check uses the new window;
    a broken file on the next SIGHUP leaves the running rules in force."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.test_ingest_serve import free_port, wait_for_port

    site = tmp_path / "site"
    site.mkdir()
    items = (REPO / "mappings" / "recognition" / "items.yaml").read_text("utf-8")
    (site / "items.yaml").write_text(items, encoding="utf-8")
    http_port, mllp_port = free_port(), free_port()
    settings = Settings(data_dir=tmp_path / "var", site=site, http_port=http_port, mllp_port=mllp_port)
    with Engine(settings) as engine:  # a patient to check for, and a token for this server (its key, its aud)
        patient = World(engine).patient(B, ALICE, mrn="B-1")
        headers = bearer(engine)
    env = os.environ | {"HUREN_DATA_DIR": str(settings.data_dir), "HUREN_SITE": str(site),
                        "HUREN_HTTP_PORT": str(http_port), "HUREN_MLLP_PORT": str(mllp_port)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": patient}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "institution", "valueString": B}]}

    def window() -> int:
        res = httpx.post(f"http://127.0.0.1:{http_port}{OP}", json=params, headers=headers, timeout=10)
        assert res.status_code == 200, res.text
        return next(p["valueInteger"] for p in res.json()["parameter"] if p["name"] == "windowDays")

    def window_becomes(expected: int) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if window() == expected:
                return True
            time.sleep(0.2)
        return False

    try:
        wait_for_port(http_port, proc)
        assert window() == 7
        (site / "items.yaml").write_text(items.replace(
            "window_days: 7,  scope: [community], reasons: [R01, R02, R03]}",
            "window_days: 5,  scope: [community], reasons: [R01, R02, R03]}"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert window_becomes(5)
        (site / "items.yaml").write_text("- {code: CBC\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert proc.poll() is None and window() == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert b"recognition rules NOT reloaded" in (proc.stderr.read() if proc.stderr else b"")
