"""ui36: money said one way on every page, and a ward named on the resident's page as the engine names it.

Money: the auditors' duplicates page said "CNY 20.00" (and a restricted flag's "金额 ¥20.00") while the
insurance page said "2,550.25 元". One formatter, ``static/shared/money.js``, now says every amount: to
the fen on the amount's digits (never a float's rounding: Number(1.005).toFixed(2) is "1.00"), the
thousands grouped, the currency's word from the session's words (``currencies``: CNY -> 元).

Wards: the resident's page preferred a visit's PL-9 name to the site's ward table, and named a code
from the table in JavaScript, while the engine's one owner of a ward's current name is
``engine.wards.ward_name`` (the table first, then the ward's current name as stored, ...). The page now
shows what ``GET /ui/me/wards`` answers for her visits (``engine.api.ui_me_wards``).

Real path: the formatter file itself in node; HL7 v2 over ``POST /hl7v2`` into the real store, read back
with a resident's token (both backends), and the pages in headless Chromium at 1366 and 390 px
(screenshots to ``$HUREN_SCREENSHOTS`` when set)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_reports_ui import Browser, browser, server, sign_in_page
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid
from tests.test_ui12_phone import outside

__all__ = ["browser", "module_eng", "server"]

SHARED = Path(__file__).resolve().parents[1] / "engine" / "api" / "static" / "shared"
ER7 = "x-application/hl7-v2+er7"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

# ---- the formatter ---------------------------------------------------------------------------------------

HARNESS = """
const fs = require("fs"), vm = require("vm");
const ctx = { window: {} }; vm.createContext(ctx);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), ctx);
const M = ctx.window.hurenMoney, cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map(([v, places, cur, word]) =>
  [M.figure(v, places === null ? undefined : places), M.said(v, cur, word)])));
"""


def test_the_money_formatter_rounds_on_the_digits_and_groups() -> None:
    """The page's own file, in node: half away from zero on the digits (as the engine's ROUND_HALF_UP),
    where a float's toFixed would have said 1.00 for 1.005 and 2550.25 for 2550.255; a 17-digit amount
    as sent; no amount is no figure (not 0.00); a currency the words do not name keeps its code."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    cases = [
        (2550.25, None, "CNY", "元"), ("5100.5", None, "CNY", "元"), (1.005, None, "CNY", "元"),
        ("2550.255", None, "CNY", "元"), ("999.995", None, "CNY", "元"), ("-490.00", None, "CNY", "元"),
        ("-0.004", None, "CNY", "元"), ("12345678901234.567", None, "CNY", "元"), (1e21, None, "CNY", "元"),
        (None, None, "CNY", "元"), ("", None, "CNY", "元"), ("20.10", None, "USD", ""), (5100.5, 0, "CNY", "元"),
        (0.125, None, "CNY", "元"),
    ]
    out = subprocess.run([node, "-e", HARNESS, str(SHARED / "money.js"), json.dumps(cases)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == [
        ["2,550.25", "2,550.25 元"], ["5,100.50", "5,100.50 元"], ["1.01", "1.01 元"],
        ["2,550.26", "2,550.26 元"], ["1,000.00", "1,000.00 元"], ["-490.00", "-490.00 元"],
        ["0.00", "0.00 元"], ["12,345,678,901,234.57", "12,345,678,901,234.57 元"],
        ["1,000,000,000,000,000,000,000.00", "1,000,000,000,000,000,000,000.00 元"],
        ["—", "—"], ["—", "—"], ["20.10", "20.10 USD"], ["5,101", "5,100.50 元"], ["0.13", "0.13 元"],
    ]


# ---- the duplicates page ---------------------------------------------------------------------------------

MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d{2} 元$")


def _shots() -> Path | None:
    folder = os.environ.get("HUREN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) if folder else None


def _shot(browser: Browser, name: str, selector: str | None = None) -> None:
    """The page (or the element ``selector`` picks: a phone's page is too long to read as one image)."""
    import base64
    folder = _shots()
    if folder is None:
        return
    box = browser.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                       " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()"
                       ) if selector else {"x": 0, "y": 0, "width": browser.eval("document.documentElement.clientWidth"),
                                           "height": min(browser.eval("document.documentElement.scrollHeight"), 5000)}
    data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**box, "scale": 1})["data"]
    (folder / f"{name}.png").write_bytes(base64.b64decode(data))


@needs_chromium
def test_the_duplicates_page_says_money_as_the_insurance_page_does(engine: Any, server: str, browser: Browser) -> None:
    """The demo month (``make run``'s feeds): the totals, each flag's price, the chart's labels and a
    flag's evidence say "20.00 元" -- each the API's amount to the fen -- and nowhere CNY or ¥, at 1366
    and at 390 px (where the figures stay on the screen)."""
    feeds = Path(__file__).resolve().parent.parent / "examples" / "feeds"
    for path in sorted(feeds.glob("*.hl7")):
        assert b"MSA|AA|" in engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}")
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=900, deviceScaleFactor=1, mobile=False)
    sign_in_page(browser, server, engine)
    # the report the page shows (its filters: the CSV link's query without the format)
    report = browser.eval("(() => { const u = new URL(document.querySelector('#csv').href); u.searchParams.delete('_format');"
                          " return fetch(u, {credentials: 'same-origin'}).then(r => r.json()); })()")
    stake = report["totals"]["money_at_stake"]
    assert stake > 0, report["totals"]
    stats = browser.eval("[...document.querySelectorAll('#summary .stat')].map(s => [s.lastChild.textContent, s.querySelector('b').innerText])")
    said = dict(stats)
    assert said["涉及金额 money at stake"] == f"{stake:,.2f} 元", stats
    # a count and an amount (the count had read "1 · 20.00" beside it): each says what it is
    totals = report["totals"]
    assert totals["by_status"]["self_pay"] == 1, totals
    assert said["自费复查 self-pay"] == f"1 条 · {totals['self_pay_money']:,.2f} 元" == "1 条 · 20.00 元", stats
    prices = browser.eval("[...document.querySelectorAll('#flags tbody tr.flag td.num')].map(td => td.innerText)")
    assert prices and all(MONEY.match(p) for p in prices), prices
    assert sorted(prices) == sorted(f"{r['price']:,.2f} 元" for r in report["rows"]), (prices, report["rows"])
    labels = browser.eval("[...document.querySelectorAll('#chart-money text')].map(t => t.textContent)"
                          ".filter(t => /\\d/.test(t))")
    assert labels and all(MONEY.match(t) for t in labels), labels
    text = browser.eval("document.body.innerText")
    assert "CNY" not in text and "¥" not in text, text
    _shot(browser, "ui36-duplicates-money-desktop")
    browser.eval("document.querySelector('#flags tbody tr.flag button.open').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden && document.querySelector('#ev-facts').innerText.includes('价格')")
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    assert re.search(r"价格 Price\s+\d{1,3}(,\d{3})*\.\d{2} 元（(价格目录 price catalogue|收费明细 billed charge line)）", facts), facts
    assert "CNY" not in facts and "¥" not in facts, facts
    _shot(browser, "ui36-duplicates-evidence-desktop")
    # a phone: the same words, every figure on the screen
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")  # loaded on the phone, as a phone loads it
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'"
                     " && document.querySelectorAll('#flags tbody tr.flag').length > 0")
    labels = browser.eval("[...document.querySelectorAll('#chart-money text')].map(t => t.textContent).filter(t => /\\d/.test(t))")
    assert labels and all(MONEY.match(t) for t in labels), labels  # the chart's rows at phone width
    over = browser.eval("(() => { const s = document.querySelector('#chart-money').getBoundingClientRect();"
                        " return [...document.querySelectorAll('#chart-money text')].map(t => t.getBoundingClientRect())"
                        ".filter(r => r.right > s.right + 0.01 || r.left < s.left - 0.01).map(r => [r.left, r.right, s.right]); })()")
    assert over == [], over  # each label whole inside the chart (an SVG cuts what overflows it)
    cut = browser.eval("[...document.querySelectorAll('#summary .stat b, #flags td.num')].filter(e => {"
                       " const r = e.getBoundingClientRect(); return r.width && (r.left < 0 || r.right > innerWidth + 0.5); })"
                       ".map(e => e.innerText)")
    assert cut == [], cut
    assert "CNY" not in browser.eval("document.body.innerText")
    _shot(browser, "ui36-duplicates-money-phone-summary", "#summary")
    _shot(browser, "ui36-duplicates-money-phone-chart", "#chart-money")
    _shot(browser, "ui36-duplicates-money-phone-flag", "#flags tbody tr.flag")


# ---- the wards of a resident's visits ------------------------------------------------------------------

SHEN = nid("32092319750505006")
OTHER = nid("32092319800808009")
STAMP = "20261120080000"


def _visit(patient: str, control: str, number: str, pl: str, inst: str = "FNXRMYY", when: str = STAMP) -> bytes:
    """An admission (ADT^A01) of visit ``number`` at ``pl`` (PV1-3)."""
    pv1 = ["PV1", "1", "I", pl, "R"] + [""] * 14 + [f"{number}^^^{inst}^VN"] + [""] * 24 + [when]  # PV1-19, PV1-44
    return hl7(msh("HIS", inst, when, "ADT^A01^ADT_A01", control), f"EVN|A01|{when}", patient, "|".join(pv1))


def _messages(mine: str, other: str) -> list[bytes]:
    return [
        # the table (mappings/wards.yaml) names NEI 心内科病区; the feed's PL-9 says 心内科一病区
        _visit(mine, "UI36-1", "UI36-V1", "NEI^301^02^FNXRMYY^^^^^心内科一病区"),
        # a ward no table names, named 血液科病区, later renamed 血液内科病区 by another visit's PL-9
        _visit(mine, "UI36-2", "UI36-V2", "XYK^101^01^FNXRMYY^^^^^血液科病区", when="20261121080000"),
        _visit(mine, "UI36-3", "UI36-V3", "XYK^102^03^FNXRMYY^^^^^血液内科病区", when="20261122080000"),
        # a code nobody names
        _visit(mine, "UI36-4", "UI36-V4", "QQK^7^1^FNXRMYY", when="20261123080000"),
        # another resident's visit: never in her answer
        _visit(other, "UI36-5", "UI36-V5", "FSK^9^9^FNXRMYY^^^^^放射科病区", when="20261124080000"),
    ]


def _people() -> tuple[str, str]:
    return (pid(SHEN, "ZY2026036001", "FNXRMYY", "沈^丽", "19750505", "F", "13700036001"),
            pid(OTHER, "ZY2026036002", "FNXRMYY", "马^强", "19800808", "M", "13700036002"))


@pytest.fixture(scope="module")
def fed(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:
    with TestClient(create_app(module_eng)) as http:
        system = {"Authorization": "Bearer " + module_eng.auth.issue_system_token("his-ui36", "system/*.cruds")}
        for message in _messages(*_people()):
            r = http.post("/hl7v2", content=message, headers={"Content-Type": ER7, **system})
            assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
        yield module_eng, http


def _resident(engine: Engine, http: TestClient, mrn: str) -> dict[str, str]:
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-ui36", "system/*.cruds")}
    [patient] = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": mrn}, headers=system).json()["entry"]]
    token, _ = engine.auth.issue_token(subject="person-" + patient["id"], kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient=patient["id"])
    return {"Authorization": "Bearer " + token}


def _places(http: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """Her visits' numbers -> their place's reference, as /fhir gives them to her."""
    found = http.get("/fhir/Encounter", params={"_count": "50"}, headers=headers).json().get("entry") or []
    return {next(i["value"] for i in e["resource"]["identifier"]): e["resource"]["location"][0]["location"]["reference"]
            for e in found}


def test_her_visits_wards_are_named_as_the_engine_names_a_ward(fed: tuple[Engine, TestClient]) -> None:
    """The table's name over the PL-9 name; a ward the table does not list by its current name (both
    visits, the earlier one too); a code nobody names as its code, the name left to the page's words;
    the room and bed after the ward. Another resident's visit is not in her answer."""
    engine, http = fed
    her = _resident(engine, http, "ZY2026036001")
    places = _places(http, her)
    assert set(places) == {"UI36-V1", "UI36-V2", "UI36-V3", "UI36-V4"}, places
    r = http.get("/ui/me/wards", headers=her)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    wards = r.json()["wards"]
    assert {number: wards[ref] for number, ref in places.items()} == {
        "UI36-V1": {"name": "心内科病区", "code": "NEI", "rest": "301房 02床"},
        "UI36-V2": {"name": "血液内科病区", "code": "XYK", "rest": "101房 01床"},
        "UI36-V3": {"name": "血液内科病区", "code": "XYK", "rest": "102房 03床"},
        "UI36-V4": {"name": "", "code": "QQK", "rest": "7房 1床"},
    }
    assert len(wards) == 4, wards
    # the other resident's own answer holds her ward, and nothing of Shen's
    theirs = http.get("/ui/me/wards", headers=_resident(engine, http, "ZY2026036002")).json()["wards"]
    assert [w["name"] for w in theirs.values()] == ["放射科病区"] and not set(theirs) & set(wards), theirs


def test_the_wards_are_answered_to_a_signed_in_resident_only(fed: tuple[Engine, TestClient]) -> None:
    engine, http = fed
    assert http.get("/ui/me/wards").status_code == 401
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-ui36", "system/*.cruds")}
    refused = http.get("/ui/me/wards", headers=system)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome", refused.text


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    mine, other = _people()
    for site in fed_site(tmp_path_factory.mktemp("ui36"), mine, _messages(mine, other)):
        yield from signed_in_phone(site, tmp_path_factory.mktemp("ui36-shots"), SHEN)


def _visits(phone: Phone) -> list[str]:
    return phone.cdp.eval("(() => { document.querySelector('[data-tab=visits]').click();"
                          " return [...document.querySelectorAll('#visits article.card')].map(a => a.innerText); })()")


@needs_chromium
def test_the_resident_page_shows_the_engines_name_for_a_ward(phone: Phone) -> None:
    """On her 390-px phone: 心内科病区 (the site's name), not the 心内科一病区 the feed sent; both 血液科 visits
    under the ward's name now; QQK said to be the hospital's code, in English too; nothing off the screen."""
    wards = [line for card in _visits(phone) for line in card.split("\n") if line.startswith("科室/病区")]
    assert sorted(wards) == sorted(["科室/病区：心内科病区 301房 02床", "科室/病区：血液内科病区 101房 01床",
                                    "科室/病区：血液内科病区 102房 03床", "科室/病区：QQK（院内代码） 7房 1床"]), wards
    assert outside(phone.cdp, {"width": 390}) == []
    phone.shot("ui36-resident-wards-phone")
    phone.click("#lang")
    try:
        phone.cdp.wait("document.documentElement.lang === 'en'")
        english = "\n".join(_visits(phone))
        assert "QQK" in english and "心内科病区 301房 02床" in english and "心内科一病区" not in english, english
        assert "院内代码" not in english, english
        phone.shot("ui36-resident-wards-phone-en")
    finally:
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'zh-CN'")
    phone.size(1366, 900, mobile=False)
    try:
        assert "科室/病区：心内科病区 301房 02床" in "\n".join(_visits(phone))
        phone.shot("ui36-resident-wards-desktop")
    finally:
        phone.size(390, 844, mobile=True)
