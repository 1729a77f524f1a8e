"""The settlement and indicators page and the auditors' remit in headless Chromium, as people use
them: an auditor of the bureau signs in and reads March's indicators, alerts and the year's
settlement with charts; an operator follows the flags but is offered no review buttons (and the API
refuses a review); an auditor bound to one institution sees only its flags."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.auth.staff import StaffDirectory
from engine.engine import Engine
from engine.settings import Settings
from tests import browser_pool
from tests import test_insurance_indicators as month
from tests import test_reports_ui as ui
from tests.test_insurance_indicators import COUNTY, SECOND
from tests.test_insurance_tiers import REQUIRED_LINE, SHIPPED
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_staff_signin import rfc6238

# the CDP driver's fixtures and its "skip without chromium" mark; the worked March of the indicators
server, browser, pytestmark, march = ui.server, ui.browser, ui.pytestmark, month.march


def small_budget_site(tmp_path: Path) -> Path:
    """``tmp_path/site`` with the shipped settlement rules, the required overspend share set and a
    small budget (employee 1,000, resident 8,000), so March's charges settle: the pages' site."""
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True, exist_ok=True)
    (site / "insurance" / "settlement.yaml").write_text(
        SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, "fund_pays: 0.70").replace("basis: fund_share", "basis: amount")
        .replace('employee: "36000000.00"', 'employee: "1000.00"').replace('resident: "54000000.00"', 'resident: "8000.00"'),
        "utf-8")
    return site


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """The demo site with the required overspend share set and a small budget, so March's charges
    settle."""
    site = small_budget_site(tmp_path)
    with Engine(settings.with_(site=site)) as eng:
        yield eng


def sign_in(browser: Browser, server: str, engine: Engine, page: str, name: str, role: str, remit: str = "",
            institution: str = "YBJ") -> None:
    secret = StaffDirectory(engine.settings.data_dir).add(
        name, role=role, institution=institution, password=AUDITOR_PASSWORD, display=name.split(".")[0],
        roles=engine.staff.roles, remit=remit).secret
    browser.send("Page.enable")
    browser.send("Page.navigate", url=f"{server}{page}")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    browser.eval(f"document.querySelector('#name').value = {json.dumps(name)};"
                 f"document.querySelector('#password').value = {json.dumps(AUDITOR_PASSWORD)};"
                 f"document.querySelector('#code').value = {json.dumps(rfc6238(secret, time.time()))};"
                 "document.querySelector('#signin').submit(); true")
    browser.wait_for(f"location.pathname === {json.dumps(page.split('?')[0])} && document.body.dataset.loaded === '1'")


def screenshot(browser: Browser, path: Path) -> None:
    if not browser_pool.shooting("HUREN_UI_SCREENSHOT_DIR"):  # for a person to look at; none is taken otherwise
        return
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    assert shot.startswith(b"\x89PNG")
    path.write_bytes(shot)


def test_auditor_reads_indicators_alerts_and_settlement(march: TestClient, engine: Engine, server: str,
                                                        browser: Browser, tmp_path: Path) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1600, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    assert browser.eval("document.documentElement.lang") == "zh-CN"
    alerts = browser.eval("document.querySelector('#alerts').innerText")
    assert browser.eval("document.querySelector('#alerts').dataset.count") == "4"
    assert "县域内就诊率低于 90%" in alerts and "告警 ALERT" in alerts and "阜宁县人民医院" in alerts
    rows = browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure, r.cells[2].innerText])")
    shown = dict(rows)
    assert shown["huren-per-admission-cost"] == "2,550.25 元"  # money as read in China (evid35)
    assert shown["huren-county-treatment-rate"] == "66.67%"
    assert shown["huren-duplicate-test-money"] == "20.00 元"
    cells = dict(browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure, [r.cells[3].innerText, r.cells[4].innerText]])"))
    assert cells["huren-duplicate-test-count"] == ["1", "—"]  # a count has no denominator to show
    assert cells["huren-county-treatment-rate"] == ["2", "3"]
    bars = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-per-admission-cost] rect.bar')]"
                        ".map(r => [r.dataset.label, r.dataset.value])")
    assert sorted(bars) == [[COUNTY, "4500.5"], ["FNYLWSY", "600"]]
    assert browser.eval("document.querySelectorAll('svg[data-measure=huren-spending-growth] rect.bar.over').length") == 2
    # the settlement: resident spending 8600.00 (amount basis) against 8000.00, the HL7 lines without a type
    browser.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    settled = browser.eval("document.querySelector('#settlement').innerText")
    assert "funing" in settled and "基层占比" in settled and "8,600.00" in settled
    assert browser.eval("document.querySelectorAll('#settlement svg rect.bar').length") == 6
    assert browser.eval("document.querySelectorAll('#settlement svg rect.bar.over').length") == 1
    screenshot(browser, Path(os.environ.get("HUREN_UI_SCREENSHOT_DIR") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path) / "insurance.png")


def test_operator_sees_flags_without_review_buttons(march: TestClient, engine: Engine, server: str,
                                                    browser: Browser, tmp_path: Path) -> None:
    sign_in(browser, server, engine, "/ui/duplicates", "li.ops", "operator")
    assert browser.eval("document.querySelectorAll('#flags tbody tr').length") == 1
    assert browser.eval("document.querySelector('#review')") is None
    assert browser.eval("document.querySelectorAll('#uphold, #overturn').length") == 0
    assert browser.eval("document.querySelector('#nav-insurance').hidden") is True
    browser.eval("document.querySelector('#flags tbody tr').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    assert "upheld" not in browser.eval("document.querySelector('#evidence').innerText.toLowerCase()")
    # the API refuses a review however it is sent
    flag = browser.eval("document.querySelector('#flags tbody tr').dataset.id")
    status = browser.eval(
        "fetch('/ui/session').then(r => r.json()).then(s => fetch('/reports/duplicates/' + "
        f"{json.dumps(flag)} + '/review', {{method: 'POST', headers: {{'Content-Type': 'application/json', "
        "'X-CSRF-Token': s.csrf}, body: JSON.stringify({decision: 'upheld', reason: 'x'})})).then(r => r.status)")
    assert status == 403
    screenshot(browser, Path(os.environ.get("HUREN_UI_SCREENSHOT_DIR") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path) / "operator.png")
    # and the settlement page tells them it is not for their role
    browser.send("Page.navigate", url=f"{server}/ui/insurance")
    browser.wait_for("document.body.dataset.loaded === '1'")
    assert "may not see" in browser.eval("document.querySelector('#message').innerText")
    assert browser.eval("document.querySelector('#indicators').offsetParent") is None  # not shown


def test_auditor_bound_to_an_institution_sees_only_its_flags(march: TestClient, engine: Engine, server: str,
                                                             browser: Browser) -> None:
    from tests.test_recognition_world import ALICE, A, World, cbc

    w = World(engine)  # a second flag, at the county hospital
    w.report(A, w.patient(A, ALICE, mrn="A-9"), cbc(A), "2026-03-04T09:00:00+08:00")
    everyone = engine.recognition.flags.find({})
    assert {f["inst"] for f in everyone if f["status"] == "flagged"} == {SECOND, COUNTY}
    other = next(f["_id"] for f in everyone if f["inst"] == COUNTY)

    sign_in(browser, server, engine, "/ui/duplicates", "sun.li", "auditor", remit=SECOND)
    assert "监管范围 remit 阜宁县中医院（FNZYY）" in browser.eval("document.querySelector('#who-role').innerText")
    assert browser.eval("[...document.querySelectorAll('#flags tbody tr')].map(r => r.cells[2].innerText)") == [f"阜宁县中医院（{SECOND}）"]
    assert browser.eval("document.querySelector('#summary').dataset.count") == "1"
    # asking for the county's flags by name, or for one by id, finds nothing
    assert browser.eval(f"fetch('/reports/duplicates?institution={COUNTY}').then(r => r.json())"
                        ".then(b => b.rows.length)") == 0
    assert browser.eval(f"fetch('/reports/duplicates/{other}').then(r => r.status)") == 404
    assert browser.eval(f"fetch('/reports/deductions?institution={COUNTY}&month=2026-03').then(r => r.status)") == 404
    # the indicators are its institution's alone
    reporters = browser.eval("fetch('/reports/indicators?month=2026-03').then(r => r.json()).then(b => "
                             "[...new Set(b.entry.filter(e => e.resource.resourceType === 'MeasureReport')"
                             ".map(e => e.resource.reporter.identifier.value))])")
    assert reporters == [SECOND]
    mr = browser.eval("fetch('/fhir/Measure/huren-duplicate-test-count/$evaluate-measure?periodStart=2026-03-01"
                      "&periodEnd=2026-03-31&subject=funing').then(r => r.json())")
    # its part of the community: the one institution
    assert mr["group"][0]["measureScore"]["value"] == 1 and mr["reporter"]["identifier"]["value"] == SECOND
    assert [s["value"]["text"] for s in mr["group"][0]["stratifier"][0]["stratum"]] == [SECOND]
    assert browser.eval(f"fetch('/fhir/Measure/huren-duplicate-test-count/$evaluate-measure?periodStart=2026-03-01"
                        f"&periodEnd=2026-03-31&reporter={COUNTY}').then(r => r.status)") == 400
    assert browser.eval("fetch('/reports/settlement?year=2026&community=funing').then(r => r.status)") == 403


def test_a_remit_must_name_something_in_the_site(engine: Engine, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import cli

    monkeypatch.setenv("HUREN_DATA_DIR", str(engine.settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(engine.settings.site))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(AUDITOR_PASSWORD + "\n"))
    assert cli.main(["staff", "add", "qian.li", "--role", "auditor", "--institution", "YBJ", "--remit", "NOWHERE",
                     "--password-stdin"]) == 2
    assert "no institution, community or pooling region" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(AUDITOR_PASSWORD + "\n"))
    assert cli.main(["staff", "add", "qian.li", "--role", "auditor", "--institution", "YBJ", "--remit", "funing",
                     "--password-stdin"]) == 0
    account = StaffDirectory(engine.settings.data_dir).get("qian.li")
    assert account is not None and account.remit == "funing"


def test_remit_resolves_institution_community_and_pooling_region(engine: Engine) -> None:
    from engine.insurance.remit import institutions_in_remit

    site, folder = engine.site, engine.settings.site
    assert institutions_in_remit("FNZYY", site, folder) == {"FNZYY"}
    everyone = {"FNXRMYY", "FNZYY", "FNYLWSY"}
    assert institutions_in_remit("funing", site, folder) >= everyone  # the community (and region of the same name)
    assert institutions_in_remit("nowhere", site, folder) == frozenset()

