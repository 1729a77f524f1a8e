"""The staff pages as a Chinese-speaking auditor uses them, in headless Chromium through the real
server (fourteenth round), each test failing on the round's start:

- a list asked on a slow connection says it is on its way; the filters take an institution's or a
  test's name (offered as choices), not only its code; a review is sent once: a second tap
  while the first is on its way records nothing more, the buttons say they are busy, and what became of it is said beside them (on a phone the page's
  message line is screens above); the evidence names results and the reviewer in words, the
  references kept in small type;
- one owner for the code names on the staff pages: ``/ui/session`` gives the settlement's steps,
  insurance types, communities, statuses and the Measures' titles, from
  ``mappings/insurance/words.yaml`` (a site's own file wins), and the scripts hold none;
- a year with no budget is said as such (it read "record not found, maybe outside your remit"),
  and an empty chart says it is empty instead of being a blank box; a month of days on a desktop
  chart is labelled without overlapping;
- an auditor bound to one institution reads her figures as that institution's (by name) and is told
  her remit, not her role, keeps the community's settlement from her (it read "your role may not
  (name a medical community (community=) wholly within your remit)");
- signing out from a page opened before signing in again (another tab) is said in words, with the
  sign-out offered again (it had answered raw JSON in English)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests import test_insurance_ui as ins
from tests.test_jfix12_replies import Held, two_flags
from tests.test_recognition_world import A, B, World, cbc
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_staff_signin import rfc6238
from tests.test_ufix12_flag_paging import person
from tests.test_ui12_phone import DESKTOP, PHONE_360, sign_in, tap, type_into

server, browser, pytestmark, march = ins.server, ins.browser, ins.pytestmark, ins.march
STATIC = Path(__file__).resolve().parent.parent / "engine" / "api" / "static" / "duplicates"
WORDS = Path(__file__).resolve().parent.parent / "mappings" / "insurance" / "words.yaml"


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """The insurance pages' site (a small budget, so March settles) with its own words file: the
    community named, one step reworded."""
    site = ins.small_budget_site(tmp_path)
    (site / "insurance" / "words.yaml").write_text(
        WORDS.read_text("utf-8").replace("funing: 阜宁县医共体", "funing: 阜宁县紧密型医共体").replace("budget: 年度预算", "budget: 本年度总额预算"),
        "utf-8")
    with Engine(settings.with_(site=site)) as eng:
        yield eng


def test_a_review_is_sent_once_and_said_beside_its_buttons(engine: Engine, server: str, browser: Browser) -> None:
    two_flags(engine, server, browser)  # a 414 px phone
    held = Held(browser, "*/reports/duplicates?*")
    try:  # a list asked on a slow connection: the page says it is on its way
        tap(browser, "#apply")
        held.wait_held("/reports/duplicates?")
        assert browser.eval("document.querySelector('#message').innerText") == "正在查询…… Loading…"
        held.release_landed("/reports/duplicates?")
    finally:
        held.close()
    browser.wait_for("document.querySelector('#message').innerText === ''")
    tap(browser, "#flags tbody tr.flag:first-child button.open")  # the liver panel of the 4th: its analytes in words
    browser.wait_for("document.querySelector('#ev-facts').innerText.includes('丙氨酸氨基转移酶（ALT）、')")
    tap(browser, "#ev-close")
    # the filters take what a person knows: the institution's and the test's names (the codes are sent)
    assert browser.eval("[...document.querySelectorAll('#choices-places option')].map(o => o.label)").count("阜宁县中医院") == 1
    type_into(browser, "#filters [name=institution]", "阜宁县中医院")
    type_into(browser, "#filters [name=item]", "血常规")
    tap(browser, "#apply")
    browser.wait_for("document.querySelector('#flags-count').dataset.count === '1'")
    assert "institution=FNZYY&item=CBC" in browser.eval("document.querySelector('#csv').href")
    tap(browser, "#flags tbody tr.flag:last-child button.open")  # the blood count of the 3rd
    browser.wait_for("!document.querySelector('#evidence').hidden")
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    # results are named by their test and kind; the reference stays for tracing, folded under 溯源 (uifix35)
    assert re.search(r"2026年3月1日 — 血常规 · 检验检查报告\s*溯源 Trace", facts), facts
    assert browser.eval("[...document.querySelectorAll('#ev-facts dd details.trace small.ref')]"
                        ".filter(s => /^DiagnosticReport\\/\\S+$/.test(s.textContent)).length") == 2, facts
    assert browser.eval("[...document.querySelectorAll('#ev-facts dd')].filter(d => /^DiagnosticReport\\//.test(d.innerText)).length") == 0
    type_into(browser, "#review [name=reason]", "无复查理由")
    # count the page's review requests (the real fetch still sends them)
    browser.eval("{ const f = window.fetch; window.reviewsSent = 0; window.fetch = (u, o) => {"
                 "if (String(u).endsWith('/review')) window.reviewsSent += 1; return f(u, o); }; } true")
    held = Held(browser, "*/review")
    try:
        tap(browser, "#uphold")
        held.wait_held("/review")
        assert browser.eval("[document.querySelector('#uphold').disabled, document.querySelector('#overturn').disabled]") == [True, True]
        assert browser.eval("document.querySelector('#review-said').innerText").startswith("正在提交复核")
        tap(browser, "#uphold")  # the person taps again: nothing more is sent
        assert browser.eval("window.reviewsSent") == 1
        held.release_landed("/review")
    finally:
        held.close()
    browser.wait_for("document.querySelector('#review-said').className === 'ok'")
    assert browser.eval("document.querySelector('#review-said').innerText").startswith("已记录复核：已维持（不予支付） — 王丽")
    assert browser.eval("document.querySelector('#uphold').disabled") is False
    # where the person is: the outcome on the screen, the keyboard still on the button they pressed
    assert browser.eval("(() => { const r = document.querySelector('#review-said').getBoundingClientRect();"
                        "return r.top >= 0 && r.bottom <= innerHeight + 1; })()") is True  # +1: a sub-pixel line box (896.19 of 896)
    assert browser.eval("document.activeElement.id") == "uphold"
    assert browser.eval("window.reviewsSent") == 1
    flag = next(f for f in engine.recognition.flags.find() if f["status"] == "upheld")
    assert len(flag["reviews"]) == 1, flag["reviews"]
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    assert "王丽（审核员）" in facts and "staff:" not in facts, facts  # the API keeps "staff:wang.li 王丽 (auditor)"


def test_code_names_come_from_the_session_and_a_year_without_budget_says_so(march: TestClient, engine: Engine, server: str,
                                                                            browser: Browser) -> None:
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    names = browser.eval("fetch('/ui/session').then(r => r.json())")
    assert names["steps"]["budget"] == "本年度总额预算" and names["communities"] == {"funing": "阜宁县紧密型医共体"}
    assert names["insurance_types"]["resident"] == "居民" and names["statuses"]["flagged"] == ["待复核", "open"]
    assert names["measures"]["urn:huren:Measure/huren-per-admission-cost"].startswith("住院次均费用")
    assert names["roles"]["auditor"] == "审核员"
    # the page says what the site's file says: its community by name, its step in its words
    steps = dict(browser.eval("[...document.querySelectorAll('#settlement table.steps tr')].map(r => [r.dataset.step, r.cells[0].innerText])"))
    assert steps["budget"].startswith("本年度总额预算") and steps["overspend-tier"].startswith("超支 10% 以上部分：基金分担 0%")
    assert browser.eval("document.querySelector('#settlement h3').innerText").startswith("阜宁县统筹区 · 阜宁县紧密型医共体（funing）")
    assert "阜宁县紧密型医共体（funing）" in browser.eval("document.querySelector('#indicators tbody tr').cells[1].innerText")
    # and the scripts hold no code names of their own
    code = "".join((STATIC / f).read_text("utf-8") for f in ("app.js", "insurance.js", "words.js", "charts.js"))
    for words in ("年度预算", "医共体自担", "职工", "待复核", "已出报告", "住院次均费用", "可由基金支付"):
        assert words not in code, words

    # a year with no settlement rules: said as such, not as a record gone from the remit
    browser.eval("{ const f = document.querySelector('#settlement-form'); f.elements.year.value = '2024'; } true")
    tap(browser, "#set-apply")
    browser.wait_for("document.querySelector('#set-message').innerText.startsWith('2024年')")
    said = browser.eval("document.querySelector('#set-message').innerText")
    assert said.startswith("2024年没有结算规则（预算），无法结算") and "找不到这条记录" not in said, said
    # a month without figures: every chart says it has none
    browser.eval("{ const f = document.querySelector('#indicators-form'); f.elements.month.value = '2024-01'; } true")
    tap(browser, "#ind-apply")
    browser.wait_for("document.querySelector('#indicators').dataset.month === '2024-01'")
    browser.send("Page.navigate", url=f"{server}/ui/duplicates?")
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
    browser.eval("{ const f = document.querySelector('#filters'); f.elements.from.value = '2024-01-01';"
                 "f.elements.to.value = '2024-01-31'; } true")
    tap(browser, "#apply")
    browser.wait_for("document.querySelector('#flags-count').dataset.count === '0'")
    empty = browser.eval("[...document.querySelectorAll('svg#chart-time text.empty, svg#chart-money text.empty')].map(t => t.textContent)")
    assert empty == ["所选范围内没有数据 No data in this range"] * 2, empty


OVERLAPS = """(() => {
  const boxes = [...document.querySelectorAll('#chart-time text')].map(t => [t.textContent, t.getBoundingClientRect()]);
  const out = [];
  boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {
    if (r.left < s.right - 0.5 && s.left < r.right - 0.5 && r.top < s.bottom - 0.5 && s.top < r.bottom - 0.5) out.push(a + ' / ' + b);
  }));
  return out;
})()"""


def test_a_month_of_days_on_a_desktop_chart_is_readable(engine: Engine, server: str, browser: Browser) -> None:
    """Twenty days of flags: the wide chart's labels had been written on top of each other."""
    w = World(engine)
    for i in range(20):
        w.report(A, w.patient(A, person(i), mrn=f"A-{i}"), cbc(A), f"2026-03-{i + 1:02d}T09:00:00+08:00")
        w.report(B, w.patient(B, person(i), mrn=f"B-{i}"), cbc(B), f"2026-03-{i + 1:02d}T15:00:00+08:00")
    sign_in(browser, server, engine, DESKTOP)
    assert browser.eval("document.querySelectorAll('#chart-time rect.bar').length") == 20
    assert browser.eval(OVERLAPS) == []
    said = browser.eval("[...document.querySelectorAll('#chart-time text')].map(t => t.textContent)")
    ticks = [t for t in said if "月" in t]
    assert ticks[0] == "3月1日" and 2 <= len(ticks) < 20, ticks  # every k-th day, the first among them
    assert [t for t in said if "月" not in t] == ["1 条"] * 20  # and every day's count


def test_signing_out_from_a_page_opened_before_signing_in_again_is_said_in_words(engine: Engine, server: str,
                                                                                   browser: Browser) -> None:
    """The page's sign-out carries its session's token; after signing out and in again in another tab
    (the same browser's cookies) the old page's token is stale. The person had been shown raw JSON."""
    secret = sign_in(browser, server, engine, PHONE_360)
    # the other tab: signed out, then in again (the next 30 s step's code: each code is taken once)
    browser.eval("fetch('/ui/session').then(r => r.json()).then(s => fetch('/ui/signout', {method: 'POST',"
                 "body: new URLSearchParams({csrf: s.csrf})})).then(() => true)")
    form = browser.eval("fetch('/ui/signin').then(r => r.text())")
    fields = {"csrf": re.search(r'name="csrf" value="([^"]+)"', form).group(1), "name": "wang.li",  # type: ignore[union-attr]
              "password": AUDITOR_PASSWORD, "code": rfc6238(secret, time.time() + 30), "next": "/ui/duplicates"}
    assert browser.eval(f"fetch('/ui/signin', {{method: 'POST', body: new URLSearchParams({json.dumps(fields)})}})"
                        ".then(r => fetch('/ui/session')).then(r => r.status)") == 200
    tap(browser, "#signout-button")  # on the page opened before
    browser.wait_for("location.pathname === '/ui/signout' && !!document.querySelector('#signout-stale')")
    said = browser.eval("document.body.innerText")
    assert said.startswith("还没有退出登录") and "为安全起见，本次退出没有执行" in said and "{" not in said, said
    assert browser.eval("fetch('/ui/session').then(r => r.status)") == 200  # nothing was done
    tap(browser, "#signout-button")  # the button on that page signs out
    browser.wait_for("location.pathname === '/ui/signin' && !!document.querySelector('#signin-notice')")
    assert browser.eval("document.querySelector('#signin-notice').innerText").startswith("您已退出登录")
    assert browser.eval("fetch('/ui/session').then(r => r.status)") == 401


def test_an_auditor_bound_to_one_institution_reads_its_name_and_why_there_is_no_settlement(
        march: TestClient, engine: Engine, server: str, browser: Browser) -> None:
    """Her figures are for her institution, not a community; her settlement is refused by her remit."""
    browser.send("Emulation.setDeviceMetricsOverride", **PHONE_360)
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "li.bound", "auditor", remit="FNZYY")
    browser.wait_for("document.querySelector('#set-message').innerText.startsWith('结算按医共体进行')")
    fors = set(browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => r.cells[1].innerText)"))
    assert fors == {"阜宁县中医院（FNZYY）"}, fors
    said = browser.eval("document.querySelector('#set-message').innerText")
    assert "您的监管范围（阜宁县中医院（FNZYY））不包含一个完整的医共体" in said and "remit)" not in said, said
