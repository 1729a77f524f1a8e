"""rv41i: review probes of httpfix41 (an escaped separator in a path, the reason rule shared by the auditor's review,
the ``/ui/`` 400 page) -- each through the real path: TestClient into the real store on both backends, duplicate
flags written by the real recognition hook (labels20's county), the page in headless Chromium through uvicorn.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests import test_httpfix41_edges as hf
from tests import test_httpfix41b_reasons as hfb
from tests import test_insurance_ui as ins
from tests.identity39_calls import engine_and_client
from tests.module_store import module_backend_eng, module_eng  # noqa: F401 -- fixtures (module_backend_eng: one_flag's)
from tests.test_jfix12_replies import two_flags
from tests.test_order35_as_later import _operator
from tests.test_reports_ui import Browser, _free_port
from tests.test_rv40f_probes import _held_message, _owner
from tests.test_ui12_phone import tap

both = engine_and_client("rv41i")
server, browser = ins.server, ins.browser
held = hf.held  # a held owner change on each backend (httpfix41's)
store = hfb.store  # an engine of its own on each backend (httpfix41b's)
_one_flag = hfb._one_flag
# the county's one unreviewed flag once a module and backend, for the tests whose reviews are refused (each checks the
# flag still unreviewed after): they had opened an engine and written the county each (suite44b); a test whose review
# is taken keeps ``store``
one_flag, unreviewed_flag = hfb.one_flag, hfb.unreviewed_flag


@pytest.fixture(scope="module")
def patient(both: tuple[Engine, TestClient]) -> str:
    _, http = both
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "王RVI", "given": ["丽"]}],
                                         "identifier": [{"system": "http://example.org/mrn", "value": "RV41I-1"}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# --- an escaped separator: decoded once, never twice ---------------------------------------------------------------


@pytest.fixture(scope="module")
def served(both: tuple[Engine, TestClient]) -> Iterator[tuple[int, str]]:
    """The module's engine served by uvicorn on a free port (as ``huren serve`` runs it) and a system token: the
    TestClient unquotes a path twice (its scope's ``path`` of ``%252F`` is ``/``), so a double escape is sent as
    raw bytes to the server huren runs under."""
    engine, http = both
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield port, http.headers["Authorization"]
    srv.should_exit = True
    thread.join(timeout=10)


def _raw_get(served: tuple[int, str], path: str) -> tuple[int, dict]:
    port, token = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Authorization", token)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/fhir/Patient/{id}%252F_history%252F1", "/fhir/Patient/{id}%252f_history",
                                  "/fhir/Patient/{id}%255C_history%255C1", "/fhir/Patient%252F{id}",
                                  # an overlong '/' (not UTF-8), a fullwidth and a division slash, an escaped '%'
                                  "/fhir/Patient/{id}%C0%AF_history", "/fhir/Patient/{id}%EF%BC%8F_history",
                                  "/fhir/Patient/{id}%E2%88%95_history", "/fhir/Patient/{id}%25"])
def test_a_double_encoded_separator_is_not_decoded_twice(served: tuple[int, str], patient: str, path: str) -> None:
    """``%252F`` is an escaped ``%`` then ``2F``: one decoding gives the text ``%2F``, which is no separator -- the
    request names a resource whose id holds ``%2F`` (no FHIR id can: 404 or 400), never the vread or history of
    the patient, and never a 500. Sent over a socket to uvicorn, as sent."""
    status, body = _raw_get(served, path.format(id=patient))
    assert status in (400, 404), (status, body)
    assert body["resourceType"] == "OperationOutcome", body


def test_a_single_escape_is_refused_by_the_server_too(served: tuple[int, str], patient: str) -> None:
    """Guard: through uvicorn (not only the TestClient) ``%2F`` in a path is the 400 naming it."""
    status, body = _raw_get(served, f"/fhir/Patient/{patient}%2F_history%2F1")
    assert status == 400 and "an escaped '/'" in body["issue"][0]["diagnostics"], (status, body)


# --- the auditor's review reason ---------------------------------------------------------------------------------


def _csv(http: TestClient, auditor: dict[str, str]) -> bytes:
    r = http.get("/reports/duplicates?_format=csv", headers=auditor)
    assert r.status_code == 200, r.text[:300]
    return r.content


@pytest.mark.parametrize("sent", [["已核实"], {"zh": "已核实"}, True])
def test_a_review_reason_that_is_not_text_is_refused(unreviewed_flag: tuple[Engine, dict[str, str], str],
                                                     sent: object) -> None:
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": sent},
                      headers=auditor)
        kept = store.recognition.flags.get(flag)
        assert r.status_code == 400, (r.status_code, r.text[:300], kept.get("reviews"))
        assert r.json()["issue"][0]["expression"] == ["reason"], r.text[:300]
        assert kept["status"] == "flagged" and not kept.get("reviews"), kept


def test_a_refused_review_leaves_the_flag_the_csv_and_the_audit_log_as_they_were(
        unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:
    """Each refusal (Chinese words said, ``reason`` named): the flag unreviewed, the DetectedIssue preliminary, the
    CSV byte for byte the same, and no audit record saying a review was made or holding the refused reason."""
    refused = ["\u202e实核已", "已核\u200b实", "\u200e\u3000", "\x07属实", "属实\ufeff", "\U000e0041\U000e0042"]
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        before, seen = _csv(http, auditor), store.audit.size
        for reason in refused:
            r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": reason},
                          headers=auditor)
            assert r.status_code == 400, (reason, r.status_code, r.text[:300])
            issue = r.json()["issue"][0]
            assert issue["expression"] == ["reason"] and "(理由" in issue["diagnostics"], issue
        assert _csv(http, auditor) == before
        kept = store.recognition.flags.get(flag)
        assert kept["status"] == "flagged" and not kept.get("reviews"), kept
        assert http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()["status"] == "preliminary"
        events = [store.audit.events(seq, 1)[0] for seq in range(seen, store.audit.size)]
        text = repr(events)
        assert not any(any(c.get("code") == "review" for c in e.get("subtype") or ()) and e.get("outcome") == "0"
                       for e in events), events
        assert not any(reason in text for reason in refused), text[:2000]


# Mongolian in its own script as an IME types it: FVS1-3 (U+180B-D) choosing a letter's form, the narrow no-break
# space U+202F before a case suffix, the vowel separator U+180E before a final -a; Uyghur with the Arabic letter
# mark U+061C beside a bracketed number; an IME's Chinese punctuation
MONGOLIAN = "ᠲᠡᠰᠲ ᠢ\u202fᠶᠢᠨ ᠬᠠᠮᠲᠤ\u180eᠠ ᠭ\u180bᠠ ᠳ\u180cᠠ ᠨ\u180dᠠ\u180eᠠ ᠵᠥᠪ"
UYGHUR = "تەكشۈرۈش تەكرارلانغان \u061c(3)\u061c كۈن ئىچىدە"


@pytest.mark.parametrize("typed", [MONGOLIAN, UYGHUR, "复核：同一项目，三日内重复、无临床理由。"])
def test_a_review_in_mongolian_or_uyghur_is_kept_exactly_as_typed(store: Engine, typed: str) -> None:
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": typed},
                      headers=auditor)
        assert r.status_code == 200, r.text[:400]
        assert store.recognition.flags.get(flag)["reviews"][-1]["reason"] == typed
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        assert [m["action"]["text"] for m in issue["mitigation"] if "date" in m] == [typed], issue
        assert typed in _csv(http, auditor).decode("utf-8")


def test_two_auditors_reviewing_one_flag_at_once_are_both_kept_in_order(store: Engine) -> None:
    """Two auditors send their reviews of one flag at the same moment: both are kept, the flag's status is the
    last review's, the DetectedIssue's mitigations are the reviews in the same order, one audit record each."""
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        seen = store.audit.size
        answers: list[int] = []
        start = threading.Barrier(2)

        def send(decision: str, reason: str) -> None:
            with TestClient(create_app(store)) as own:
                start.wait()
                answers.append(own.post(f"/reports/duplicates/{flag}/review",
                                        json={"decision": decision, "reason": reason}, headers=auditor).status_code)

        threads = [threading.Thread(target=send, args=a) for a in (("upheld", "属实"), ("overturned", "有临床理由"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(answers) == [200, 200], answers
        kept = store.recognition.flags.get(flag)
        assert len(kept["reviews"]) == 2 and kept["status"] == kept["reviews"][-1]["decision"], kept
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        said = [m["action"]["text"] for m in issue["mitigation"] if "date" in m]
        assert said == [r["reason"] for r in kept["reviews"]], (said, kept["reviews"])
        assert issue["status"] == {"upheld": "final", "overturned": "cancelled"}[kept["status"]], issue["status"]
        events = [store.audit.events(seq, 1)[0] for seq in range(seen, store.audit.size)]
        assert sum(any(c.get("code") == "review" for c in e.get("subtype") or ()) for e in events) == 2, events


# --- the /ui/ 400 page, as a person sees it -------------------------------------------------------------------------


@ins.pytestmark
@pytest.mark.parametrize("path", ["/ui/me/%2Fx", "/ui/duplicates?institution=%E9%98"])
def test_the_unreadable_address_page_in_chromium(engine: Engine, server: str, browser: Browser, shots: Path,
                                                 path: str) -> None:
    browser.send("Page.navigate", url=server + path)
    browser.wait_for("document.readyState === 'complete' && !!document.querySelector('h1')")
    assert browser.eval("document.documentElement.lang") == "zh-CN"
    assert browser.eval("document.querySelector('h1').innerText").startswith("无法识别这个地址")
    # its stylesheet is served and applied under the page's CSP: the muted English is grey, the body not white
    assert browser.eval("getComputedStyle(document.body).backgroundColor") == "rgb(244, 246, 248)"
    links = browser.eval("[...document.querySelectorAll('a')].map(a => a.getAttribute('href')).join(' ')")
    assert "/ui/duplicates" in links
    (shots / f"badurl-{abs(hash(path)) % 1000}.png").write_bytes(base64.b64decode(
        browser.send("Page.captureScreenshot", format="png")["data"]))


# --- one rule, one owner: the operator's owner decision against the auditor's review ------------------------------


def test_a_refused_owner_reason_names_the_reason_as_the_review_does(held: tuple[Engine, TestClient]) -> None:
    engine, http = held
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(http, "RV41I-EXPR")
    r = _owner(http, msg, ops, reason="已核\u200b实")
    assert r.status_code == 400 and "理由中含有不可见的格式字符" in r.json()["issue"][0]["diagnostics"], r.text[:300]
    assert r.json()["issue"][0].get("expression") == ["reason"], r.json()


def test_a_joiner_between_an_emoji_and_a_han_character_is_refused(unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned",
                                                                  "reason": "👍\u200d属\ufe0f实"}, headers=auditor)
        assert r.status_code == 400 and "U+200D" in r.json()["issue"][0]["diagnostics"], (r.status_code, r.text[:300])
        assert store.recognition.flags.get(flag)["status"] == "flagged"


@ins.pytestmark
@pytest.mark.parametrize(("typed", "zh"), [("\u3000", "请填写理由"), ("\u3164\u3000", "理由中没有可见的文字")])
def test_the_review_page_says_an_ime_blank_reason_in_chinese(engine: Engine, server: str, browser: Browser,
                                                            typed: str, zh: str) -> None:
    """A Chinese IME's full-width space, or the Hangul filler a Korean IME types (Yanbian), passes the box's
    ``required``: the page says the API's refusal Chinese first, records nothing, and keeps the box as typed."""
    two_flags(engine, server, browser)
    tap(browser, "#flags tbody tr.flag:first-child button.open")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    browser.eval(f"document.querySelector('#review [name=reason]').value = {json.dumps(typed)}; true")
    tap(browser, "#overturn")
    browser.wait_for("document.querySelector('#review-said').innerText.startsWith('复核未记录')")
    said = browser.eval("document.querySelector('#review-said').innerText")
    assert said.startswith(f"复核未记录：{zh}。 The review was not recorded: "), said
    assert browser.eval("document.querySelector('#review [name=reason]').value") == typed
    assert all(f["status"] == "flagged" and not f.get("reviews") for f in engine.recognition.flags.find())


@pytest.mark.parametrize("path", ["/ui/shared/static/%2e%2e/%2e%2e/fhir.py", "/ui/duplicates/static/%2E%2E/me/index.html",
                                  "/ui/me/static/..%252f..%252fapp.py", "/ui/quarantine/static/%2e%2e%5c%2e%2e%5capp.py",
                                  "/ui/me/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"])
def test_an_escaped_dot_segment_reaches_no_file_outside_the_pages(served: tuple[int, str], path: str) -> None:
    """Guard: uvicorn unquotes ``%2e`` into the routed path (as it did ``%2F`` before httpfix41); the pages' file
    mounts must serve no file outside their folders, nor a page's HTML, whatever the dots are escaped as."""
    port, token = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        answer = conn.getresponse()
        status, body = answer.status, answer.read()
    finally:
        conn.close()
    assert status in (400, 404), (status, body[:200])
    assert b"import " not in body and b"root:" not in body and b"{{" not in body, body[:200]
