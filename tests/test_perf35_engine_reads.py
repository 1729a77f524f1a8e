"""Issue 15 (thirty-fifth round, perf35): every router reaches the engine through one accessor,
``engine.auth.deps.engine_of`` (``app.state["engine"]``, by key) or its dependency ``get_engine``.

attr35 made the FHIR read path read ``app.state`` by key; thirteen other modules still read
``request.app.state.engine`` by attribute, which Starlette's ``State`` answers from ``__getattr__`` only after
the ordinary lookup failed -- an ``AttributeError`` raised, formatted and dropped per request on their routes.
Real requests to those routes (the ingest ``POST /hl7v2``, the audit's public key, the admin health, the
CapabilityStatement, the staff sign-in page, a report) are watched with attr35's hooks: no ``__getattr__``
called from our code, no exception raised beside it and dropped. ``get_engine`` is async, so FastAPI no
longer sends it to its thread pool for each request (a sync dependency's hop). And the audit record's salt
pool, once empty, is refilled without the ``IndexError`` it used to raise and drop every 256 records."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import fastapi.dependencies.utils as fastapi_deps
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import record
from engine.engine import Engine
from tests.hl7_calls import ER7, oru
from tests.test_attr35_state_reads import ARMED, dropped_exceptions, getattr_fallbacks

ROOT = Path(__file__).resolve().parent.parent


def _requests(client: TestClient, token: str, control: str) -> list[tuple[str, Any, int]]:
    bearer = {"Authorization": f"Bearer {token}"}
    return [
        ("POST /hl7v2", client.post("/hl7v2", content=oru(control, "5.6", mrn="P35", unit="mmol/L").encode(),
                                    headers={**bearer, "Content-Type": ER7}), 200),
        ("GET /audit/public-key", client.get("/audit/public-key"), 200),
        ("GET /admin/health", client.get("/admin/health", headers=bearer), 200),
        ("GET /fhir/metadata", client.get("/fhir/metadata"), 200),
        ("GET /ui/signin", client.get("/ui/signin"), 200),
        ("GET /reports/duplicates", client.get("/reports/duplicates", headers=bearer), 200),
    ]


def test_the_other_routers_read_the_engine_without_a_state_miss(engine: Engine) -> None:
    token = engine.auth.issue_system_token("his", "system/*.cruds")
    app = create_app(engine)
    ARMED[0] = False
    try:
        with dropped_exceptions() as dropped, getattr_fallbacks() as seen, TestClient(app) as client:
            _requests(client, token, "P35A")  # once first: what a first request settles is no request's
            ARMED[0] = True
            answers = _requests(client, token, "P35B")
            ARMED[0] = False
    finally:
        ARMED[0] = True
    for what, answer, status in answers:
        assert answer.status_code == status, (what, answer.text)
    ack = answers[0][1].content.decode()
    assert "MSA|AA|P35B" in ack, ack  # the message was taken, as before
    assert answers[1][1].json()["keys"], answers[1][1].text
    assert answers[3][1].json()["resourceType"] == "CapabilityStatement"
    state_misses = [x for x in seen if x.endswith("State.__getattr__")]  # (the recognition's GroupMemo is
    assert state_misses == [], state_misses                                # a proxy by design: not counted)
    # only AttributeErrors by the routers and their dependencies: the ingest's own dropped exceptions (a
    # queue's Empty, a generator's GeneratorExit, the body's StopAsyncIteration) and the audit's occasional
    # pathlib miss (engine/audit/record_files.py, a new Path's lazy str) are other paths', left as found
    routers = tuple(str(ROOT / d) + "/" for d in ("engine/api", "engine/auth", "adapters/listeners"))
    attribute_errors = [x for x in dropped if x.endswith("AttributeError") and x.startswith(routers)]
    assert attribute_errors == [], attribute_errors


def test_no_module_reads_the_engine_by_attribute() -> None:
    """The rule has one owner: a new router copying ``request.app.state.engine`` would bring the miss back."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for base in ("engine", "adapters") for path in (ROOT / base).rglob("*.py")
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bstate\.engine\b", line) and not line.lstrip().startswith(("#", "``"))
                 and "state.engine = " not in line]
    assert offenders == [], offenders


def test_get_engine_runs_on_the_loop_not_in_the_thread_pool(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """``POST /hl7v2`` declares ``get_engine``: FastAPI sent that sync dependency to its thread pool on
    every message. Counted by wrapping FastAPI's own ``run_in_threadpool`` (the real one still runs)."""
    pooled: list[str] = []
    real = fastapi_deps.run_in_threadpool

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        pooled.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(fastapi_deps, "run_in_threadpool", counting)
    token = engine.auth.issue_system_token("his", "system/*.cruds")
    with TestClient(create_app(engine)) as client:
        answer = client.post("/hl7v2", content=oru("P35C", "6.1", mrn="P35", unit="mmol/L").encode(),
                             headers={"Authorization": f"Bearer {token}", "Content-Type": ER7})
        health = client.get("/admin/health", headers={"Authorization": f"Bearer {token}"})  # a sync dependency
    assert answer.status_code == 200 and "MSA|AA|P35C" in answer.text, answer.text
    assert health.status_code == 200, health.text
    assert "get_engine" not in pooled, pooled
    assert pooled, "the wrapper saw no sync dependency at all: it is not where FastAPI calls them"


def test_an_empty_salt_pool_is_refilled_without_a_dropped_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    raised: list[str] = []

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "exception":
            raised.append(arg[0].__name__)
        return local

    monkeypatch.setattr(record, "_salts", [])  # as after 256 records, or in a new process
    sys.settrace(lambda frame, event, arg: local if frame.f_code is record.new_salt.__code__ else None)
    try:
        salts = [record.new_salt() for _ in range(record._SALTS_AT_ONCE + 2)]  # two refills
    finally:
        sys.settrace(None)
    assert raised == [], raised
    assert len(set(salts)) == len(salts)
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in salts)
