"""Cost of the request-path middleware added for bad input and browsers: ``RequestLimits`` (body
size, JSON depth) and ``Cors``.

    python bench/request_limits.py --quick     # ~15 s
    python bench/request_limits.py

Builds the real app twice on one engine (real SQLite store, temporary data directory): as shipped,
and with the two middlewares taken out. Drives both in-process through ASGI (no sockets, so the
figure is the middleware's and the app's, not the network's), request by request A B B A A B ...,
and prints the median wall microseconds per request of each and the median of the pairwise
differences (pairing keeps the difference meaningful while the shared machine's speed drifts), for:

- ``GET /fhir/Observation/o1``             (hot read path: the middlewares only scan headers)
- ``GET ... with Origin``                  (a browser app: CORS adds its headers)
- ``POST /fhir/Observation``               (body buffered and depth-checked: fast path, few brackets)
- ``POST /fhir`` transaction of 14         (many brackets: the exact depth scan runs)

and the depth scan alone on that Bundle's bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def observation(i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}],
                     "text": "血红蛋白"},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-03-01T08:30:00+08:00",
            "performer": [{"reference": "Organization/org1"}],
            "valueQuantity": {"value": 135, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
            "referenceRange": [{"low": {"value": 130, "unit": "g/L"}, "high": {"value": 175, "unit": "g/L"}}],
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                            "code": "N"}]}]}


def bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(100 + i), "request": {"method": "PUT", "url": f"Observation/o{100 + i}"}}
        for i in range(14)]}


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), *headers], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8080)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 300 if args.quick else 1500

    from engine.api.app import create_app
    from engine.api.cors import Cors
    from engine.api.limits import RequestLimits, json_depth_exceeds
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(data_dir=Path(tmp) / "var"))
        engine.auth.registry.add("app", scopes=["patient/*.rs"], kind="patient-app",
                                 redirect_uris=["https://phr.example/cb"], public=True)
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "县医院"})
        engine.repository.update({"resourceType": "Patient", "id": "p1"})
        engine.repository.update(observation(1))
        token = engine.auth.issue_system_token("bench", "system/*.cruds")
        shipped = create_app(engine)
        plain = create_app(engine)
        plain.user_middleware = [m for m in plain.user_middleware if m.cls not in (RequestLimits, Cors)]
        auth = [(b"authorization", f"Bearer {token}".encode())]
        json_h = [*auth, (b"content-type", b"application/fhir+json")]
        one = orjson.dumps(observation(2))
        many = orjson.dumps(bundle())
        cases = [
            ("GET /fhir/Observation/o1", "GET", "/fhir/Observation/o1", auth, b""),
            ("GET ... Origin: registered app", "GET", "/fhir/Observation/o1",
             [*auth, (b"origin", b"https://phr.example")], b""),
            (f"PUT Observation ({len(one)} B)", "PUT", "/fhir/Observation/o2", json_h, one),
            (f"POST transaction of 14 ({len(many)} B)", "POST", "/fhir", json_h, many),
        ]

        async def run() -> None:
            print(f"{'request':42} {'shipped µs':>11} {'without µs':>11} {'cost µs':>8}  (medians of paired requests)")
            for label, method, path, headers, body in cases:
                for app in (shipped, plain):  # warm up both
                    for _ in range(5):
                        status = await call(app, method, path, headers, body)
                        assert status < 300, (path, status)
                count = n if method == "GET" else max(n // 2, 40)
                a, b, diff = [], [], []
                for i in range(count):  # request by request, alternating which goes first
                    first, second = (shipped, plain) if i % 2 == 0 else (plain, shipped)
                    t0 = time.perf_counter()
                    await call(first, method, path, headers, body)
                    t1 = time.perf_counter()
                    await call(second, method, path, headers, body)
                    t2 = time.perf_counter()
                    x, y = (t1 - t0, t2 - t1) if first is shipped else (t2 - t1, t1 - t0)
                    a.append(x)
                    b.append(y)
                    diff.append(x - y)
                med = statistics.median
                print(f"{label:42} {med(a) * 1e6:11.1f} {med(b) * 1e6:11.1f} {med(diff) * 1e6:8.1f}")

        asyncio.run(run())
        loops = 2000
        for label, body in (("depth scan, Observation (fast path)", one), ("depth scan, transaction of 14", many)):
            start = time.process_time()
            for _ in range(loops):
                json_depth_exceeds(body, 100)
            print(f"{label:42} {(time.process_time() - start) / loops * 1e6:11.1f} µs")
        engine.close()


if __name__ == "__main__":
    main()
