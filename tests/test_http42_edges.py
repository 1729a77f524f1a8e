"""http42: the HTTP and reason LOWs of the forty-first round, and the same kind found across the route families.

- a kept reason in characters newer than Python 3.11's Unicode 14 -- CJK Extension H and I, rare characters of real
  Chinese names -- is words, read in today's Unicode (``engine.ucd``, unicodedata2): over
  ``POST /admin/quarantine/{id}/owner`` and ``POST /reports/duplicates/{id}/review`` on both backends and from the
  console's ``huren quarantine replay ID --as-owner``; a format character assigned since (U+13439) is refused;
- one reader of a parameter's bytes for a URL's query, the FHIR ``_search`` form and the OAuth form
  (``url_utf8.unreadable_parameter``): a ``%ZZ`` in a form is a 400 naming the parameter, as in the query;
- a browser (``Accept`` weighing ``text/html`` first) at ``/``, ``/login``, ``/admin`` with an address that cannot be
  read, or none that exists, gets the Chinese page as under ``/ui/``; a program and every ``/fhir`` address keep the
  OperationOutcome (Chromium screenshot through ``shots``);
- a report's ``from``/``to`` (and a measure's period) is exactly ``YYYY-MM-DD``: a time or junk after the day is a
  400 naming it, not the whole day under a 200.

HTTP through FastAPI (TestClient) into the real store on both backends; held changes as real HL7 over ``POST
/hl7v2`` (ord40's helpers); duplicate flags written by the real recognition hook (labels20's county).
"""

from __future__ import annotations

import base64
import getpass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.cli import main
from engine.engine import Engine
from engine.message_time import reason_of
from engine.messages import message_id
from engine.settings import Settings
from tests import test_httpfix41_edges as hf
from tests import test_insurance_ui as ins
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_httpfix41b_reasons import _one_flag, module_backend_eng, one_flag, store  # noqa: F401 -- an engine of its own (or the module's) on each backend
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from
from tests.test_ord40_owner_decision import _control
from tests.test_order35_as_later import _operator
from tests.test_reports_ui import Browser
from tests.test_rv40f_probes import _held_message, _owner
from tests.test_srfix35_order_code import B, oru

both = engine_and_client("http42")
held = hf.held  # a held owner change on each backend (httpfix41's)
server, browser, engine = ins.server, ins.browser, ins.engine
__all__ = ["site_env", "store"]

FORM = "application/x-www-form-urlencoded"
CHROMIUM = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

# CJK Unified Ideographs Extension H (Unicode 15.0) and I (15.1): unassigned (Cn) to Python 3.11's Unicode 14
EXT_H = "\U00031350\U00031351"   # 𱍐𱍑
EXT_I = "\U0002ebf0\U0002ee5d"   # 𮯰 and the block's last
NAME_REASON = f"患者姓名为王{EXT_H[0]}，身份证上即此字"  # a reason naming a person by a rare character
# a reason only in such characters: it had been refused as "no visible character" (beside a Han word, as above, the
# rare character read as unassigned and was kept, since the Han word showed -- a guard)
RARE_ONLY = f"{EXT_H} {EXT_I}"


# --- (1) the reason rule in today's Unicode ------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [EXT_H, EXT_I, EXT_H[0], f"{EXT_I[0]} ", NAME_REASON])
def test_a_reason_in_characters_newer_than_unicode_14_is_words(typed: str) -> None:
    assert reason_of(typed) == typed.strip()


def test_a_format_character_assigned_since_unicode_14_is_refused() -> None:
    """U+13439 EGYPTIAN HIEROGLYPH INSERT AT MIDDLE (Unicode 15.0, Cf): invisible, read as unassigned and kept beside
    a word before -- now the invisible-character refusal, naming it."""
    with pytest.raises(ValueError, match=r"invisible character U\+13439 \(at 3\)"):
        reason_of("属实\U00013439")


@pytest.mark.parametrize("typed", [RARE_ONLY, NAME_REASON], ids=["rare-only", "in-words"])
def test_an_owner_change_with_a_reason_in_extension_h_is_taken_as_typed(held: tuple[Engine, TestClient],
                                                                       typed: str) -> None:
    engine, http = held
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(http, f"H42-EXTH-{len(typed)}")
    r = _owner(http, msg, ops, reason=typed)
    assert r.status_code == 200, r.text[:300]
    assert engine.ingestor.messages.get(msg)["decision"]["reason"] == typed


@pytest.mark.parametrize("typed", [RARE_ONLY, f"复核：{EXT_I} 为同一患者的姓名用字"], ids=["rare-only", "in-words"])
def test_an_auditors_review_in_extension_i_is_kept_as_typed(store: Engine, typed: str) -> None:
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": typed},
                      headers=auditor)
        assert r.status_code == 200, r.text[:300]
        assert r.json()["reviews"][-1]["reason"] == typed
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        assert [m["action"]["text"] for m in issue["mitigation"] if "date" in m] == [typed], issue
        csv = http.get("/reports/duplicates", params={"_format": "csv"}, headers=auditor).content.decode("utf-8")
        assert typed in csv, csv[:400]


def test_the_console_takes_an_owner_reason_in_extension_h(site_env: Settings, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``huren quarantine replay ID --as-owner REASON`` from the server's console (ord40's held change, SQLite: the
    CLI opens the store anew each time): a reason of a name's Extension H and I characters is taken and kept (it had
    exited 2, "no visible character")."""
    placer = "H42-CLI"
    change = _from(f"^{OID}^ISO", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), change)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(change))
    capsys.readouterr()
    assert main(["quarantine", "replay", msg, "--as-owner", RARE_ONLY]) == 0, capsys.readouterr()
    assert f"{msg}: AA processed taken as the owner's" in capsys.readouterr().out
    with Engine(site_env) as eng:
        replays = eng.ingestor.messages.get(msg)["replays"]
        assert [(r["by"], r["reason"]) for r in replays] == [(f"cli:{getpass.getuser()}", RARE_ONLY)]


# --- (2) one reader of a parameter's bytes: the query, the _search form, the OAuth form -------------------------------


@pytest.mark.parametrize(("pairs", "named", "said"), [
    ("family=%ZZ", "family", "'%ZZ' is not a percent-escape"),
    ("family=50%", "family", "'%' is not a percent-escape"),
    ("fam%ZZily=x", "fam%ZZily", "(name: '%ZZ' is not a percent-escape"),
    ("family=M%FCller", "family", "its escapes hold 0xFC, which is not UTF-8"),
    ("_count=1&given=%E7%8E", "given", "its escapes hold 0xE7"),
    ("_format=%ZZ", "_format", "'%ZZ' is not a percent-escape"),
])
def test_an_unreadable_form_parameter_is_refused_as_the_query_refuses_it(both: tuple[Engine, TestClient], pairs: str,
                                                                        named: str, said: str) -> None:
    """The same pairs in the query and in a ``POST _search`` form: each a 400 OperationOutcome naming the parameter
    as sent, the same words but for where they were (the form's ``%ZZ`` had been searched for as three characters,
    a Bundle under a 200; its ``_format=%ZZ`` a 406)."""
    _, http = both
    answers = [http.get(f"/fhir/Patient?{pairs}"),
               http.post("/fhir/Patient/_search", content=pairs.encode("ascii"), headers={"Content-Type": FORM})]
    issues = []
    for r in answers:
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/fhir+json"), r.headers
        (issue,) = r.json()["issue"]
        assert issue["expression"] == [named] and said in issue["diagnostics"], issue
        issues.append(issue["diagnostics"])
    assert issues[0].replace("the query parameter", "the _search form parameter") == issues[1], issues


@pytest.mark.parametrize("body", [b"family=\xff\xfe", "family=M\u00fcller".encode("latin-1")])
def test_a_raw_byte_not_utf8_in_a_form_names_its_parameter(both: tuple[Engine, TestClient], body: bytes) -> None:
    _, http = both
    r = http.post("/fhir/Patient/_search", content=body, headers={"Content-Type": FORM})
    assert r.status_code == 400, r.text[:300]
    (issue,) = r.json()["issue"]
    assert issue["expression"] == ["family"] and "is not UTF-8" in issue["diagnostics"], issue


def test_a_form_of_utf8_raw_or_escaped_finds_the_patient(both: tuple[Engine, TestClient]) -> None:
    """Guard: a form's raw UTF-8 is read as the WHATWG urlencoded parser reads it (the query's is refused: Starlette
    reads it as Latin-1), its escapes as UTF-8 -- both find the patient named in an Extension H character."""
    _, http = both
    family = f"王{EXT_H[0]}-H42"
    made = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": family}]})
    assert made.status_code == 201, made.text
    for body in (f"family={family}".encode(), b"family=" + "".join(f"%{b:02X}" for b in family.encode()).encode()):
        r = http.post("/fhir/Patient/_search", content=body, headers={"Content-Type": FORM})
        assert [e["resource"]["id"] for e in r.json().get("entry") or ()] == [made.json()["id"]], (body, r.text[:300])


@pytest.mark.parametrize("body", [b"grant_type=client_credentials&client_id=%FC&client_secret=x",
                                  b"grant_type=client_credentials&client_id=a&client_secret=%ZZ",
                                  b"grant_type=client_credentials&client_id=\xe9&client_secret=x"])
def test_an_unreadable_oauth_form_parameter_is_invalid_request_naming_it(both: tuple[Engine, TestClient],
                                                                        body: bytes) -> None:
    """RFC 6749 5.2: a malformed request is ``invalid_request`` (400); it had been read as U+FFFD and answered
    ``invalid_client`` 401, "wrong credentials", for what was never read."""
    engine, _ = both
    with TestClient(create_app(engine)) as anon:
        for path in ("/auth/token", "/auth/introspect", "/auth/revoke"):
            r = anon.post(path, content=body, headers={"Content-Type": FORM})
            assert r.status_code == 400, (path, r.status_code, r.text[:300])
            said = r.json()
            assert said["error"] == "invalid_request", said
            assert "the form parameter 'client_" in said["error_description"], said
            assert "cannot be read as UTF-8 text" in said["error_description"], said


def test_a_readable_oauth_form_of_an_unknown_client_is_still_invalid_client(both: tuple[Engine, TestClient]) -> None:
    engine, _ = both
    with TestClient(create_app(engine)) as anon:
        r = anon.post("/auth/token", content=b"grant_type=client_credentials&client_id=%C3%A9&client_secret=x",
                      headers={"Content-Type": FORM})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text[:300]


# --- the reports' days --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("from", "2026-01-01T20:00:00+08:00"), ("to", "2026-01-01junk"),
                                             ("from", "20260101"), ("to", "2026-W01-1"),
                                             ("from", "\uff12\uff10\uff12\uff16-01-01")])
def test_a_report_day_that_is_not_exactly_a_day_is_refused_naming_it(one_flag: tuple[Engine, dict[str, str], str],  # noqa: F811 -- the fixture
                                                                     name: str, value: str) -> None:
    """``/reports/duplicates?from=2026-01-01T20:00:00+08:00`` had been answered as the whole day 2026-01-01 under a
    200 (the first ten characters read); ``20260101`` and an ISO week were taken by ``date.fromisoformat``."""
    store, auditor, _ = one_flag
    with TestClient(create_app(store)) as http:
        r = http.get("/reports/duplicates", params={name: value}, headers=auditor)
        assert r.status_code == 400, (r.status_code, r.text[:300])
        (issue,) = r.json()["issue"]
        assert issue["expression"] == [name] and "not a date (YYYY-MM-DD)" in issue["diagnostics"], issue
        day = http.get("/reports/duplicates", params={name: "2026-03-03"}, headers=auditor)
        assert day.status_code == 200 and day.json()["filter"][name] == "2026-03-03", day.text[:300]


def test_a_measure_period_that_is_not_a_day_is_refused(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    r = http.get("/fhir/Measure/huren-duplicate-test-count/$evaluate-measure",
                 params={"periodStart": "2026-03-01T00:00:00+08:00", "periodEnd": "2026-03-31"})
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["periodStart"], r.text[:300]


# --- (3) a browser outside /ui/ reads the Chinese page -----------------------------------------------------------


PAGE_PATHS = ["/?x=%FC", "/login?next=%FC", "/admin?x=%E9%98", "/admin/held?facility=%ZZ", "/login%2Fx",
              "/auth/authorize?client_id=%FC"]


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_a_browser_at_an_unreadable_address_outside_ui_gets_the_chinese_page(both: tuple[Engine, TestClient],
                                                                             path: str) -> None:
    engine, _ = both
    with TestClient(create_app(engine)) as anon:
        r = anon.get(path, headers={"Accept": CHROMIUM})
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), (r.headers, r.text[:200])
        assert '<html lang="zh-CN">' in r.text and "无法识别这个地址" in r.text and 'href="/ui/duplicates"' in r.text
        assert r.headers["cache-control"] == "no-store" and r.headers["vary"] == "Accept"
        assert "script-src 'none'" in r.headers["content-security-policy"]
        for accept in ("application/json", "application/fhir+json", "*/*", None, "application/json, text/html;q=0.5"):
            r = anon.get(path, headers={"Accept": accept} if accept else {})
            assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (accept, r.text[:200])


@pytest.mark.parametrize("path", ["/", "/login", "/admin", "/signin", "/auth"])
def test_a_browser_at_an_address_that_is_no_page_gets_the_chinese_not_found_page(both: tuple[Engine, TestClient],
                                                                                 path: str) -> None:
    engine, _ = both
    with TestClient(create_app(engine)) as anon:
        r = anon.get(path, headers={"Accept": CHROMIUM})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (r.headers, r.text[:200])
        assert "找不到这个页面" in r.text and 'href="/ui/duplicates"' in r.text, r.text[:300]
        assert r.headers["vary"] == "Accept"
        r = anon.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", r.text[:200]
        assert r.headers["vary"] == "Accept"


@pytest.mark.parametrize("path", ["/fhir/Patient?family=%FC", "/fhir/Patient/%FC", "/fhir/NoSuchType",
                                  "/fhir/metadata?x=%ZZ"])
def test_the_fhir_api_answers_a_browser_its_outcome(both: tuple[Engine, TestClient], path: str) -> None:
    """Guard: ``/fhir`` answers FHIR's OperationOutcome whatever it is asked with."""
    engine, _ = both
    with TestClient(create_app(engine)) as anon:
        r = anon.get(path, headers={"Accept": CHROMIUM})
    assert r.status_code in (400, 401, 404) and r.json()["resourceType"] == "OperationOutcome", (r.status_code,
                                                                                               r.text[:200])


@ins.pytestmark
@pytest.mark.parametrize("path", ["/login?next=%FC", "/admin", "/"])
def test_the_pages_outside_ui_in_chromium(engine: Engine, server: str, browser: Browser, shots: Path,
                                          path: str) -> None:
    """As a person sees them in headless Chromium: Chinese first (zh-CN), the way back to every page, the
    stylesheet applied under the page's CSP -- no JSON on the screen."""
    browser.send("Page.navigate", url=server + path)
    browser.wait_for("document.readyState === 'complete' && !!document.querySelector('h1')")
    assert browser.eval("document.documentElement.lang") == "zh-CN"
    h1 = browser.eval("document.querySelector('h1').innerText")
    assert h1.split("\n")[0] in ("找不到这个页面", "无法识别这个地址"), h1
    assert "OperationOutcome" not in browser.eval("document.body.innerText")
    assert browser.eval("getComputedStyle(document.body).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert browser.eval("document.querySelectorAll('main a').length") >= 5
    name = path.strip("/").replace("/", "_").replace("?", "_").replace("%", "").replace("=", "") or "root"
    (shots / f"http42-{name}.png").write_bytes(base64.b64decode(
        browser.send("Page.captureScreenshot", format="png")["data"]))


# --- found by http42, mended by http43 (conformance: R4's string rule; tests/test_http43_hygiene.py) -----------------


@pytest.mark.parametrize("family", ["a\u0000b", "\u001b[2J王"], ids=["nul", "esc"])
def test_a_control_character_in_a_fhir_string_is_refused(both: tuple[Engine, TestClient], family: str) -> None:
    _, http = both
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": family}]})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.text[:300])


# --- (4) a CDS hook's draft orders ----------------------------------------------------------------------------------


def _hook(hook: str, entries: list[object]) -> dict[str, object]:
    context: dict[str, object] = {"userId": "Practitioner/1", "patientId": "p-h42",
                                  "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries}}
    if hook == "order-select":
        context["selections"] = ["ServiceRequest/d1"]
    return {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": hook, "context": context}


@pytest.mark.parametrize(("service", "hook"), [("huren-recognition-select", "order-select"),
                                               ("huren-recognition-sign", "order-sign")])
@pytest.mark.parametrize(("entries", "at"), [([None], 0), ([{"resource": {"resourceType": "ServiceRequest"}}, 1], 1),
                                             (["ServiceRequest/d1"], 0), ([{"resource": []}], 0), ([{}], 0)],
                         ids=["null", "number", "string", "list-resource", "no-resource"])
def test_a_draft_order_entry_that_is_no_entry_is_refused_naming_it(both: tuple[Engine, TestClient], service: str,
                                                                   hook: str, entries: list[object], at: int) -> None:
    """CDS Hooks: ``context.draftOrders`` is a Bundle of the orders being placed. An entry huren cannot read had been
    passed over -- ``{"cards": []}`` under a 200, the EHR's all-clear for an order never checked."""
    _, http = both
    r = http.post(f"/cds-services/{service}", json=_hook(hook, entries))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    (issue,) = r.json()["issue"]
    assert issue["expression"] == [f"context.draftOrders.entry[{at}]"], issue


def test_a_draft_order_of_another_kind_is_still_not_checked(both: tuple[Engine, TestClient]) -> None:
    """Guard: a MedicationRequest among the drafts is a draft order huren does not check -- no card, a 200."""
    _, http = both
    drug = {"resource": {"resourceType": "MedicationRequest", "id": "m1", "status": "draft", "intent": "order",
                         "subject": {"reference": "Patient/p-h42"}}}
    r = http.post("/cds-services/huren-recognition-sign", json=_hook("order-sign", [drug]))
    assert r.status_code == 200 and r.json() == {"cards": []}, r.text[:300]


# --- the reports' months: one rule (engine.periods) ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "name", "value"), [
    ("/reports/indicators", "month", "2026-1"), ("/reports/indicators", "month", "2026- 1"),
    ("/reports/indicators", "month", "2026-01\n"),
    ("/reports/deductions", "month", "2026-01\n"),
    ("/reports/referrals", "from", "2026-01\n"), ("/reports/remote-reading", "to", "\uff12\uff10\uff12\uff16-01"),
])
def test_a_report_month_that_is_not_exactly_a_month_is_refused_naming_it(one_flag: tuple[Engine, dict[str, str], str],  # noqa: F811 -- the fixture
                                                                         path: str, name: str, value: str) -> None:
    """Four copies of "a month YYYY-MM" had read differently: the indicators took ``2026-1`` (``int`` of each
    part), the deduction list's and referral reports' ``$`` matched before a final line break (the deduction list's id
    is a hash of the month as sent: another signed list for the same month), the referral's ``\\d`` any digits."""
    store = one_flag[0]  # (a county's store: the refusal and the month's 200 alike over what it holds)
    auditor = {"Authorization": "Bearer " + store.auth.issue_system_token("auditor-h42", "system/*.rs", kind="auditor")}
    also = {"institution": "FNXRMYY"} if path.endswith("deductions") else {}
    with TestClient(create_app(store)) as http:
        r = http.get(path, params={**also, name: value}, headers=auditor)
        assert r.status_code == 400, (r.status_code, r.text[:300])
        (issue,) = r.json()["issue"]
        assert issue["expression"] == [name] and "must be a month YYYY-MM" in issue["diagnostics"], issue
        month = http.get(path, params={**also, name: "2026-03"}, headers=auditor)
        assert month.status_code == 200, month.text[:300]
