"""After the fourteenth round's review, as the staff use the pages (headless Chromium, real server),
each test failing on that round's merge:

- a site words file naming only ``communities:`` (what the shipped file's comment invites) is merged
  over the shipped words; one that fails its check stops start-up with file, line and field; broken
  while running (a half-saved edit) the last good words stay and the reason is logged -- it had made
  ``/ui/session`` answer 500 and every page send its person back to sign in, again and again;
- a page whose ``/ui/session`` fails for any reason but a 401 says so in Chinese and stays;
- a name typed into a filter that matches no community, institution or test is said as such before
  anything is sent (it had been sent as typed: an empty report, or a remit's 403)."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from mappings.sitefiles import SiteError
from tests import test_insurance_ui as ins
from tests.test_jfix12_replies import Held
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import tap, type_into

server, browser, pytestmark = ins.server, ins.browser, ins.pytestmark
PAGE = "/ui/insurance?month=2026-03&year=2026"


def site_with(tmp_path: Path, words: str) -> Path:
    site = ins.small_budget_site(tmp_path)
    (site / "insurance" / "words.yaml").write_text(words, "utf-8")
    return site


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """A site whose words file names only its community, as the shipped file's comment suggests."""
    with Engine(settings.with_(site=site_with(tmp_path, "communities:\n  funing: 阜宁县紧密型医共体\n"))) as eng:
        yield eng


def rewrite(path: Path, text: str) -> None:
    """An edit: new text, and a modification time that differs from the last one read."""
    before = path.stat().st_mtime_ns
    path.write_text(text, "utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def session_words(browser: Browser) -> dict:
    return browser.eval("fetch('/ui/session').then(r => r.json())")


def refused(browser: Browser, field: str, text: str, button: str, message: str) -> str:
    """Type ``text`` into an emptied filter ``field``, tap ``button`` and return ``message``'s text once
    it names what was typed (the page's answer to a name that matches nothing)."""
    browser.eval(f"document.querySelector({json.dumps(field)}).value = ''; true")
    type_into(browser, field, text)
    tap(browser, button)
    browser.wait_for(f"document.querySelector({json.dumps(message)}).innerText.includes({json.dumps(text)})")
    return browser.eval(f"document.querySelector({json.dumps(message)}).innerText")


def test_a_partial_site_words_file_merges_and_a_broken_edit_keeps_the_last_good_words(
        engine: Engine, server: str, browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    ins.sign_in(browser, server, engine, PAGE, "zhao.min", "auditor")  # had looped back to /ui/signin
    names = session_words(browser)
    assert names["communities"] == {"funing": "阜宁县紧密型医共体"}
    assert names["steps"]["budget"] == "年度预算" and names["statuses"]["flagged"] == ["待复核", "open"]  # the shipped
    browser.wait_for("document.body.dataset.settlement === '1'")
    assert browser.eval("document.querySelector('#settlement h3').innerText").startswith("阜宁县统筹区 · 阜宁县紧密型医共体（funing）")

    # a half-saved edit while running: the pages stay up with the last good words, the reason logged
    words = engine.settings.site / "insurance" / "words.yaml"
    caplog.set_level(logging.WARNING, logger="huren.site")
    rewrite(words, "communities:\n  funing: [阜宁县\n")
    browser.send("Page.navigate", url=f"{server}{PAGE}")
    browser.wait_for("location.pathname === '/ui/insurance' && document.body.dataset.loaded === '1'")
    assert session_words(browser)["communities"] == {"funing": "阜宁县紧密型医共体"}
    assert "words.yaml" in caplog.text and "last good" in caplog.text, caplog.text
    rewrite(words, "steps:\n  budget: ''\n")  # fails its check (a word is never empty): the same
    assert session_words(browser)["steps"]["budget"] == "年度预算"
    # the edit finished: shown at the next load
    rewrite(words, "communities:\n  funing: 阜宁医共体\nsteps:\n  budget: 总额预算\n")
    names = session_words(browser)
    assert names["communities"] == {"funing": "阜宁医共体"} and names["steps"]["budget"] == "总额预算"
    # removed while running: the shipped words are in force, and the log says so (it had been silent)
    caplog.clear()
    words.unlink()
    assert session_words(browser)["steps"]["budget"] == "年度预算"
    assert "words.yaml is gone" in caplog.text, caplog.text


def test_a_words_file_that_fails_its_check_stops_start_up_naming_file_line_and_field(settings: Settings,
                                                                                      tmp_path: Path) -> None:
    site = site_with(tmp_path, "communities:\n  funing: 阜宁县医共体\nsteps:\n  budget: [年度, 预算]\n")
    with pytest.raises(SiteError) as err:
        Engine(settings.with_(site=site)).close()
    said = str(err.value)
    assert said.startswith(str(site / "insurance" / "words.yaml") + ":4: steps.budget: "), said


def test_a_session_that_fails_but_not_for_sign_in_is_said_on_the_page(engine: Engine, server: str, browser: Browser) -> None:
    ins.sign_in(browser, server, engine, PAGE, "zhao.min", "auditor")
    held = Held(browser, "*/ui/session")
    try:
        browser.send("Page.navigate", url=f"{server}{PAGE}")
        held.wait_held("/ui/session")
        outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception",
                                                                  "diagnostics": "site words unreadable"}]}
        for p in held.paused:  # the server fails (a 500), the person is still signed in
            browser.send("Fetch.fulfillRequest", requestId=p["requestId"], responseCode=500,
                         responseHeaders=[{"name": "Content-Type", "value": "application/fhir+json"}],
                         body=base64.b64encode(json.dumps(outcome).encode()).decode())
        held.paused.clear()
        browser.wait_for("document.querySelector('#message').innerText.startsWith('服务器出错')")
    finally:
        held.close()
    assert browser.eval("location.pathname") == "/ui/insurance"  # not sent to sign in
    assert "site words unreadable" in browser.eval("document.querySelector('#message').innerText")


COUNT = ("{ const f = window.fetch; window.sent = []; window.fetch = (u, o) => {"
         "if (String(u).startsWith('/reports/')) window.sent.push(String(u)); return f(u, o); }; } true")


def test_a_name_that_matches_nothing_is_said_before_anything_is_sent(engine: Engine, server: str, browser: Browser) -> None:
    ins.sign_in(browser, server, engine, PAGE, "zhao.min", "auditor")
    browser.wait_for("document.body.dataset.settlement === '1'")
    browser.eval(COUNT)
    assert refused(browser, "#settlement-form [name=community]", "阜宁医共体", "#set-apply",
                   "#set-message").startswith("没有名为“阜宁医共体”的医共体")
    browser.wait_for("document.body.dataset.indicators === '1'")
    assert browser.eval("document.querySelectorAll('#indicators tbody tr').length") > 0  # the month's figures
    assert refused(browser, "#indicators-form [name=community]", "阜宁医共体", "#ind-apply",
                   "#message").startswith("没有名为“阜宁医共体”的医共体")
    # and the figures shown before go with it: they had stayed, under a community that does not exist
    assert browser.eval("document.querySelectorAll('#indicators tbody tr').length") == 0
    assert browser.eval("window.sent") == []
    # the community's name, or its code, is taken (and sent as the code)
    browser.eval("document.querySelector('#settlement-form [name=community]').value = ''; true")
    type_into(browser, "#settlement-form [name=community]", "阜宁县紧密型医共体")
    tap(browser, "#set-apply")
    browser.wait_for("document.querySelector('#set-message').innerText === '' && !!document.querySelector('#settlement h3')")
    assert browser.eval("window.sent") == ["/reports/settlement?year=2026&community=funing"]

    # the auditors' page: an institution and a test alike
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
    browser.eval(COUNT)
    assert refused(browser, "#filters [name=institution]", "阜宁县人民医", "#apply",
                   "#message").startswith("没有名为“阜宁县人民医”的机构")
    # a name every object answers to is no code ("constructor" had been sent as one)
    assert refused(browser, "#filters [name=institution]", "constructor", "#apply",
                   "#message").startswith("没有名为“constructor”的机构")
    browser.eval("document.querySelector('#filters [name=institution]').value = ''; true")
    assert refused(browser, "#filters [name=item]", "血常规检查", "#apply",
                   "#message").startswith("没有名为“血常规检查”的检验检查项目")
    assert browser.eval("window.sent") == []
