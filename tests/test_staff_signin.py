"""Named staff sign in to the pages with a password and a TOTP code: accounts made by the ``huren staff``
CLI, real HTTP through the app, the real store and audit log. The TOTP codes are computed here from the
enrolment secret with an independent RFC 6238 implementation (HMAC-SHA1, 30 s steps, 6 digits), so the
server's verification is checked against the standard rather than against itself."""

from __future__ import annotations

import base64
import hmac
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.auth.staff_session import ACCOUNT_FREE, ADDRESS_LIMIT, DEVICE_COOKIE, SESSION_COOKIE
from engine.engine import Engine
from tests.test_recognition_world import ALICE, A, B, World, cbc

PASSWORD = "ginkgo-river-42"
T0 = 1_780_000_000.0  # a fixed instant, aligned to nothing in particular


def rfc6238(secret: str, at: float, digits: int = 6, step: int = 30) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at // step)), "sha1").digest()
    offset = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{value:0{digits}d}"


def test_rfc6238_reference_vector() -> None:
    # RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits); key "12345678901234567890"
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert rfc6238(secret, 59, digits=8) == "94287082"
    assert rfc6238(secret, 1111111109, digits=8) == "07081804"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(engine: Any) -> Clock:
    c = Clock()
    engine.staff.clock = c
    return c


def add_staff(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Any, name: str,
              role: str, display: str = "", institution: str = "YBJ") -> str:
    """``huren staff add`` as an administrator runs it; returns the TOTP secret it showed once."""
    import io

    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["staff", "add", name, "--role", role, "--institution", institution, "--password-stdin"]
    assert cli.main([*argv, "--display", display] if display else argv) == 0
    out = capsys.readouterr().out
    uri = re.search(r"otpauth://totp/\S+", out).group(0)
    secret = re.search(r"secret: ([A-Z2-7]+)", out).group(1)
    assert f"secret={secret}" in uri and "issuer=huren" in uri and f"huren:{name}" in uri
    return secret


def sign_in(http: TestClient, name: str, password: str, code: str, next_path: str = "/ui/duplicates") -> Any:
    form = http.get("/ui/signin", params={"next": next_path})
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return http.post("/ui/signin", data={"name": name, "password": password, "code": code, "csrf": csrf,
                                         "next": next_path}, follow_redirects=False)


def csrf_of(http: TestClient) -> str:
    return http.get("/ui/session").json()["csrf"]


def flags(engine: Any) -> str:
    """Two institutions, the same CBC three days apart: one flag; returns its id."""
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    rows = engine.recognition.flags.find()
    assert len(rows) == 1
    return rows[0]["_id"] if "_id" in rows[0] else rows[0]["id"]


def audit_records(engine: Any) -> list[dict[str, Any]]:
    return engine.audit.events()


def test_auditor_signs_in_with_password_and_code_and_reviews_a_flag(
        engine, settings, http, clock, monkeypatch, capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor", "王丽")
    stored = (settings.data_dir / "staff.json").read_text("utf-8")
    assert PASSWORD not in stored and "scrypt$" in stored
    assert (settings.data_dir / "staff.json").stat().st_mode & 0o077 == 0
    flag = flags(engine)

    page = http.get("/ui/duplicates", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/ui/signin?next=/ui/duplicates"
    form = http.get("/ui/signin")
    assert "工作人员登录" in form.text and "Staff sign-in" in form.text and 'lang="zh-CN"' in form.text

    r = sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now))
    assert r.status_code == 303 and r.headers["location"] == "/ui/duplicates"
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie and "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # plain http here; see the https test below
    assert any(c.startswith(DEVICE_COOKIE + "=") and "Path=/ui/signin" in c for c in cookies)

    assert http.get("/ui/duplicates").status_code == 200
    me = http.get("/ui/session").json()
    assert me["name"] == "wang.li" and me["display"] == "王丽" and me["role"] == "auditor" and me["institution"] == "YBJ"
    report = http.get("/reports/duplicates")
    assert report.status_code == 200 and report.json()["totals"]["count"] == 1

    r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": "无复查理由"},
                  headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200, r.text
    review = r.json()["reviews"][-1]
    assert review["by"] == "staff:wang.li 王丽 (auditor)" and review["decision"] == "upheld"
    issue = engine.repository.read("DetectedIssue", flag)
    assert issue["status"] == "final" and issue["mitigation"][-1]["author"]["display"] == review["by"]

    events = audit_records(engine)
    reviewed = next(e for e in events if e.get("subtype") and any(c.get("code") == "review" for c in e["subtype"]))
    person = reviewed["agent"][0]
    assert person["who"]["identifier"] == {"system": "urn:huren:staff", "value": "wang.li"}
    assert person["who"]["display"] == "王丽"
    assert person["role"][0]["coding"][0]["code"] == "auditor"
    logins = [e for e in events if any(c.get("code") == "110122" for c in e.get("subtype") or [])]
    assert logins and logins[-1]["agent"][0]["who"]["identifier"]["value"] == "wang.li"


def test_wrong_password_wrong_code_replayed_code_unknown_name(engine, settings, http, clock, monkeypatch,
                                                              capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    good = rfc6238(secret, clock.now)
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    for name, password, code in [("wang.li", "not-the-password", good), ("wang.li", PASSWORD, wrong),
                                 ("nobody", PASSWORD, good), ("wang.li", PASSWORD, "12ab56")]:
        r = sign_in(http, name, password, code)
        assert r.status_code == 401
        assert "登录名、密码或动态验证码不正确" in r.text and "The sign-in name, password or code is not right" in r.text
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert http.get("/reports/duplicates").status_code == 401
    # a code from the authenticator one step late is still fine (clock drift) ...
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now - 30)).status_code == 303
    # ... but a code is accepted once: someone who saw it cannot sign in with it again
    other = TestClient(create_app(engine), client=("10.0.0.9", 40000))
    assert sign_in(other, "wang.li", PASSWORD, rfc6238(secret, clock.now - 30)).status_code == 401
    assert sign_in(other, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303


def test_throttling_slows_the_attacker_without_locking_out_the_holder(
        engine, settings, clock, monkeypatch, capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    app = create_app(engine)
    holder = TestClient(app, client=("192.0.2.10", 40000))
    # the holder signs in once from their browser (it becomes a known device), then signs out
    assert sign_in(holder, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    holder.post("/ui/signout", data={"csrf": csrf_of(holder)})
    clock.now += 30

    attacker = TestClient(app, client=("198.51.100.7", 40000))
    for _ in range(ACCOUNT_FREE):
        assert sign_in(attacker, "wang.li", "guess-" + "x" * 8, "000000").status_code == 401
    # the account now backs off for strangers: even the right password is not even tried
    r = sign_in(attacker, "wang.li", PASSWORD, rfc6238(secret, clock.now))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "尝试次数过多" in r.text and "Your account is not locked" in r.text
    # a new browser of the holder is slowed too, but only for seconds (never a permanent lock) ...
    fresh = TestClient(app, client=("192.0.2.11", 40000))
    assert sign_in(fresh, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 429
    # ... and the holder's known browser goes straight in
    assert sign_in(holder, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    clock.now += 30

    # per source address: one address guessing across many names is stopped whatever the name
    sprayer = TestClient(app, client=("203.0.113.5", 40000))
    for i in range(ADDRESS_LIMIT):
        assert sign_in(sprayer, f"user{i}", "guess-" + "x" * 8, "000000").status_code == 401
    r = sign_in(sprayer, "someone.else", "guess-" + "x" * 8, "000000")
    assert r.status_code == 429
    # the holder behind the same address (a shared NAT) still gets in from their known browser
    clock.now += 30
    same_nat = TestClient(app, client=("203.0.113.5", 40001),
                          cookies={DEVICE_COOKIE: holder.cookies.get(DEVICE_COOKIE)})
    assert sign_in(same_nat, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    clock.now += 900  # the window passes: the address may try again
    assert sign_in(sprayer, "someone.else", "guess-" + "x" * 8, "000000").status_code == 401

    # backoff is bounded: after it, the holder from a new browser gets in (and success resets it)
    clock.now += 300
    assert sign_in(fresh, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303


def test_sessions_expire_when_idle_and_at_the_absolute_limit(engine, settings, http, clock, monkeypatch,
                                                              capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    idle, max_age = engine.staff.idle, engine.staff.max_age
    assert (idle, max_age) == (settings.staff_session_idle_seconds, settings.staff_session_max_seconds)
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    clock.now += idle - 5
    assert http.get("/reports/duplicates").status_code == 200  # used: the idle clock restarts
    clock.now += idle - 5
    assert http.get("/reports/duplicates").status_code == 200
    clock.now += idle + 1
    r = http.get("/reports/duplicates")
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    assert "sign in again" in r.json()["issue"][0]["diagnostics"]
    assert http.get("/ui/duplicates", follow_redirects=False).status_code == 303

    # a session kept busy still ends at the absolute limit
    clock.now += 60
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    start = clock.now
    while clock.now + idle / 2 < start + max_age:
        clock.now += idle / 2
        assert http.get("/ui/session").status_code == 200
    clock.now = start + max_age
    assert http.get("/ui/session").status_code == 401
    assert http.get("/reports/duplicates").status_code == 401


def test_csrf_is_required_for_changes_made_with_the_cookie(engine, settings, http, clock, monkeypatch,
                                                           capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    flag = flags(engine)
    # the sign-in form itself: a post without the form's own token (login CSRF) is refused
    r = http.post("/ui/signin", data={"name": "wang.li", "password": PASSWORD, "code": rfc6238(secret, clock.now),
                                      "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403 and "登录页面已过期" in r.text
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    body = {"decision": "upheld", "reason": "跨站提交"}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = http.post(f"/reports/duplicates/{flag}/review", json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["issue"][0]["diagnostics"]
    assert engine.recognition.flags.find()[0]["status"] == "flagged"
    # sign-out is a state change too
    assert http.post("/ui/signout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert http.get("/ui/session").status_code == 200


def test_roles_decide_through_the_same_access_checks(engine, settings, http, clock, monkeypatch, capsys) -> None:
    ops = add_staff(monkeypatch, capsys, settings, "zhao.ops", "operator", "赵强", institution="XRMYY")
    doc = add_staff(monkeypatch, capsys, settings, "liu.md", "clinician", "刘医生", institution="XRMYY")
    flag = flags(engine)
    app = create_app(engine)

    operator = TestClient(app)
    assert sign_in(operator, "zhao.ops", PASSWORD, rfc6238(ops, clock.now)).status_code == 303
    assert operator.get("/reports/duplicates").status_code == 200  # operators follow the flags ...
    r = operator.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": "x"},
                      headers={"X-CSRF-Token": csrf_of(operator)})
    assert r.status_code == 403  # ... but do not decide payment
    assert engine.recognition.flags.find()[0]["status"] == "flagged"

    clinician = TestClient(app)
    assert sign_in(clinician, "liu.md", PASSWORD, rfc6238(doc, clock.now)).status_code == 303
    r = clinician.get("/reports/duplicates")
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    assert clinician.get(f"/reports/duplicates/{flag}").status_code == 403
    assert clinician.get("/ui/session").json()["role_zh"] == "临床医生"


def test_sign_out_ends_the_session_on_the_server(engine, settings, http, clock, monkeypatch, capsys) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    stolen = http.cookies.get(SESSION_COOKIE)
    r = http.post("/ui/signout", data={"csrf": csrf_of(http)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/signin?out=1"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert "您已退出" in http.get("/ui/signin?out=1").text
    # the old cookie value is worthless: the server forgot the session
    replay = TestClient(create_app(engine), cookies={SESSION_COOKIE: stolen})
    assert replay.get("/reports/duplicates").status_code == 401
    assert engine.staff.sessions.count() == 0
    # removing an account ends its sessions at their next request
    clock.now += 30
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    assert cli.main(["staff", "remove", "wang.li"]) == 0
    assert http.get("/reports/duplicates").status_code == 401


def test_cookies_are_secure_behind_https_and_next_stays_on_this_site(settings, monkeypatch, capsys,
                                                                    tmp_path: Path) -> None:
    from engine.engine import Engine

    https = settings.with_(base_url="https://huren.example.cn")
    eng = Engine(https)
    try:
        c = Clock()
        eng.staff.clock = c
        secret = add_staff(monkeypatch, capsys, https, "wang.li", "auditor")
        http = TestClient(create_app(eng), base_url="https://huren.example.cn")
        r = sign_in(http, "wang.li", PASSWORD, rfc6238(secret, c.now), next_path="https://evil.example/")
        assert r.status_code == 303 and r.headers["location"] == "/ui/duplicates"
        assert all("Secure" in v for v in r.headers.get_list("set-cookie"))
    finally:
        eng.close()


def test_cli_verbs(settings, monkeypatch, capsys) -> None:
    import io

    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["staff", "add", "wang.li", "--role", "auditor", "--institution", "YBJ", "--password-stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["staff", "add", "wang.li", "--role", "janitor", "--institution", "YBJ", "--password-stdin"]) == 2
    assert "unknown role" in capsys.readouterr().out
    add_staff(monkeypatch, capsys, settings, "wang.li", "auditor", "王丽")
    assert cli.main(["staff", "list"]) == 0
    assert "wang.li\tauditor\tYBJ\t王丽" in capsys.readouterr().out
    first = json.loads((settings.data_dir / "staff.json").read_text("utf-8"))["accounts"][0]["totp_secret"]
    assert cli.main(["staff", "totp", "wang.li"]) == 0
    assert "otpauth://totp/huren:wang.li" in capsys.readouterr().out
    assert json.loads((settings.data_dir / "staff.json").read_text("utf-8"))["accounts"][0]["totp_secret"] != first
    monkeypatch.setattr("sys.stdin", io.StringIO("another-long-pass\n"))
    assert cli.main(["staff", "password", "wang.li", "--password-stdin"]) == 0
    assert cli.main(["client", "list"]) == 0  # the existing verbs are unchanged


def test_the_throttle_is_shared_by_every_worker_over_one_store(engine, settings, clock, monkeypatch, capsys) -> None:
    """``huren serve --workers 2``: two app instances over one store. An address spraying guesses at
    both workers is stopped after ADDRESS_LIMIT failures in all (not ADDRESS_LIMIT at each), and an
    account's backoff caused at one worker holds at the other; a third, separate process that records
    failures is counted too."""
    import subprocess
    import sys

    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    with Engine(settings) as second:
        second.staff.clock = clock
        one = TestClient(create_app(engine), client=("203.0.113.9", 40000))
        two = TestClient(create_app(second), client=("203.0.113.9", 40001))
        for i in range(ADDRESS_LIMIT):
            worker = one if i % 2 else two
            assert sign_in(worker, f"user{i}", "guess-" + "x" * 8, "000000").status_code == 401
        assert sign_in(one, "someone", "guess-" + "x" * 8, "000000").status_code == 429
        assert sign_in(two, "someone", "guess-" + "x" * 8, "000000").status_code == 429

        # an account hammered at worker one (from many addresses) backs off at worker two
        for i in range(ACCOUNT_FREE):
            attacker = TestClient(create_app(engine), client=(f"198.51.100.{i + 1}", 40000))
            assert sign_in(attacker, "wang.li", "guess-" + "x" * 8, "000000").status_code == 401
        elsewhere = TestClient(create_app(second), client=("192.0.2.77", 40000))
        assert sign_in(elsewhere, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 429
        clock.now += 300  # the backoff passes; the holder's success at worker two resets the account ...
        assert sign_in(elsewhere, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
        # ... for worker one too
        assert second.staff.throttle.wait("192.0.2.78", "wang.li", False) == 0.0
        assert engine.staff.throttle.wait("192.0.2.78", "wang.li", False) == 0.0

    # another process over the same data directory records failures from one address
    code = ("import sys; from engine.engine import Engine; from engine.settings import Settings\n"
            "from pathlib import Path\n"
            f"with Engine(Settings(data_dir=Path({str(settings.data_dir)!r}))) as e:\n"
            f"    e.staff.clock = lambda: {clock.now}\n"
            f"    for i in range({ADDRESS_LIMIT}): e.staff.throttle.failed('192.0.2.200', f'n{{i}}')\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
    assert engine.staff.throttle.wait("192.0.2.200", "anyone", False) > 0


def test_a_code_is_accepted_once_even_by_two_workers_at_the_same_moment(engine, settings, clock, monkeypatch,
                                                                        capsys) -> None:
    """Worker two read the account's last step before worker one accepted the code (simulated by
    putting the last step back): the code is still refused there, by the used-step key."""
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    code = rfc6238(secret, clock.now)
    with Engine(settings) as second:
        second.staff.clock = clock
        one = TestClient(create_app(engine), client=("192.0.2.1", 1))
        two = TestClient(create_app(second), client=("192.0.2.2", 1))
        assert sign_in(one, "wang.li", PASSWORD, code).status_code == 303
        second.staff.state.replace({"_id": "wang.li", "totp_step": -1})  # the stale read
        assert sign_in(two, "wang.li", PASSWORD, code).status_code == 401
        clock.now += 30
        assert sign_in(two, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
