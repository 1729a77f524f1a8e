"""dept33: the auditor's and the operator's pages after the demo month, in headless Chromium at
1366x768 and 390x844 (screenshots to HUREN_SCREENSHOTS when it is set, else none).

The auditor's rate by department reads one row per ward, named in Chinese with its hospital first
(阜宁县人民医院 心内科病区), a code no table names said to be one (MZNK（院内代码）); no bed, no room.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from tests.test_reports_ui import Browser, browser, pytestmark, server, sign_in_page  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "examples" / "feeds"
DESKTOP = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def _shot(b: Browser, name: str, whole: bool = True) -> None:  # noqa: F811
    folder = os.environ.get("HUREN_SCREENSHOTS")
    if folder:
        shot = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=whole)["data"]
        (Path(folder) / f"{name}.png").write_bytes(base64.b64decode(shot))


def _no_sideways(b: Browser) -> None:
    assert b.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


def test_the_auditor_reads_departments_as_wards(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    for path in sorted(FEEDS.glob("*.hl7")):
        assert b"MSA|AA|" in engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}")
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    sign_in_page(b, server, engine)
    _shot(b, "duplicates-desktop")
    b.eval("(() => { const s = document.querySelector('#rate-by'); s.value = 'dept';"
           "s.dispatchEvent(new Event('change')); return true; })()")
    b.wait_for("document.querySelector('#rate-key').innerText.includes('科室')"
               " && document.querySelector('#rates').innerText.includes('院内代码')")
    keys = b.eval("[...document.querySelectorAll('#rates tbody td.key')].map(td => td.innerText)")
    assert "阜宁县人民医院 心内科病区" in keys and "阜宁县中医院 MZNK（院内代码）" in keys, keys
    assert not any("房" in k or "床" in k or "301" in k for k in keys), keys
    b.eval("document.querySelector('#rates').scrollIntoView(); true")
    _shot(b, "duplicates-by-dept-desktop", whole=False)
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    _no_sideways(b)
    b.eval("document.querySelector('#rates').scrollIntoView(); true")
    _shot(b, "duplicates-by-dept-phone", whole=False)
    b.eval("[...document.querySelectorAll('#flags tbody tr')].find(r => r.innerText.includes('CBC')).click(); true")
    b.wait_for("!document.querySelector('#evidence').hidden")
    _no_sideways(b)
    b.eval("document.querySelector('#evidence').scrollIntoView(); true")
    _shot(b, "evidence-phone", whole=False)
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _shot(b, "evidence-desktop")
    for size, metrics in (("desktop", DESKTOP), ("phone", PHONE)):
        b.send("Emulation.setDeviceMetricsOverride", **metrics)
        b.send("Page.navigate", url=f"{server}/ui/insurance?month=2025-03&year=2025")
        b.wait_for("location.pathname === '/ui/insurance' && document.body.dataset.loaded === '1'")
        _no_sideways(b)
        _shot(b, f"insurance-{size}")
