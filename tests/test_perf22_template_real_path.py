"""The audited read's record written from a template (perfaudit21) is, through the real path, the very
record the general path writes: the same requests over real HTTP (FastAPI's app, real tokens and staff
sessions, the real log) go to two fresh engines, one with the template path and one where every record
takes the general path (``_facts`` -> ``Facts.data``), on the same clock and salts; every stored record
is compared byte for byte.

The requests vary what the template is keyed by and what it must not carry over: system clients of
other scopes (a 403 denied read), the same client with a fresh token, two staff members signed in with
non-ASCII names (a clinician and an auditor), the clinician signed in again under another display name
(a changed account while running), conditional reads answered 304 by callers who had 200s, a resident (the general path: their own patients are marked), a 404,
a vread, a resource that is a patient, an update, a search, a read whose start and record fall in one
millisecond and one that does not; the template table is kept at 3 entries so it is cleared and
refilled on the way. (The log's origin is stored with the log and cannot change while it is open:
``tests/test_perfaudit21_template.py`` varies it, and fails without it in the key.) (Family members acting for a resident are
``kind == "patient"`` callers: they take the general path, as residents do, in both runs.)
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import middleware, record
from engine.audit.events import instant_of
from engine.audit.verify import verify_online
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit_views import LI_ID, ZHANG_ID, _obs, _patient, bearer

BASE_MS = 1796025600123


def _world(data_dir: Path) -> Engine:
    engine = Engine(Settings(data_dir=data_dir, http_port=0, mllp_port=0))
    repo = engine.repository
    repo.update({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"})
    repo.update(_patient("pt-zhang", ZHANG_ID, "张三"))
    repo.update(_patient("pt-li", LI_ID, "李四"))
    repo.update(_obs("obs-zhang", "pt-zhang"))
    repo.update(_obs("obs-li", "pt-li"))
    return engine


def _staff(engine: Engine, name: str, role: str, display: str) -> dict[str, str]:
    person = StaffIdentity(name, role, "FNXRMYY", display, "")
    token, _ = engine.staff.open_session(person, engine.staff.roles[role], address="127.0.0.1",
                                         issuer="https://idp.fnxrmyy.example.cn")
    return {SESSION_COOKIE: token}


def _requests(engine: Engine, http: TestClient) -> list[int]:
    """The same requests, in the same order, on either engine; their statuses."""
    his = bearer(engine.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    his_again = bearer(engine.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))  # a fresh token
    writer = bearer(engine.auth.issue_system_token("his-写入", "system/*.cruds"))
    narrow = bearer(engine.auth.issue_system_token("lis-\"q\"\\", "system/Patient.rs"))
    resident = bearer(engine.auth.issue_token(subject="person-pt-zhang", kind="patient", client_id="phr",
                                              scopes=["patient/*.rs"], patient="pt-zhang")[0])
    doctor = _staff(engine, "zhao.min", "clinician", "赵敏")
    auditor = _staff(engine, "wang.li", "auditor", "王丽 \u2028 O'Brien \U0001f600")
    statuses: list[int] = []

    def get(path: str, **kw: Any) -> None:
        statuses.append(http.get(path, **kw).status_code)

    for _ in range(2):  # the second round from the templates the first one made
        get("/fhir/Observation/obs-zhang", headers=his)
        get("/fhir/Observation/obs-zhang", headers=his)
        get("/fhir/Observation/obs-li", headers=his_again)
        get("/fhir/Observation/no-such", headers=his)
        get("/fhir/Patient/pt-zhang", headers=his)
        get("/fhir/Observation/obs-zhang/_history/1", headers=his)
        get("/fhir/Observation/obs-li", headers=narrow)  # denied: 403
        get("/fhir/Patient/pt-li", headers=narrow)
        get("/fhir/Observation/obs-zhang", cookies=doctor)
        get("/fhir/Observation/obs-zhang", cookies=doctor, headers={"If-None-Match": 'W/"1"'})  # 304
        get("/fhir/Observation/obs-li", headers={**his, "If-None-Match": "*"})  # 304, after the 200s
        get("/fhir/Observation/obs-li", cookies=auditor)
        get("/fhir/Observation/obs-zhang", headers=resident)
        get("/fhir/Observation/obs-li", headers=resident)  # another resident's: refused
        get("/fhir/Observation?subject=Patient/pt-zhang", headers=his)
        get("/fhir/Organization/fnxrmyy", headers=his)
    body = dict(http.get("/fhir/Observation/obs-zhang", headers=writer).json())
    body.pop("meta", None)
    body["status"] = "amended"
    statuses.append(http.put("/fhir/Observation/obs-zhang", headers=writer, content=orjson.dumps(body)).status_code)
    get("/fhir/Observation/obs-zhang", cookies=doctor)  # her template the last one made or used
    doctor = _staff(engine, "zhao.min", "clinician", "赵敏（主任）")  # signed in again, renamed
    get("/fhir/Observation/obs-zhang", cookies=doctor)
    get("/fhir/Observation/obs-zhang", headers=his)
    return statuses


def _records(engine: Engine) -> list[bytes]:
    engine.audit.drain()
    out = []
    for seq in range(engine.audit.size):
        data = engine.audit.get(seq)["data"]
        out.append(data.encode() if isinstance(data, str) else bytes(data))
    return out


def _run(data_dir: Path, monkeypatch: pytest.MonkeyPatch, *, general: bool) -> tuple[list[int], list[bytes], int]:
    clock = itertools.count()
    # start and record now in one millisecond, now in another (7 of 10 steps advance it)
    monkeypatch.setattr(middleware, "time_ns", lambda: (BASE_MS + next(clock) * 7 // 10) * 1_000_000 + 123)
    salts = itertools.count()
    monkeypatch.setattr(record, "new_salt", lambda: f"{next(salts):032x}")
    middleware._TEMPLATES.clear()
    made = [0]
    template = middleware._template

    def counted(*args: Any) -> Any:
        made[0] += 1
        return template(*args)

    monkeypatch.setattr(middleware, "_template", counted)
    monkeypatch.setattr(middleware, "_TEMPLATES_MAX", 3)
    taken = [0]
    if general:
        def one_resource(n: Any, caller: Any, client: Any, status: int, start: Any, origin: str,
                         made: Any = None, own: Any = None, acting_for: Any = None) -> Any:
            # (``made``/``own``/``acting_for``: the template's and perfa42b's resident prefix -- the general path
            # reads the same from the caller)
            taken[0] += 1
            now = middleware.time_ns() // 1_000_000
            return middleware._facts({"method": "GET", "path": "/"}, [n], status,
                                     instant_of(start) if type(start) is int else start, origin, None, caller,
                                     getattr(caller, "kind", None), middleware.requestor_of(caller, client),
                                     instant_of(now))

        monkeypatch.setattr(middleware, "_one_resource", one_resource)
    engine = _world(data_dir)
    try:
        with TestClient(create_app(engine)) as http:
            statuses = _requests(engine, http)
        records = _records(engine)
        report = verify_online(engine.audit)
        assert report.ok, report
    finally:
        engine.close()
    return statuses, records, taken[0] if general else made[0]


def test_the_template_writes_what_the_general_path_writes_over_real_http(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    statuses, records, made = _run(tmp_path / "template", monkeypatch, general=False)
    monkeypatch.undo()
    statuses_g, records_g, taken = _run(tmp_path / "general", monkeypatch, general=True)
    assert statuses == statuses_g
    assert {200, 304, 403, 404} <= set(statuses), statuses
    assert len(records) == len(records_g) >= len(statuses)
    for n, (mine, theirs) in enumerate(zip(records, records_g, strict=True)):
        assert mine == theirs, (n, mine, theirs)
    # the template path was taken, and templates were made again after the table was cleared
    assert taken >= 20 and made >= 10, (taken, made)
    docs = [orjson.loads(r) for r in records]
    said = {(d["by"][0], d["by"][1], d["by"][5], d["node"], d["desc"]) for d in docs if d.get("by")}
    assert ("user", "zhao.min", "赵敏（主任）", docs[0]["node"], "HTTP 200") in said
    assert ("user", "zhao.min", "赵敏", docs[0]["node"], "HTTP 200") in said
    assert any(d["desc"] == "HTTP 403" and d["by"][1] == "lis-\"q\"\\" for d in docs)
    assert sum(d["desc"] == "HTTP 304" and d["act"] == "read" for d in docs) == 4
    assert any("from" in d for d in docs) and any("from" not in d and d["act"] == "read" for d in docs)
