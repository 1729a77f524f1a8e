"""evidence33: the auditors' evidence page shows each repeated analyte beside the prior result of the
same analyte, in headless Chromium through the real app (a staff auditor signed in with password
and TOTP), at 1366x768 and at a phone's 390x844. The flags come in as real HL7 v2 over ``POST
/hl7v2``. Screenshots go to ``$HUREN_SCREENSHOTS`` when set (the round's report folder), else the
test's own folder.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import browser_pool
from tests.test_evidence33_pairs import ALT, AST, LFT, TBIL, http, panel_repeat, the_flag  # noqa: F401  (``http``: the fixture)
from tests.test_insurance_ui import sign_in
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures

SIZES = {"desktop": (1366, 768, False), "phone": (390, 844, True)}


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("HUREN_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shot(browser: Browser, path: Path) -> None:  # noqa: F811
    """The whole page from its top, as far as it goes (the evidence is below the list)."""
    if not browser_pool.shooting():  # for a person to look at; none is taken otherwise
        return
    width = browser.eval("document.documentElement.clientWidth")
    height = min(browser.eval("document.documentElement.scrollHeight"), 8000)
    data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})["data"]
    path.write_bytes(base64.b64decode(data))


def _shot_of(browser: Browser, selector: str, path: Path) -> None:  # noqa: F811
    """One part of the page (its box in the document), to be read at its own size."""
    if not browser_pool.shooting():  # for a person to look at; none is taken otherwise
        return
    box = browser.eval(f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
                       " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
    data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": box[0], "y": box[1], "width": box[2], "height": min(box[3], 4000), "scale": 1})["data"]
    path.write_bytes(base64.b64decode(data))


def _open_first_flag(browser: Browser) -> None:  # noqa: F811
    browser.eval("document.querySelector('#flags tbody tr.flag button.open').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden && document.querySelectorAll('#ev-pairs .pair').length > 0")


@pytest.mark.parametrize("size", list(SIZES))
def test_the_evidence_pairs_each_analyte_with_the_same_analyte(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                               browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    # two analytes repeat (ALT, AST), TBIL is new; the reports are coded as the panel
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35"), (TBIL, "12")), code=LFT)
    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"zhou.{size}", "auditor")
    _open_first_flag(browser)
    pairs = browser.eval("[...document.querySelectorAll('#ev-pairs .pair')].map(p => [p.dataset.analyte, p.innerText])")
    assert [a for a, _ in pairs] == ["ALT", "AST"]
    for analyte, said in pairs:
        prior, repeat = said.split("复查结果 Repeat")
        assert f"（{analyte}）" in said.split("\n")[0]  # 丙氨酸氨基转移酶（ALT）
        value = {"ALT": ("30", "88"), "AST": ("28", "35")}[analyte]
        assert f"结果 Value\n{value[0]} U/L" in prior and f"结果 Value\n{value[1]} U/L" in repeat, said
    unpaired = browser.eval("document.querySelector('#ev-unpaired').innerText")
    assert "未与前次结果重复" in unpaired and "总胆红素（TBIL）" in unpaired
    assert browser.eval("document.querySelector('#ev-unpaired').dataset.analytes") == "TBIL"
    assert "白蛋白（ALB）" in browser.eval("document.querySelector('#ev-not-done').innerText")
    # the two whole reports are not what was compared: folded away; the billed result is named so
    assert browser.eval("document.querySelector('.results').hidden") is True
    assert "计费结果 Billed result" in browser.eval("document.querySelector('#ev-facts').innerText")
    # nothing is wider than the screen
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot(browser, _shots(tmp_path) / f"evidence-pairs-{size}.png")
    _shot_of(browser, "#evidence", _shots(tmp_path) / f"evidence-pairs-{size}-evidence.png")


def test_a_flag_stored_before_the_pairs_says_so(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                 browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The row as an earlier release stored it: the page pairs it from the records and says so."""
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    flags = engine.recognition.flags
    stored = flags.get(row["id"])
    flags.coll.replace({k: v for k, v in stored.items() if k not in ("pairs", "unpaired")})
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.old", "auditor")
    _open_first_flag(browser)
    note = browser.eval("document.querySelector('#ev-pairs-note').innerText")
    assert "记录于分项配对之前" in note and "分项按当前记录配对" in note
    [[analyte, said]] = browser.eval("[...document.querySelectorAll('#ev-pairs .pair')].map(p => [p.dataset.analyte, p.innerText])")
    prior, repeat = said.split("复查结果 Repeat")
    assert analyte == "AST" and "结果 Value\n30 U/L" in prior and "结果 Value\n35 U/L" in repeat
    assert "丙氨酸氨基转移酶（ALT）" in browser.eval("document.querySelector('#ev-unpaired').innerText")
    _shot(browser, _shots(tmp_path) / "evidence-before-pairs-phone.png")
    _shot_of(browser, "#evidence", _shots(tmp_path) / "evidence-before-pairs-phone-evidence.png")
