"""rv40f: review probes of ord40 (the operator's decision on a held change of an order; the site's application
aliases), fortieth round.

Real HL7 v2 over ``POST /hl7v2`` into the real store (both backends unless said), ``/admin`` over FastAPI (the
TestClient, or uvicorn where two requests must really run at once), the signed audit log exported and verified
offline by the project's verifier. A probe that shows a defect is a STRICT xfail naming its severity.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.export import verify_export, write_export
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import _BACKENDS
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from, _held, _taken
from tests.test_ord40_owner_decision import _aliased, _client, _control, _engine_on, _senders
from tests.test_ord40_owner_decision import _held_message as _held_by
from tests.test_ord40_owner_decision import _owner as _owner_asking
from tests.test_order35_as_later import _audited_replays, _details, _operator
from tests.test_resident_ui import _free_port, serving
from tests.test_rvrvops26_quarantine_access import _session
from tests.test_srfix35_order_code import B, history, oru, send, the_order

__all__ = ["site_env"]

REASON = "检验科 LIS 接口于 12 月 1 日更换厂商，MSH-3 改为 OID 形式，与原系统为同一系统"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RIS's interface said to have moved to the bare ``^<OID>^ISO`` (the NIST form) -- where ``OID`` is the
    hospital's own OID, which this site (as rv39g LOW 5's) also puts in its other applications' MSH-3s."""
    return _aliased(tmp_path_factory.mktemp("rv40fsite"), {B: [["RIS", f"^{OID}^ISO"]]})


@pytest.fixture(scope="module", params=_BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           site_dir: Path) -> Iterator[Engine]:
    with _engine_on(request.param, tmp_path_factory.mktemp("rv40f"), site_dir) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with _client(engine, "rv40f") as client:
        yield client


def _held_message(http: TestClient, placer: str, app: str = "EMR") -> str:
    """ord40's held message sent by ``app`` -- here by default one that is not the RIS and not aliased (``EMR``):
    the HIS orders head CT, the RIS reports it under ``F<placer>^RIS``, ``app`` sends XX to chest CT under that
    number: held (AA, W 204 naming the RIS). Returns the held message's id."""
    return _held_by(http, placer, app)


def _owner(http: TestClient, msg: str, headers: dict[str, str], reason: Any = REASON, **kw: Any) -> Any:
    """ord40's decision request with this file's reason, sent as its own UTF-8 bytes."""
    return _owner_asking(http, msg, headers, reason, ascii_only=False, **kw)


# --- who may decide ---------------------------------------------------------------------------------------------


def test_the_held_senders_own_post_only_token_cannot_take_its_change_as_the_owners(
        engine: Engine, http: TestClient) -> None:
    placer = "RV40F-SELF"
    msg = _held_message(http, placer)
    feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("emr-interface", "system/MessageHeader.c")}
    assert http.get("/admin/held", headers=feed).status_code == 403  # (it may not even list them)
    r = _owner(http, msg, feed, reason="我就是所有者")
    assert r.status_code == 403, r.text
    assert "3002" in _codes(the_order(http, placer))


def test_a_cookie_session_without_its_csrf_token_decides_nothing(engine: Engine, http: TestClient) -> None:
    """A cross-site form post (text/plain carrying JSON, the operator's cookie sent along) and a script without the
    page's X-CSRF-Token: 403, nothing replayed. With the token: taken."""
    placer = "RV40F-CSRF"
    msg = _held_message(http, placer)
    page = TestClient(http.app)
    cookies, csrf = _session(engine, "operator", name="it.rv40f")
    forged = page.post(f"/admin/quarantine/{msg}/owner", content='{"reason": "x", "y": "="}',
                       headers={"Content-Type": "text/plain", "Origin": "https://evil.example"}, cookies=cookies)
    assert forged.status_code == 403, forged.text
    assert _owner(page, msg, {}, cookies=cookies).status_code == 403
    assert _owner(page, msg, {"X-CSRF-Token": "not-" + csrf}, cookies=cookies).status_code == 403
    assert not engine.ingestor.messages.get(msg).get("replays")
    assert "3002" in _codes(the_order(http, placer))
    r = _owner(page, msg, {"X-CSRF-Token": csrf}, cookies=cookies)
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text


# --- the reason -------------------------------------------------------------------------------------------------


def test_the_reason_is_kept_exactly_as_typed(engine: Engine, http: TestClient) -> None:
    placer = "RV40F-LINES"
    msg = _held_message(http, placer)
    typed = "接口更换：\n1. MSH-3 改为 EMR\u3000（原 RIS）\n2.\t已与厂商核实"
    r = _owner(http, msg, _operator(engine, "system/MessageHeader.cr", "ops-desk"), reason=typed)
    assert r.status_code == 200, r.text
    assert engine.ingestor.messages.get(msg)["decision"]["reason"] == typed


def test_a_reason_of_500_characters_with_html_and_control_characters_is_kept_and_the_audit_log_verifies(
        engine: Engine, http: TestClient, tmp_path: Path) -> None:
    """Chinese, HTML, a right-to-left mark, a line break and a tab, 500 characters: 200, kept in the message's
    decision and both audit records; 501: 400, nothing written. A NUL, BEL or ESC (a terminal's escape sequence in
    the audit log) or a right-to-left override: 400 OperationOutcome naming it, nothing written (ordfix40: control
    characters but tab and line breaks refused; the lead: direction overrides, which show other words than typed). The Provenance's verifier says the decision in fixed words, not the reason (ordfix40: the
    patient reads it). The signed audit log, exported after the decision, verifies offline against the served
    public key (the project's verifier)."""
    placer = "RV40F-REASON"
    msg = _held_message(http, placer)
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    for control in ("\x00", "\x07", "\x1b[31m", "\u202e"):
        refused = _owner(http, msg, ops, reason=f"同一系统{control}确认")
        assert refused.status_code == 400 and refused.json()["resourceType"] == "OperationOutcome", refused.text
        assert f"U+{ord(control[0]):04X}" in refused.text, refused.text
    odd = "<img src=x onerror=alert(1)>\u200f理由\n\t"
    reason = odd + "经核实为同一系统" * ((500 - len(odd)) // 8)
    reason += "核" * (500 - len(reason))
    assert len(reason) == 500
    too_long = _owner(http, msg, ops, reason=reason + "多")
    assert too_long.status_code == 400 and too_long.json()["resourceType"] == "OperationOutcome", too_long.text
    assert not engine.ingestor.messages.get(msg).get("replays")
    r = _owner(http, msg, ops, reason=reason)
    assert r.status_code == 200 and r.json()["decided"]["reason"] == reason, r.text
    doc = engine.ingestor.messages.get(msg)
    assert doc["decision"]["reason"] == reason and doc["replays"][-1]["reason"] == reason
    provs = [http.get(f"/fhir/{p}").json() for p in doc["resources"] if p.startswith("Provenance/")]
    roles = [a["role"][0]["text"] for p in provs for a in p["agent"] if a.get("role")]
    assert roles and not any("经核实" in t for t in roles) and any("audit log" in t for t in roles), roles
    export = tmp_path / "audit.jsonl"
    with export.open("wb") as out:
        write_export(engine.audit, out)
    decided = [_details(e) for e in _audited_replays(engine, msg) if _details(e).get("as") == "owner"]
    assert [d["reason"] for d in decided] == [reason, reason], decided
    pem = tmp_path / "audit.pub.pem"
    pem.write_text(http.get("/audit/public-key").json()["keys"][0]["pem"])
    report = verify_export(export, [pem.read_bytes()])
    assert report.ok, report.text()


# --- the aliases ------------------------------------------------------------------------------------------------


def test_an_alias_names_only_the_msh3s_it_lists(engine: Engine, http: TestClient) -> None:
    placer = "RV40F-ALIAS"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    ack = send(http, _from(f"EMR^{OID}^ISO", _changed(placer, CHEST)))  # (the EMR, under the hospital's OID)
    assert "MSA|AA" in ack, ack
    codes = _codes(the_order(http, placer))
    assert "3002" in codes and "3001" not in codes, (codes, ack)  # (today: chest CT, no 204 warned)


def test_the_listed_alias_is_the_ris(engine: Engine, http: TestClient) -> None:
    """(the guard beside the xfail above: the form the site listed is the RIS)"""
    placer = "RV40F-ALIASOK"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _taken(http, placer, send(http, _from(f"^{OID}^ISO", _changed(placer, CHEST))))


# --- applied once, under two requests at once --------------------------------------------------------------------


def test_two_decisions_at_once_through_the_real_server_write_once(tmp_path: Path, site_dir: Path) -> None:
    """Two operators' POSTs at the same moment (two threads, real uvicorn, SQLite): one is applied, the other
    answered ``already``; one replay entry, one new version of the order, one decision record of each kind."""
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=_free_port(), mllp_port=0, site=site_dir))
    try:
        with serving(engine):
            base = engine.settings.public_base_url
            with TestClient(create_app(engine)) as http:
                http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40f", "system/*.cruds")
                placer = "RV40F-TWICE"
                msg = _held_message(http, placer)
                before = len(history(http, the_order(http, placer)))
            token = engine.auth.issue_system_token("ops-desk", "system/MessageHeader.cr")
            answers: list[tuple[int, dict[str, Any]]] = []
            gate = threading.Barrier(2)

            def decide(words: str) -> None:
                req = urllib.request.Request(f"{base}/admin/quarantine/{msg}/owner", method="POST",
                                             data=json.dumps({"reason": words}).encode(),
                                             headers={"Authorization": f"Bearer {token}",
                                                      "Content-Type": "application/json"})
                gate.wait()
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        answers.append((r.status, json.loads(r.read())))
                except urllib.error.HTTPError as e:
                    answers.append((e.code, json.loads(e.read())))

            threads = [threading.Thread(target=decide, args=(w,)) for w in ("第一位运维的理由", "第二位运维的理由")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(90)
            assert sorted((s, a.get("already")) for s, a in answers) == [(200, False), (200, True)], answers
            doc = engine.ingestor.messages.get(msg)
            assert len(doc["replays"]) == 1 and doc["decision"]["used"] is True, doc["replays"]
            applied = next(a for _, a in answers if a["already"] is False)
            again = next(a for _, a in answers if a["already"] is True)
            assert again["decided"]["reason"] == applied["decided"]["reason"] == doc["decision"]["reason"]
            with TestClient(create_app(engine)) as http:
                http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40f", "system/*.cruds")
                assert len(history(http, the_order(http, placer))) == before + 1
                assert "3001" in _codes(the_order(http, placer))
    finally:
        engine.close()


def test_a_held_change_is_listed_and_decided_after_a_restart(tmp_path: Path, site_dir: Path) -> None:
    """SQLite: held, the engine closed and opened again on the same data: still listed, decided, taken."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site_dir)
    placer = "RV40F-RESTART"
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40f", "system/*.cruds")
        msg = _held_message(http, placer)
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40f", "system/*.cruds")
        ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
        assert msg in [i["id"] for i in http.get("/admin/held", headers=ops).json()["items"]]
        r = _owner(http, msg, ops)
        assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
        assert "3001" in _codes(the_order(http, placer))


def test_two_alias_groups_stay_two_applications(tmp_path: Path) -> None:
    """(ordfix40: was a MED strict xfail -- the groups loaded, and the PACS's XX recoded the RIS's order.) The load
    now asks the alias module (``applications.mistakes``), whose rule is ``same_hd``: ``RIS^<OID>^ISO`` (group 1,
    with the PACS) is group 0's plain ``RIS``, so the site is refused naming the file and the line, and the
    running site -- had it been a reload -- stays."""
    from mappings.site import Site, SiteError

    site = _aliased(tmp_path / "site", {B: [["RIS", "^1.2.156.112604.1.2.41^ISO"], [f"RIS^{OID}^ISO", "PACS"]]})
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=site))
    said = str(raised.value)
    assert "senders.yaml" in said and f"application_aliases.{B}[1][0]" in said and "group 0" in said, said


def test_a_mistyped_oid_in_an_alias_stops_the_site_load(tmp_path: Path) -> None:
    from mappings.site import Site, SiteError

    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=_aliased(tmp_path, {B: [["RIS", "^1.2.156.x^ISO"]]})))
    said = str(raised.value)
    assert "senders.yaml" in said and f"application_aliases.{B}[0][1]" in said and "1.2.156.x" in said, said


def test_two_decisions_on_two_workers_are_applied_once(tmp_path: Path, site_dir: Path) -> None:
    """Two workers (two Engines over one SQLite data directory, as ``huren serve --workers 2`` forks them), each
    request through its worker's own app. Worker one's request is held between its check (``_owner_decidable``) and its reopen (the
    window widened so the race is shown every time) while worker two's is decided whole; then worker one goes on."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site_dir)
    placer = "RV40F-WORKERS"
    with (Engine(settings) as one, Engine(settings) as two, TestClient(create_app(one)) as first,
          TestClient(create_app(two)) as second):
        if True:  # (one block: the workers and their apps)
            first.headers["Authorization"] = "Bearer " + one.auth.issue_system_token("rv40f", "system/*.cruds")
            msg = _held_message(first, placer)
            inside, decided = threading.Event(), threading.Event()
            check = one.ingestor._owner_decidable

            def checked_then_held(*args: Any, **kw: Any) -> Any:
                answer = check(*args, **kw)  # (worker one has checked; its reopen is next)
                inside.set()
                decided.wait(60)
                return answer

            one.ingestor._owner_decidable = checked_then_held  # type: ignore[method-assign]
            answers: dict[str, Any] = {}

            def by_worker_one() -> None:
                token = one.auth.issue_system_token("ops-a", "system/MessageHeader.cr")
                answers["one"] = _owner(first, msg, {"Authorization": f"Bearer {token}"}, reason="运维甲的理由")

            thread = threading.Thread(target=by_worker_one)
            thread.start()
            assert inside.wait(60)
            token = two.auth.issue_system_token("ops-b", "system/MessageHeader.cr")
            answers["two"] = _owner(second, msg, {"Authorization": f"Bearer {token}"}, reason="运维乙的理由")
            decided.set()
            thread.join(120)
            said = {k: (r.status_code, r.json().get("already")) for k, r in answers.items()}
            doc = one.ingestor.messages.get(msg)
            assert said["two"] == (200, False), said
            assert [r["by"] for r in doc["replays"]] == ["ops-b"], (said, doc["replays"])
            assert said["one"] in ((200, True), (409, None)), said


def test_the_operators_reason_is_not_shown_to_the_resident(engine: Engine, http: TestClient) -> None:
    msg = _held_message(http, "RV40F-RESIDENT")
    words = "内部：厂商工单 #4471，信息科张工电话确认"
    assert _owner(http, msg, _operator(engine, "system/MessageHeader.cr", "ops-desk"), reason=words).status_code == 200
    doc = engine.ingestor.messages.get(msg)
    (patient,) = [r.split("/")[1] for r in doc["resources"] if r.startswith("Patient/")]
    (prov,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    token, _ = engine.auth.issue_token(subject="person-wang", kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient=patient)
    r = http.get(f"/fhir/{prov}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 404), r.text
    assert words not in r.text


def test_the_console_bounds_the_reason_as_the_api_does(site_env: Settings, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite (the CLI reopens the store, as ord40's console test). ``huren quarantine replay ID --as-owner`` with
    a 600-character reason: refused (2) as the API refuses it (400), nothing replayed."""
    from engine.cli import main

    placer = "RV40F-CLI"
    held = _from("EMR", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    capsys.readouterr()
    assert main(["quarantine", "replay", msg, "--as-owner", "同一系统" * 150]) == 2
    with Engine(site_env) as engine:
        assert not engine.ingestor.messages.get(msg).get("replays")


def test_a_placers_held_xo_is_taken_as_the_owners(engine: Engine, http: TestClient) -> None:
    """The placer side (ord40's tests decide the filler's XX only): HISAPP places head CT, the RIS reports it; the
    EMR's XO to chest CT is held (W 204, ORC-1 XO, the application that placed it named). Decided: taken, once."""
    from tests.test_ord39_order_history import _placed_by, _xo

    placer = "RV40F-XO"
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    message = _xo("EMR", placer, CHEST)
    _held(http, placer, send(http, message), "ORC-1 XO", "not this order's placer")
    msg = message_id(B, _control(message))
    (claim,) = engine.ingestor.messages.get(msg)["held_claims"]
    assert claim["claim"].startswith("PLAC|") and claim["elsewhere"] is False, claim
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    r = _owner(http, msg, ops)
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    _taken(http, placer, r.json()["ack"])
    assert _owner(http, msg, ops).json()["already"] is True


def test_an_alias_added_at_run_time_takes_a_held_change_on_its_replay(tmp_path: Path) -> None:
    """SQLite. The RIS reported as plain ``RIS``; its new interface's XX (``^<new OID>^ISO``) is held. The site adds
    the alias while the server runs: a mistaken one (a form in two groups) is 422 and the running site stays (still
    held on a replay); the right one, read by the replay's ``reload_site``: taken, and the message leaves the held
    list."""
    site = _aliased(tmp_path / "site", {})
    senders = site / "hl7v2" / "senders.yaml"
    moved = "1.2.156.112604.1.2.42"
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40f", "system/*.cruds")
        ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
        placer = "RV40F-RELOAD"
        msg = _held_message(http, placer, app=f"^{moved}^ISO")
        senders.write_text(_senders({B: [["RIS", f"^{moved}^ISO"], ["ris", "EMR"]]}), encoding="utf-8")
        r = http.post(f"/admin/quarantine/{msg}/replay?reload_site=true", headers=ops)
        assert r.status_code == 422 and "group 0" in r.text, r.text
        again = http.post(f"/admin/quarantine/{msg}/replay", headers=ops).json()
        assert "204" in [e["code"] for e in again["errors"]], again
        senders.write_text(_senders({B: [["RIS", f"^{moved}^ISO"]]}), encoding="utf-8")
        r = http.post(f"/admin/quarantine/{msg}/replay?reload_site=true", headers=ops)
        assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
        assert "204" not in [e["code"] for e in r.json()["errors"]], r.json()["errors"]
        assert "3001" in _codes(the_order(http, placer))
        assert msg not in [i["id"] for i in http.get("/admin/held", headers=ops).json()["items"]]
