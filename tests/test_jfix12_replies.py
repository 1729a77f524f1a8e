"""Replies that arrive out of order on the auditors' pages, in headless Chromium through the real
server: a reply is held back in the browser's network (the DevTools protocol's request interception)
until the one asked after it has been shown, then let through -- as a slow mobile connection
delivers them. The page shows, and reviews, what was asked last:

- a flag opened (A) and then another (B): A's late reply neither puts A's evidence on the screen nor
  makes A the flag the review is recorded for;
- the month (or the year) changed while the old one's figures are on their way: the old figures do
  not replace the new;
- a role that may not read the indicators' definitions (403 from /fhir/Measure) is told in words
  why no figure is shown as a percentage.
"""

from __future__ import annotations

import json
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests import test_insurance_ui as ins
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import PHONE_414, api_report, sign_in, type_into

server, browser, pytestmark, march = ins.server, ins.browser, ins.pytestmark, ins.march
ROLES = Path(__file__).resolve().parent.parent / "mappings" / "staff" / "roles.yaml"


class Held:
    """Requests whose URL matches ``pattern`` are held in the browser's network until released;
    every other request goes on at once. The browser's ``send`` is wrapped (for the test's length)
    so that no DevTools event is lost while the page is driven."""

    def __init__(self, browser: Browser, pattern: str) -> None:
        self.browser, self.paused = browser, []  # type: list[dict[str, Any]]
        self.plain = browser.send
        browser.send = types.MethodType(Held._send, browser)  # type: ignore[method-assign]
        browser.held = self  # type: ignore[attr-defined]
        browser.send("Fetch.enable", patterns=[{"urlPattern": pattern, "requestStage": "Request"}])

    @staticmethod
    def _send(browser: Browser, method: str, **params: Any) -> dict[str, Any]:
        held: Held = browser.held  # type: ignore[attr-defined]
        browser.n += 1
        browser.ws.send(json.dumps({"id": browser.n, "method": method, "params": params}))
        while True:
            msg = json.loads(browser.ws.recv(timeout=20))
            if msg.get("method") == "Fetch.requestPaused":
                held.paused.append(msg["params"])
            if msg.get("id") == browser.n:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def wait_held(self, part: str, timeout: float = 15) -> None:
        deadline = time.time() + timeout
        while not any(part in p["request"]["url"] for p in self.paused):
            assert time.time() < deadline, f"no request for {part} was held: {[p['request']['url'] for p in self.paused]}"
            self.browser.eval("1")  # reads the events that came meanwhile
            time.sleep(0.05)

    def release(self) -> None:
        for p in self.paused:
            self.browser.send("Fetch.continueRequest", requestId=p["requestId"])
        self.paused.clear()

    def release_landed(self, part: str) -> None:
        """Releases the held requests and waits until the reply for a URL containing ``part`` has been
        received and the page's handlers have had their turn: observed (one more finished
        resource-timing entry for it than before the release), not slept on for a guessed time."""
        seen = (f"performance.getEntriesByType('resource')"
                f".filter(e => e.name.includes({json.dumps(part)}) && e.responseEnd > 0).length")
        before = self.browser.eval(seen)
        self.release()
        self.browser.wait_for(f"{seen} > {before}")
        self.browser.eval("new Promise(r => setTimeout(() => r(true), 50))")

    def close(self) -> None:
        self.release()
        self.browser.send("Fetch.disable")
        self.browser.send = self.plain  # type: ignore[method-assign]


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """The insurance pages' site (a small budget, so March settles) and one more role: a settlement
    clerk who reads the settlement and the indicators but not the published Measures."""
    site = ins.small_budget_site(tmp_path)
    (site / "staff").mkdir()
    (site / "staff" / "roles.yaml").write_text(ROLES.read_text("utf-8") + """
clerk:
  kind: auditor
  label: {zh: 结算员, en: settlement clerk}
  scopes:
    - user/DetectedIssue.rs
    - user/ChargeItem.rs
    - user/Encounter.rs
    - user/MeasureReport.rs
    - user/Flag.rs
""", "utf-8")
    with Engine(settings.with_(site=site)) as eng:
        yield eng


def two_flags(engine: Any, server: str, browser: Browser) -> None:
    """Alice's blood count and liver panel at A on the 1st, both repeated at B (the 3rd, the 4th):
    two flags, on two days; the auditor signed in on a 414 px phone."""
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    w.report(B, pb, lft(B), "2026-03-04T09:00:00+08:00")
    sign_in(browser, server, engine, PHONE_414)


def test_the_review_goes_to_the_flag_opened_last_not_the_slowest_reply(engine: Any, server: str,
                                                                      browser: Browser) -> None:
    two_flags(engine, server, browser)
    rows = {r["item"]: r["id"] for r in api_report(browser)["rows"]}
    assert len(rows) == 2, rows
    first, second = sorted(rows.values())
    held = Held(browser, f"*/reports/duplicates/{first}")
    try:
        browser.eval(f"document.querySelector('#flags tr[data-id=\"{first}\"] button.open').click(); true")
        held.wait_held(first)
        browser.eval(f"document.querySelector('#flags tr[data-id=\"{second}\"] button.open').click(); true")
        browser.wait_for(f"!document.querySelector('#evidence').hidden && document.querySelector('#ev-id').innerText === {json.dumps(second)}")
        held.release_landed(f"/reports/duplicates/{first}")  # the first flag's reply lands after the second's
        assert browser.eval("document.querySelector('#ev-id').innerText") == second
        assert browser.eval("[...document.querySelectorAll('#flags tr.selected')].map(tr => tr.dataset.id)") == [second]
    finally:
        held.close()
    type_into(browser, "#review [name=reason]", "重复检验，无合理理由")
    browser.eval("document.querySelector('#uphold').click(); true")
    browser.wait_for("document.querySelector('#message').className === 'ok'")
    status = {r["id"]: r["status"] for r in api_report(browser)["rows"]}
    assert status == {second: "upheld", first: "flagged"}, status


def test_a_late_reply_for_the_old_month_or_year_does_not_replace_the_new(march: TestClient, engine: Engine,
                                                                         server: str, browser: Browser) -> None:
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-04&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.body.dataset.indicators === '1' && document.body.dataset.settlement === '1'")
    april = {e["resource"]["measure"].split("/")[-1]: e["resource"]["group"][0].get("measureScore")
             for e in march.get("/reports/indicators", params={"month": "2026-04"}).json()["entry"]
             if e["resource"]["resourceType"] == "MeasureReport"}
    held = Held(browser, "*month=2026-03*")
    try:  # March asked (its reply held), then April: March's reply lands last
        browser.eval("{ const f = document.querySelector('#indicators-form'); f.elements.month.value = '2026-03';"
                     "f.requestSubmit(); } true")
        held.wait_held("month=2026-03")
        browser.eval("delete document.body.dataset.indicators; { const f = document.querySelector('#indicators-form');"
                     "f.elements.month.value = '2026-04'; f.requestSubmit(); } true")
        browser.wait_for("document.body.dataset.indicators === '1'")
        held.release_landed("month=2026-03")
    finally:
        held.close()
    assert browser.eval("document.querySelector('#indicators').dataset.month") == "2026-04"
    shown = dict(browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure, r.dataset.value])"))
    assert shown.keys() == april.keys()
    assert {k: float(v) if v else None for k, v in shown.items()} == \
        {k: float(v["value"]) if v else None for k, v in april.items()}, (shown, april)
    assert float(shown["huren-county-treatment-rate"]) == 1.0  # not March's 0.6667

    held = Held(browser, "*year=2025*")
    try:  # 2025 asked (held), then 2026: 2025's reply (a settlement or a refusal) lands last
        browser.eval("{ const f = document.querySelector('#settlement-form'); f.elements.year.value = '2025';"
                     "f.requestSubmit(); } true")
        held.wait_held("year=2025")
        browser.eval("delete document.body.dataset.settlement; { const f = document.querySelector('#settlement-form');"
                     "f.elements.year.value = '2026'; f.requestSubmit(); } true")
        browser.wait_for("document.body.dataset.settlement === '1'")
        held.release_landed("year=2025")
    finally:
        held.close()
    assert browser.eval("document.querySelector('#settlement').dataset.year") == "2026"
    titles = browser.eval("[...document.querySelectorAll('#settlement h3')].map(h => h.innerText)")
    assert titles and all(" · 2026年度 · " in t for t in titles), titles
    assert browser.eval("document.querySelector('#set-message').innerText") == ""


def test_a_role_that_may_not_read_the_definitions_is_told_why_no_percentage(march: TestClient, engine: Engine,
                                                                            server: str, browser: Browser) -> None:
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "li.clerk", "clerk")
    browser.wait_for("document.body.dataset.indicators === '1'")
    assert browser.eval("fetch('/fhir/Measure?_count=100', {credentials: 'same-origin'}).then(r => r.status)") == 403
    note = browser.eval("(() => { const n = document.querySelector('#ind-note'); return n.hidden ? '' : n.innerText; })()")
    assert "不能显示百分比" in note, note
    shown = dict(browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure, r.cells[2].innerText])"))
    assert shown["huren-county-treatment-rate"] == "0.6667", shown  # its number, the note saying why


def test_an_auditor_who_may_read_the_definitions_sees_no_such_note(march: TestClient, engine: Engine,
                                                                  server: str, browser: Browser) -> None:
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.body.dataset.indicators === '1'")
    assert browser.eval("document.querySelector('#ind-note').hidden") is True
    assert browser.eval("document.querySelector('#indicators tr[data-measure=huren-county-treatment-rate]').cells[2].innerText") == "66.67%"


def test_a_session_gone_before_the_page_asks_who_is_signed_in_is_sent_to_sign_in_again(engine: Any, server: str,
                                                                                       browser: Browser) -> None:
    """charts.js's whoami leaves the wording of "sign in again" to words.js: the sign-in page is told
    the session expired and comes back to the page."""
    sign_in(browser, server, engine, PHONE_414)
    browser.eval("fetch('/ui/signout', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type':"
                 " 'application/x-www-form-urlencoded'}, body: 'csrf=' + encodeURIComponent("
                 "document.querySelector('#signout [name=csrf]').value), redirect: 'manual'}).then(() => true)")
    # the page's own script asked again, as it does when it loads (the HTML itself came from the cache)
    browser.eval("window.hurenStaff.whoami('/ui/duplicates'); true")
    browser.wait_for("location.pathname === '/ui/signin'")
    assert browser.eval("location.search") == "?expired=1&next=%2Fui%2Fduplicates"
