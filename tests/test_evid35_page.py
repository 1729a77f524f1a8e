"""evid35: money on the indicator page as it is read in China, and a money figure's unit.

The indicator table showed money as "CNY 2550.25" and a money indicator's numerator as a bare
5100.5 (neither yuan nor to the fen): the page now says "2,550.25 元" and "5,100.50 元" -- to the fen,
thousands grouped, in the word the settlement's heading uses for its unit (``currencies``: CNY -> 元),
and the settlement's own figures are grouped alike ("3,600.00"). What a figure adds up is data
(``mappings/insurance/measures.yaml`` ``numerator_unit`` / ``denominator_unit``, read by
``engine.measures``) and the MeasureReport states it beside the number (``numeratorUnit``, ISO 4217),
so a count (admissions, referrals) stays a plain number. Walked in headless Chromium at 1366 px and at
390 px over the real path (uvicorn, the real store, the worked March: HL7 v2 over POST /hl7v2 and
FHIR), pages34's fixtures reused. Screenshots: HUREN_EVID35_SHOTS (else the test's temporary folder).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from tests import browser_pool
from tests.test_insurance_ui import sign_in as sign_in_auditor
from tests.test_pages34_staff import DESKTOP, PHONE, _shot, insurance  # noqa: F401 (``insurance``: the fixture)
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

ISO_4217 = "urn:iso:std:iso:4217"


@pytest.fixture(scope="module")
def auditor(insurance: tuple[Engine, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path]]:  # noqa: F811
    engine, base = insurance
    b = Browser(tmp_path_factory.mktemp("evid35-auditor"))
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    sign_in_auditor(b, base, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.e35", "auditor")
    b.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    shots = Path(os.environ.get("HUREN_EVID35_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path_factory.mktemp("evid35-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    yield b, shots
    b.close()


def parts(b: Browser, folder: Path, name: str, selector: str, height: int = 700) -> None:
    """The element ``selector`` photographed in screen-sized pieces (``name-1.png``...), to be looked at
    one by one: a whole phone page is too tall to read at once."""
    if not browser_pool.shooting("HUREN_EVID35_SHOTS"):  # for a person to look at; none is taken otherwise
        return
    import base64

    box = b.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                 " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
    x, y, w, h = box
    for n, top in enumerate(range(0, int(h) + 1, height), 1):
        clip = {"x": x, "y": y + top, "width": w, "height": min(height, h - top), "scale": 1}
        data = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        (folder / f"{name}-{n}.png").write_bytes(base64.b64decode(data))


def table(b: Browser) -> dict[str, list[str]]:
    """The indicator table as shown: measure id -> [value, numerator, denominator]."""
    return dict(b.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure,"
                       " [r.cells[2].innerText, r.cells[3].innerText, r.cells[4].innerText]])"))


def figures(b: Browser, measure: str) -> list[dict[str, Any]]:
    """The figures extension of the measure's MeasureReport for March, as the signed-in auditor reads it."""
    got = b.eval(f"fetch('/fhir/Measure/{measure}/$evaluate-measure?periodStart=2026-03-01&periodEnd=2026-03-31')"
                 ".then(r => r.json()).then(m => JSON.stringify(m))")
    report = json.loads(got)
    assert report["resourceType"] == "MeasureReport", report
    [ext] = [e for e in report["group"][0]["extension"] if e["url"] == "urn:huren:StructureDefinition:measure-figures"]
    return ext["extension"]


def test_money_reads_as_yuan_to_the_fen_and_a_count_stays_a_number(auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    shown = table(b)
    # the average cost of an admission: 5,100.50 元 of charge lines over 2 admissions
    assert shown["huren-per-admission-cost"] == ["2,550.25 元", "5,100.50 元", "2"], shown
    assert shown["huren-duplicate-test-money"] == ["20.00 元", "20.00 元", "—"], shown
    assert shown["huren-county-treatment-rate"] == ["66.67%", "2", "3"], shown  # counts: no unit
    assert shown["huren-duplicate-test-count"][1:] == ["1", "—"], shown
    # a share of money: both its amounts are money, its score a percentage
    share = shown["huren-out-of-pocket-share"]
    assert share[0].endswith("%") and share[1].endswith(" 元") and share[2].endswith(" 元"), share
    text = b.eval("document.querySelector('#indicators').innerText")
    assert "CNY" not in text, text
    # the chart's figures are said the same way
    ticks = b.eval("[...document.querySelectorAll('svg[data-measure=huren-per-admission-cost] text')].map(t => t.textContent)")
    assert any(t.endswith(" 元") for t in ticks) and not any("CNY" in t for t in ticks), ticks
    # the settlement: its heading names the unit once, its figures grouped alike
    heading = b.eval("document.querySelector('#settlement h3').innerText")
    assert "金额单位：元（CNY）" in heading, heading
    pays = b.eval("[...document.querySelectorAll('#settlement tr[data-step=year-end]')].map(r => r.cells[1].innerText)")
    assert sorted(pays) == ["3,600.00", "490.00"], pays
    totals = b.eval("[...document.querySelectorAll('#settlement .totals')].map(p => p.innerText)")
    assert any("支出 8,600.00" in t for t in totals), totals
    _shot(b, shots, "evid35-indicators-desktop")
    parts(b, shots, "evid35-desktop-settlement-chart", "#settlement figure")


def test_the_measure_report_states_what_each_figure_adds_up(auditor: tuple[Browser, Path]) -> None:
    """The unit is the definition's (measures.yaml), stated beside the number it qualifies; a count has none."""
    b, _ = auditor
    cost = {p["url"]: p for p in figures(b, "huren-per-admission-cost")}
    assert cost["numerator"]["valueDecimal"] == 5100.5 and cost["denominator"]["valueDecimal"] == 2
    assert cost["numeratorUnit"]["valueCoding"] == {"system": ISO_4217, "code": "CNY"}
    assert "denominatorUnit" not in cost  # admissions: a count
    money = {p["url"]: p for p in figures(b, "huren-duplicate-test-money")}
    assert set(money) == {"numerator", "numeratorUnit"} and money["numeratorUnit"]["valueCoding"]["code"] == "CNY"
    share = {p["url"] for p in figures(b, "huren-out-of-pocket-share")}
    assert {"numeratorUnit", "denominatorUnit"} <= share
    rate = {p["url"] for p in figures(b, "huren-county-treatment-rate")}
    assert rate == {"numerator", "denominator"}


def test_on_a_phone_the_money_stays_on_the_screen(auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    try:
        # the page before the reload is marked, so that its own "loaded" is not taken for the new one's
        b.eval("window.evid35Before = true; location.reload(); true")
        b.wait_for("!window.evid35Before && document.body.dataset.loaded === '1'"
                   " && document.querySelector('#settlement').dataset.loaded === '1'")
        assert table(b)["huren-per-admission-cost"] == ["2,550.25 元", "5,100.50 元", "2"]
        # the card layout captions each figure; the amount is not broken inside its grouping
        cell = b.eval("(() => { const td = document.querySelector('#indicators tr[data-measure=huren-per-admission-cost]')"
                      ".cells[3]; return [td.dataset.label, td.innerText]; })()")
        assert cell == ["分子 Numerator", "5,100.50 元"], cell
        assert outside(b, PHONE) == []
        _shot(b, shots, "evid35-indicators-phone")
        parts(b, shots, "evid35-phone-indicators", "#indicators")
        parts(b, shots, "evid35-phone-settlement", "#settlement")
    finally:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
