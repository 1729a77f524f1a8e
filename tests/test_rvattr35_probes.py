"""rvattr35's probes of attr35's read-path change (the caller and repository kept in
``request.scope["state"]``, ``app.state["engine"]``, ``header_of`` for the token, CSRF, Prefer and the
conditional headers, ``bytes.find`` in the JSON-label middleware, ``Caller.allows`` as a loop, the clients
file looked at with ``os.access``), probed as an attacker and as a reader of RFC 9110 and FHIR R4.

Real bytes through the real path: raw HTTP/1.1 over a socket to huren under uvicorn (keep-alive and
pipelining: a later request on the same connection must not inherit the earlier one's caller), FastAPI's
TestClient for the rest, the real store (SQLite and mongomock). A probe that shows a defect is a strict
xfail naming its severity."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.clients import ClientRegistry
from engine.engine import Engine
from tests.privprobe27_world import World, build
from tests.test_staff_oidc import serve
from tests.test_staff_signin import PASSWORD, Clock, add_staff, csrf_of, flags, rfc6238, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build(tmp_path_factory)


@pytest.fixture(scope="module")
def port(world: World) -> Iterator[int]:
    with serve(create_app(world.engine)) as p:
        yield p


def _token(h: dict[str, str]) -> str:
    return h["Authorization"].removeprefix("Bearer ")


def _raw(port: int, *requests: bytes, expect: int) -> list[tuple[int, bytes]]:
    """Send the requests pipelined on ONE connection (all bytes at once), read ``expect`` answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"".join(requests))
        buf = b""
        answers: list[tuple[int, bytes]] = []
        while len(answers) < expect:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buf[:head_end].decode("latin-1")
                length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1)) \
                    if re.search(r"(?im)^content-length:", head) else 0
                if len(buf) >= head_end + 4 + length:
                    answers.append((int(head.split()[1]), buf[head_end + 4:head_end + 4 + length]))
                    buf = buf[head_end + 4 + length:]
                    continue
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return answers


def _get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/fhir+json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _b_obs(world: World) -> str:
    return world.b_refs["Observation"][0]


def _a_obs(world: World) -> str:
    return world.engine.repository.search("Observation", [("subject", f"Patient/{world.a[0]}"),
                                                          ("_count", "1")]).resources[0]["id"]


# --- the caller kept in the request's state: never carried to the next request on a connection ----

def test_pipelined_requests_on_one_connection_do_not_inherit_the_caller(world: World, port: int) -> None:
    """uvicorn, HTTP/1.1 keep-alive, four requests in one write: a system read, the same read with no
    token, a resident's read of another person's record (fast path, then routed), then the system again."""
    system, resident = _token(world.system("system/*.rs")), _token(world.resident())
    b_obs = f"/fhir/Observation/{_b_obs(world)}"
    audited = world.engine.audit.size
    answers = _raw(port,
                   _get(b_obs, f"Authorization: Bearer {system}"),
                   _get(b_obs),
                   _get(b_obs, f"Authorization: Bearer {resident}"),
                   _get(b_obs + "?_format=json", f"Authorization: Bearer {resident}"),
                   _get(b_obs, f"Authorization: Bearer {system}"),
                   expect=5)
    assert [a[0] for a in answers][:2] == [200, 401], answers
    assert answers[2][0] in (403, 404) and answers[3][0] == answers[2][0], answers
    assert _b_obs(world).encode() not in answers[2][1] + answers[3][1]
    assert answers[4][0] == 200
    # the audit trail names each request's own caller: the system client on the first and last only
    deadline = time.time() + 10
    while world.engine.audit.size < audited + 5 and time.time() < deadline:
        time.sleep(0.05)
    events = [json.dumps(ev, ensure_ascii=False) for ev in world.engine.audit.events(audited)]
    assert len(events) == 5 and [('"HTTP 401"' in ev) for ev in events] == [False, True, False, False, False]
    assert [("his-fnxrmyy" in ev) for ev in events] == [True, False, False, False, True], events
    assert all("person-a" in ev for ev in events[2:4])


def test_a_staff_cookie_and_a_token_on_one_connection_do_not_mix(world: World, port: int) -> None:
    """A bogus session cookie after a good token on the same connection: 401, not the earlier caller."""
    system = _token(world.system("system/*.rs"))
    b_obs = f"/fhir/Observation/{_b_obs(world)}"
    answers = _raw(port, _get(b_obs, f"Authorization: Bearer {system}"),
                   _get(b_obs, "Cookie: huren_staff=forged"), expect=2)
    assert [a[0] for a in answers] == [200, 401], answers


# --- the Authorization header: names in any case, empty, odd, twice --------------------------------

def test_header_name_and_scheme_case_and_empty_values_through_the_server(world: World, port: int) -> None:
    system = _token(world.system("system/*.rs"))
    b_obs = f"/fhir/Observation/{_b_obs(world)}"
    answers = _raw(port,
                   _get(b_obs, f"AUTHORIZATION: bearer {system}"),  # field names and the scheme: any case
                   _get(b_obs, f"aUtHoRiZaTiOn: BEARER {system}"),
                   _get(b_obs, "Authorization:"),  # empty
                   _get(b_obs, "Authorization: Bearer"),  # no token
                   _get(b_obs, "Authorization: Bearer    "),
                   _get(b_obs, f"Authorization: Basic {system}"),
                   _get(b_obs, f"Authorization: Bearer {system}x"),  # one byte more
                   expect=7)
    assert [a[0] for a in answers] == [200, 200, 401, 401, 401, 401, 401], [a[0] for a in answers]
    for _status, body in answers[2:]:
        assert b'"OperationOutcome"' in body and _b_obs(world).encode() not in body


def test_two_authorization_fields_are_refused(world: World, port: int) -> None:
    system, resident = _token(world.system("system/*.rs")), _token(world.resident())
    b_obs = f"/fhir/Observation/{_b_obs(world)}"
    answers = _raw(port, _get(b_obs, f"Authorization: Bearer {system}", f"Authorization: Bearer {resident}"),
                   _get(b_obs, f"Authorization: Bearer {resident}", f"Authorization: Bearer {system}"), expect=2)
    assert [a[0] for a in answers] == [400, 400] or [a[0] for a in answers] == [401, 401], answers


# --- the fast read and the routed read: the same answer for the same caller -------------------------

def test_a_resident_gets_the_same_answer_on_the_fast_and_the_routed_read(world: World) -> None:
    resident, mine, theirs = world.resident(), _a_obs(world), _b_obs(world)
    for rid, allowed in ((mine, True), (theirs, False)):
        fast = world.http.get(f"/fhir/Observation/{rid}", headers=resident)
        routed = world.http.get(f"/fhir/Observation/{rid}?_format=json", headers=resident)
        assert fast.status_code == routed.status_code, (rid, fast.status_code, routed.status_code)
        if allowed:
            assert fast.status_code == 200 and fast.json() == routed.json()
        else:
            assert fast.status_code in (403, 404) and rid not in fast.text + routed.text
    # a resident with no Observation scope at all: refused on both, not served from a cached repo
    narrow = world.resident("patient/Patient.rs")
    assert world.http.get(f"/fhir/Observation/{mine}", headers=narrow).status_code == 403
    assert world.http.get(f"/fhir/Observation/{mine}?_format=json", headers=narrow).status_code == 403


# --- conditional headers and Prefer, read through header_of -----------------------------------------

def _version(world: World, rtype: str, rid: str) -> str:
    return world.engine.repository.read(rtype, rid)["meta"]["versionId"]


def test_conditional_reads_answer_as_rfc9110_and_fhir_say(world: World) -> None:
    sysh, rid = world.system("system/*.rs"), _a_obs(world)
    v = _version(world, "Observation", rid)
    for path in (f"/fhir/Observation/{rid}", f"/fhir/Observation/{rid}?_format=json"):  # fast, routed
        assert world.http.get(path, headers={**sysh, "If-None-Match": f'W/"{v}"'}).status_code == 304
        assert world.http.get(path, headers={**sysh, "if-none-match": f'"nope", W/"{v}"'}).status_code == 304
        assert world.http.get(path, headers={**sysh, "If-None-Match": "*"}).status_code == 304
        assert world.http.get(path, headers={**sysh, "If-None-Match": 'W/"nope"'}).status_code == 200
        # If-None-Match present: If-Modified-Since is ignored (RFC 9110 13.1.3)
        assert world.http.get(path, headers={**sysh, "If-None-Match": 'W/"nope"',
                                             "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}).status_code == 200
        assert world.http.get(path, headers={**sysh, "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
                              ).status_code == 304
        assert world.http.get(path, headers={**sysh, "If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}
                              ).status_code == 200
        assert world.http.get(path, headers={**sysh, "If-Modified-Since": "not a date"}).status_code == 200
    # a resident: no 304 (nor 200) for another person's record, whatever tag is guessed
    other = _b_obs(world)
    r = world.http.get(f"/fhir/Observation/{other}", headers={**world.resident(), "If-None-Match": "*"})
    assert r.status_code in (403, 404)


def test_two_if_none_match_fields_are_one_list(world: World, port: int) -> None:
    system, rid = _token(world.system("system/*.rs")), _a_obs(world)
    v = _version(world, "Observation", rid)
    answers = _raw(port, _get(f"/fhir/Observation/{rid}?_format=json", f"Authorization: Bearer {system}",
                              'If-None-Match: "nope"', f'If-None-Match: W/"{v}"'), expect=1)
    assert answers[0][0] == 304, answers


def test_two_prefer_fields_are_one_list(world: World, port: int) -> None:
    system = _token(world.system("system/*.rs"))
    answers = _raw(port, _get(f"/fhir/Observation?subject=Patient/{world.a[0]}&no-such-param=1",
                              f"Authorization: Bearer {system}", "Prefer: return=representation",
                              "Prefer: handling=lenient"), expect=1)
    assert answers[0][0] == 200, answers


def test_if_match_and_prefer_on_writes(world: World) -> None:
    sysh = world.system()
    body = {"resourceType": "Basic", "id": "rvattr35-b", "code": {"text": "probe"}}
    first = world.http.put("/fhir/Basic/rvattr35-b", json=body, headers={**sysh, "Prefer": "return=minimal"})
    assert first.status_code == 201 and first.content == b"" and first.headers["Location"]
    v = first.headers["ETag"].removeprefix("W/").strip('"')
    stale = world.http.put("/fhir/Basic/rvattr35-b", json=body, headers={**sysh, "if-match": 'W/"999"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    ok = world.http.put("/fhir/Basic/rvattr35-b", json={**body, "code": {"text": "second"}},
                        headers={**sysh, "If-Match": f'W/"{v}"', "prefer": "return=OperationOutcome"})
    assert ok.status_code == 200 and ok.json()["resourceType"] == "OperationOutcome"
    assert world.engine.repository.read("Basic", "rvattr35-b")["code"]["text"] == "second"
    # Content-Type: any case of the field name, parameters kept apart; a wrong one is a 415
    bad = world.http.put("/fhir/Basic/rvattr35-b", content=b"{}", headers={**sysh, "CONTENT-TYPE": "text/plain"})
    assert bad.status_code == 415


# --- the clients file created, removed, broken while serving: never a grant -------------------------

def test_the_clients_file_coming_and_going_while_serving_never_grants(engine: Engine) -> None:
    registry = ClientRegistry(engine.settings.data_dir)
    assert not registry.path.exists()
    app = create_app(engine)
    rid = "rvattr35-o"
    engine.repository.update({"resourceType": "Basic", "id": rid, "code": {"text": "x"}})
    with TestClient(app, raise_server_exceptions=False) as http:  # a real server answers what escapes
        registry.add("lab-sys", scopes=["system/*.rs"], name="lab")
        client = engine.auth.registry.get("lab-sys")
        assert client is not None
        token, _ = engine.auth.issue_token(subject="lab-sys", kind="system", client_id="lab-sys",
                                           scopes=["system/*.rs"], extra={"cgen": client.generation})
        h = {"Authorization": f"Bearer {token}"}
        assert http.get(f"/fhir/Basic/{rid}", headers=h).status_code == 200
        kept = registry.path.read_bytes()
        registry.path.unlink()  # removed while serving: its token is refused at once, every time
        assert [http.get(f"/fhir/Basic/{rid}", headers=h).status_code for _ in range(3)] == [401, 401, 401]
        registry.path.write_text("{ not json", encoding="utf-8")  # appears broken: refused, not granted
        assert http.get(f"/fhir/Basic/{rid}", headers=h).status_code == 503
        registry.path.unlink()
        registry.path.mkdir()  # a directory where the file was: never a 200
        try:
            assert http.get(f"/fhir/Basic/{rid}", headers=h).status_code != 200
        finally:
            registry.path.rmdir()
        registry.path.write_bytes(kept)  # back exactly (a restored backup): accepted again
        assert http.get(f"/fhir/Basic/{rid}", headers=h).status_code == 200
        registry.add("lab-sys", scopes=["system/Patient.rs"], name="lab")  # narrowed: the old token dies
        assert http.get(f"/fhir/Basic/{rid}", headers=h).status_code == 401


# --- both stores -----------------------------------------------------------------------------------

def test_the_state_kept_caller_reads_alike_on_sqlite_and_mongomock(backend_settings: Any) -> None:
    engine = Engine(backend_settings)
    try:
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "county hospital"})
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                                  "code": {"text": "Hb"}, "subject": {"reference": "Patient/p1"},
                                  "effectiveDateTime": "2026-11-01",
                                  "performer": [{"reference": "Organization/org1"}]})
        only_patients = engine.auth.issue_system_token("his", "system/Patient.rs")
        everything = engine.auth.issue_system_token("his", "system/*.rs")
        with TestClient(create_app(engine)) as http:
            for path in ("/fhir/Observation/o1", "/fhir/Observation/o1?_format=json"):
                assert http.get(path, headers={"Authorization": f"Bearer {only_patients}"}).status_code == 403
                assert http.get(path).status_code == 401
                r = http.get(path, headers={"Authorization": f"Bearer {everything}"})
                assert r.status_code == 200 and r.json()["id"] == "o1"
            s = http.get("/fhir/Observation?subject=Patient/p1", headers={"Authorization": f"Bearer {only_patients}"})
            assert s.status_code == 403
    finally:
        engine.close()



# --- CSRF on the staff pages' changes: the header read through header_of --------------------------

@pytest.fixture
def clock(engine: Engine) -> Clock:
    c = Clock()
    engine.staff.clock = c
    return c


def test_csrf_header_any_case_needed_on_a_cookie_change_and_not_inherited(engine: Engine, settings: Any, http: TestClient,
                                                                          clock: Clock, monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    flag = flags(engine)
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    body, url, token = {"decision": "upheld", "reason": "跨站提交"}, f"/reports/duplicates/{flag}/review", csrf_of(http)
    for headers in ({}, {"X-CSRF-Token": ""}, {"x-csrf-token": token + "x"}, {"X-CSRF-Token": token.upper()}
                    if token.upper() != token else {"X-CSRF-Token": token.lower() + "?"}):
        r = http.post(url, json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["issue"][0]["diagnostics"], (headers, r.status_code)
    assert engine.recognition.flags.find()[0]["status"] == "flagged"
    # a bearer token beside the cookie is the token's caller (no CSRF then: no ambient credential used)
    # -- but an empty Authorization beside the cookie is not a way round the CSRF check
    r = http.post(url, json=body, headers={"Authorization": ""})
    assert r.status_code in (401, 403) and engine.recognition.flags.find()[0]["status"] == "flagged"
    r = http.post(url, json=body, headers={"X-CSRF-TOKEN": token})  # the field name in any case
    assert r.status_code == 200, r.text
    assert engine.recognition.flags.find()[0]["status"] != "flagged"


# --- the dependency the change now relies on ---------------------------------------------------------

def _floor(requirement: str) -> tuple[int, ...] | None:
    m = re.search(r">=\s*([0-9][0-9.]*)", requirement)
    return tuple(int(p) for p in m.group(1).rstrip(".").split(".")) if m else None


def test_pyproject_requires_a_starlette_whose_state_is_subscriptable() -> None:
    import tomllib

    root = Path(__file__).resolve().parent.parent
    deps = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    starlette = [d for d in deps if re.match(r"\s*starlette\b", d)]
    assert starlette and (_floor(starlette[0]) or (0,)) >= (0, 52), deps
