"""rv40f: the held-change decision on /ui/quarantine as an operator uses it -- keyboard only, Chinese first -- with
markup in the sender's MSH-3 (quoted by the 204 text the page explains) and in the reason the operator types: shown
as text everywhere (the row, the errors, the confirmation, the answer, the facts), nothing run.

Headless Chromium through the real app (uvicorn), the real store, real HL7 over ``POST /hl7v2``; the operator
signs in with password and TOTP. Screenshots: the test's own folder (the ``shots`` fixture: ``HUREN_SCREENSHOTS`` for
the reviewer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import message_id
from tests.test_opspage26_quarantine import DESKTOP, sign_in
from tests.test_ord40_owner_page import _serving_held, _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_srfix35_order_code import B

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

APP = "<img src=x onerror=window.__xss=1>"  # an MSH-3 with markup: the 204 text quotes it
REASON = '<script>window.__xss=2</script><img src=y onerror="window.__xss=3">经核实为同一系统'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, str]]:
    yield from _serving_held(tmp_path_factory, "rv40fpage", "RV40F-PAGE", app=APP)


def _key(b: Browser, key: str, code: int, shift: bool = False, text: str = "") -> None:
    mods = 8 if shift else 0
    b.send("Input.dispatchKeyEvent", type="keyDown", key=key, code=key, windowsVirtualKeyCode=code, modifiers=mods,
           **({"text": text} if text else {}))
    b.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=code, modifiers=mods)


def _tab_to(b: Browser, selector: str, most: int = 60) -> None:
    for _ in range(most):
        if b.eval(f"document.activeElement.matches({json.dumps(selector)})"):
            return
        _key(b, "Tab", 9)
    assert b.eval(f"document.activeElement.matches({json.dumps(selector)})"), b.eval("document.activeElement.outerHTML")


def _no_markup_ran(b: Browser) -> None:
    assert b.eval("window.__xss === undefined"), b.eval("window.__xss")
    assert b.eval("document.querySelectorAll('main img, main script').length") == 0


def test_keyboard_only_with_markup_in_the_sender_and_the_reason(site: tuple[Engine, str, str],
                                                                shots: Path) -> None:
    engine, base, control = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.rv40f", "operator", "审运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        row = b.eval(f"[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes({json.dumps(control)}))?.innerText")
        assert row is not None and APP in row and "暂未采用" in row, row  # (Chinese first, the markup as text)
        _no_markup_ran(b)
        _shot(b, "01-held-row-markup", shots)
        # Tab to the held row's open button, Enter: the detail, focus on its title
        _tab_to(b, "#held tbody tr button.open")
        _key(b, "Enter", 13, text="\r")
        b.wait_for("!document.querySelector('#detail').hidden && !document.querySelector('#owner-box').hidden")
        b.wait_for("document.activeElement.id === 'd-title'")
        errs = b.eval("document.querySelector('#errs').innerText")
        assert errs.index("暂未采用") < errs.index("204") and APP in errs, errs
        _no_markup_ran(b)
        # the button with no reason, by keyboard: asked for words, focus put in the box, nothing sent
        _tab_to(b, "#owner")
        _key(b, "Enter", 13, text="\r")
        b.wait_for("document.activeElement.id === 'owner-reason'")
        assert b.eval("document.querySelector('#replay-said').innerText").startswith("请先填写理由")
        assert not engine.ingestor.messages.get(message_id(B, control)).get("replays")
        b.send("Input.insertText", text=REASON)  # (typed: an IME commits Chinese as text)
        _key(b, "Tab", 9)
        assert b.eval("document.activeElement.id") == "owner"
        _key(b, "Enter", 13, text="\r")
        b.wait_for("document.querySelector('#confirm-owner').open")
        assert b.eval("document.activeElement.id") == "confirm-owner-no"  # (the safe choice first)
        asked = b.eval("document.querySelector('#confirm-owner').innerText")
        assert REASON in asked, asked
        _no_markup_ran(b)
        _shot(b, "02-confirm-markup-reason", shots)
        _key(b, "Escape", 27)  # (changed their mind: nothing sent, back on the button)
        b.wait_for("!document.querySelector('#confirm-owner').open")
        assert b.eval("document.activeElement.id") == "owner"
        assert not engine.ingestor.messages.get(message_id(B, control)).get("replays")
        _key(b, "Enter", 13, text="\r")
        b.wait_for("document.querySelector('#confirm-owner').open")
        _key(b, "Tab", 9)
        assert b.eval("document.activeElement.id") == "confirm-owner-yes"
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; true")
        _key(b, "Enter", 13, text="\r")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack || document.querySelector('#replay-said').className === 'bad'")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("已按号码所有者的更改处理") and REASON in said, said
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert REASON in facts and "决定人 it.rv40f" in facts, facts
        _no_markup_ran(b)
        _shot(b, "03-taken-markup-reason", shots)
        doc = engine.ingestor.messages.get(message_id(B, control))
        assert doc["decision"]["reason"] == REASON and doc["decision"]["used"] is True
    finally:
        b.close()
