"""``GET /fhir/{type}/{id}`` answered by the fast path is the router's answer, byte for byte, and
is audited the same: success, unknown id, another resident's record, a missing scope, no token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api import fast_read
from engine.api.app import create_app
from engine.api.fast_read import FastRead
from engine.engine import Engine


@pytest.fixture
def world(engine: Engine) -> Engine:
    repo = engine.repository
    repo.update({"resourceType": "Organization", "id": "org1", "name": "county hospital"})
    for pid in ("pa", "pb"):
        repo.update({"resourceType": "Patient", "id": pid})
        repo.update({"resourceType": "Observation", "id": f"o-{pid}", "status": "final", "code": {"text": "Hb"},
                     "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-11-01",
                     "performer": [{"reference": "Organization/org1"}]})
    return engine


def _apps(engine: Engine) -> tuple[TestClient, TestClient]:
    fast = create_app(engine)
    routed = create_app(engine)
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not FastRead]
    return TestClient(fast), TestClient(routed)


def _last_record(engine: Engine) -> dict:
    record = engine.audit.events(engine.audit.size - 1, 1)[0]
    for key in ("id", "period", "recorded"):
        record.pop(key)
    return record


def test_the_fast_path_answers_and_audits_as_the_router_does(world: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_calls: list[str] = []
    answer = fast_read.read_response

    def counted(request, repo, rtype, rid):  # noqa: ANN001, ANN202 - the fast path's own call only
        fast_calls.append(f"/fhir/{rtype}/{rid}")
        return answer(request, repo, rtype, rid)

    monkeypatch.setattr(fast_read, "read_response", counted)
    resident, _ = world.auth.issue_token(subject="person-a", kind="patient", client_id="phr",
                                        scopes=["patient/*.rs"], patient="pa")
    cases = [
        ("/fhir/Observation/o-pa", world.auth.issue_system_token("his", "system/*.rs")),
        ("/fhir/Observation/nope", world.auth.issue_system_token("his", "system/*.rs")),
        ("/fhir/Observation/o-pb", resident),  # another resident's record: as if absent
        ("/fhir/Observation/o-pa", resident),
        ("/fhir/Observation/o-pa", world.auth.issue_system_token("lab", "system/Patient.rs")),  # no scope
        ("/fhir/Observation/o-pa", None),  # no token
    ]
    fast, routed = _apps(world)
    statuses = []
    for path, token in cases:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answers, records = [], []
        for client in (fast, routed):
            r = client.get(path, headers=headers)
            answers.append((r.status_code, r.content, {k: v for k, v in r.headers.items() if k != "date"}))
            records.append(_last_record(world))
        assert answers[0] == answers[1], path
        assert records[0] == records[1], path
        statuses.append(answers[0][0])
    assert statuses == [200, 404, 404, 200, 403, 401]
    # the fast app answered each itself (without a token it refused before reading)
    assert fast_calls == [path for path, token in cases if token]

def test_other_shapes_go_to_the_router(world: Engine) -> None:
    """A query string, a vread, an operation, HEAD: the router's routes answer them."""
    his = {"Authorization": "Bearer " + world.auth.issue_system_token("his", "system/*.rs")}
    fast, _ = _apps(world)
    assert fast.get("/fhir/Observation/o-pa?_format=json", headers=his).status_code == 200
    assert fast.get("/fhir/Observation/o-pa/_history/1", headers=his).status_code == 200
    assert fast.get("/fhir/Patient/pa/$everything", headers=his).status_code == 200
    assert fast.get("/fhir/metadata").status_code == 200
