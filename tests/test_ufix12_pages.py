"""The auditors' pages giving the API's figures and no others, in headless Chromium through the real
server: "show more" tapped twice, or tapped while a newly filtered list is on its way, lists each
flag once and only the filtered ones; a result dated to the day (or month) is shown at that
precision, not with an invented 08:00; a ratio measure is shown as a ratio, a proportion as a
percentage, as the published Measure's scoring says.

The network is slowed (600 ms a request) so that a second tap lands while the first page is on its
way, as on a phone's mobile connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests import test_insurance_ui as ins
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft
from tests.test_reports_ui import Browser
from tests.test_resident_ui import _free_port, serving
from tests.test_ufix12_flag_paging import person
from tests.test_ui12_phone import PHONE_360, PHONE_414, api_report, sign_in, tap

server, browser, pytestmark, march = ins.server, ins.browser, ins.pytestmark, ins.march

LISTED = "[...document.querySelectorAll('#flags tbody tr.flag')].map(tr => tr.dataset.id)"


def slow(browser: Browser, ms: int) -> None:
    browser.send("Network.enable")
    browser.send("Network.emulateNetworkConditions", offline=False, latency=ms, downloadThroughput=-1,
                 uploadThroughput=-1)


# The page's requests counted from now on: asked, and answered one task after the page has read a reply's body --
# by then its own continuation (``W.api``'s ``await res.text()``, then what the caller does with the reply: a chain
# of promise reactions, all run before the next task) has run; a request that fails counts as answered too.
COUNTED = """(() => {
  const real = window.fetch;
  window.__asked = 0; window.__answered = 0; window.__quietSince = performance.now();
  const answered = () => setTimeout(() => { window.__answered += 1; window.__quietSince = performance.now(); }, 0);
  window.fetch = (...args) => {
    window.__asked += 1; window.__quietSince = performance.now();
    return real(...args).then((r) => { const text = r.text.bind(r); r.text = () => text().finally(answered); return r; },
                              (e) => { answered(); throw e; });
  };
  return true;
})()"""


def replies_counted(browser: Browser) -> None:
    """Count the page's requests (``COUNTED``) from here on, for ``settled``: call before the taps."""
    assert browser.eval(COUNTED) is True


def settled(browser: Browser, expected: int) -> list[str]:
    """The listed flag ids once ``expected`` rows are there and every reply the page asked for since
    ``replies_counted`` has been read and acted on, so no late reply adds more. It had slept 2 s (a second reply,
    were one asked for, lands within 600 ms after the first): the taps ask for every request before this runs, so
    a second request (a double tap's, the old list's next page) is counted and waited for (forty-sixth round,
    suite46b) -- and nothing asked or answered for 700 ms (one slowed 600 ms round trip): a request the page makes
    only after reading the first reply (a guard turned into a resend) had slipped past the count alone (rv46d MED)."""
    browser.wait_for(f"document.querySelectorAll('#flags tbody tr.flag').length >= {expected}")
    browser.wait_for("window.__asked > 0 && window.__answered === window.__asked"
                     " && performance.now() - window.__quietSince > 700")
    return list(browser.eval(LISTED))


def flags(engine: Any) -> None:
    w = World(engine)
    for i in range(150):  # 140 flags at B on 2026-03-03, 10 on 2026-03-05
        w.report(A, w.patient(A, person(i)), cbc(A), "2026-03-01T09:00:00+08:00")
        day = "2026-03-03" if i < 140 else "2026-03-05"
        w.report(B, w.patient(B, person(i), mrn=f"B-{i}"), cbc(B), f"{day}T09:00:00+08:00")


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    """The 150 flags (``flags``) once for the module, on an engine as ``engine`` gives one, served over
    real HTTP: the two "show more" tests only read them, each signed in under a name of its own. Each
    had built its own county (300 results; ~1.3 s of CPU a test)."""
    tmp = tmp_path_factory.mktemp("ufix12-flags")
    settings = Settings(data_dir=tmp / "var", http_port=_free_port(), mllp_port=0)
    with Engine(settings) as engine:
        flags(engine)
        with serving(engine):
            yield engine, engine.settings.public_base_url


def test_a_double_tap_on_show_more_lists_each_flag_once(flagged: tuple[Engine, str], browser: Browser) -> None:
    engine, server = flagged
    sign_in(browser, server, engine, PHONE_414, name="wang.more")
    every = {r["id"] for r in api_report(browser, "?_count=1000")["rows"]}
    assert len(every) == 150 and len(browser.eval(LISTED)) == 100

    # a double tap on "show more": the second is not a second request for the same page
    slow(browser, 600)
    replies_counted(browser)
    tap(browser, "#more")
    tap(browser, "#more")
    ids = settled(browser, 150)
    assert len(ids) == len(set(ids)) == 150 and set(ids) == every
    assert browser.eval("document.querySelector('#flags-count').innerText").startswith("共 150 条")
    assert browser.eval("document.querySelector('#more').hidden") is True


def test_show_more_tapped_while_a_filtered_list_loads_adds_nothing_of_the_old_list(flagged: tuple[Engine, str],
                                                                                   browser: Browser) -> None:
    """A filter applied and "more" tapped before the new list arrives: the old list's next page had
    landed under the new filter (60 rows under "共 10 条")."""
    engine, server = flagged
    sign_in(browser, server, engine, PHONE_414, name="wang.filter")
    assert browser.eval("document.querySelector('#flags-count').dataset.shown") == "100"
    slow(browser, 600)
    replies_counted(browser)
    browser.eval("document.querySelector('#filters [name=from]').value = '2026-03-05'; true")
    tap(browser, "#apply")
    tap(browser, "#more")
    browser.wait_for("document.querySelector('#flags-count').dataset.count === '10'")
    ids = settled(browser, 10)
    fifth = {r["id"] for r in api_report(browser, "?from=2026-03-05")["rows"]}
    assert len(fifth) == 10 and ids and set(ids) == fifth and len(ids) == 10, len(ids)
    assert browser.eval("document.querySelector('#flags-count').innerText").startswith("共 10 条")
    days = browser.eval("[...document.querySelectorAll('#flags tbody tr.flag button.open')].map(b => b.innerText)")
    assert set(days) == {"2026年3月5日"}


def test_a_result_dated_to_the_day_is_shown_without_a_time(engine: Any, server: str, browser: Browser) -> None:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    # a FHIR date: the day of the result, no time stated (issued, an instant, keeps its time)
    w.repo.update({"resourceType": "DiagnosticReport", "id": deterministic_id(A, "DiagnosticReport", "DAY-ONLY"),
                   "status": "final", "code": lft(A), "subject": {"reference": pa}, "effectiveDateTime": "2026-03-01",
                   "issued": "2026-03-01T17:00:00+08:00", "performer": [{"reference": w.organization(A)}]})
    w.report(B, pb, lft(B), "2026-03-04T09:00:00+08:00")
    sign_in(browser, server, engine, PHONE_360)
    tap(browser, "#flags tbody tr.flag button.open")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    prior = browser.eval("document.querySelector('#ev-prior-words').innerText")
    assert "2026年3月1日" in prior and "08:00" not in prior and "00:00" not in prior, prior
    assert "2026年3月4日 09:00" in browser.eval("document.querySelector('#ev-repeat-words').innerText")
    # the page's words for each FHIR precision: year, month, day, and a time converted to Beijing's
    said = browser.eval("['2026', '2026-03', '2026-03-04', '2026-03-04T01:30:00Z'].map(window.hurenWords.instant)")
    assert said == ["2026年", "2026年3月", "2026年3月4日", "2026年3月4日 09:30"], said


def test_a_ratio_measure_is_not_shown_as_a_percentage(march: TestClient, engine: Engine, server: str,
                                                      browser: Browser) -> None:
    """The two-way referral ratio (downward referrals sent per upward one received) is a ratio by its
    Measure's scoring; it had been shown as a percentage because it states a denominator."""
    browser.send("Emulation.setDeviceMetricsOverride", **PHONE_360)
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.body.dataset.indicators === '1'")
    bundle = march.get("/reports/indicators", params={"month": "2026-03"}).json()
    score = {e["resource"]["measure"].split("/")[-1]: e["resource"]["group"][0].get("measureScore")
             for e in bundle["entry"] if e["resource"]["resourceType"] == "MeasureReport"}
    ratio = score["huren-two-way-referral-ratio"]
    assert ratio and ratio["unit"] == "1" and float(ratio["value"]) != 0
    shown = dict(browser.eval("[...document.querySelectorAll('#indicators tbody tr')]"
                              ".map(r => [r.dataset.measure, r.cells[2].innerText])"))
    assert not shown["huren-two-way-referral-ratio"].endswith("%")
    assert float(shown["huren-two-way-referral-ratio"]) == float(ratio["value"])
    assert shown["huren-county-treatment-rate"] == "66.67%"  # a proportion stays a percentage
    labels = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-two-way-referral-ratio] text')]"
                          ".map(t => t.textContent)")
    assert labels and not any(t.endswith("%") for t in labels), labels
