"""The refusals answered outside ``NoStore`` say ``Cache-Control: no-store`` too (labels19).

A body over ``max_request_bytes`` (413, declared or counted while it arrives), one nested too deep
(400), an unreadable ``Content-Length`` (400) and a CORS preflight from an origin huren does not
know (403) are answered by middleware outside ``NoStore`` (``RequestLimits``, ``Cors``), so they
said nothing of caching where every other ``/fhir`` error says ``no-store``.
Real HTTP through FastAPI (the real middleware stack).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings


def test_limit_and_preflight_refusals_are_not_stored(tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, max_request_bytes=2000,
                             max_json_depth=10))
    try:
        with TestClient(create_app(engine)) as http:
            system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}",
                      "Content-Type": "application/fhir+json"}

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
                yield b'{"resourceType": "Patient", "name": [{"text": "'
                yield b"x" * 3000
                yield b'"}]}'

            deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 20 + b"]" * 20 + b"}"
            answers = {
                "413 declared": http.post("/fhir/Patient", content=b"x" * 3000, headers=system),
                "413 counted": http.post("/fhir/Patient", content=chunks(), headers=system),
                "400 too deep": http.post("/fhir/Patient", content=deep, headers=system),
                "403 preflight": http.options("/fhir/Patient", headers={
                    "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}),
                "403 preflight, token": http.options("/auth/token", headers={
                    "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}),
            }
            statuses = {name: r.status_code for name, r in answers.items()}
            assert statuses == {"413 declared": 413, "413 counted": 413, "400 too deep": 400, "403 preflight": 403,
                                "403 preflight, token": 403}, statuses
            for name, r in answers.items():
                assert r.headers.get("cache-control") == "no-store", name
                assert r.json()["resourceType"] == "OperationOutcome", name
    finally:
        engine.close()
