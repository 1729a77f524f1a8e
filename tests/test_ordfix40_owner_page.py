"""ordfix40: the held-change decision on /ui/quarantine after rv40f -- a change another operator decided while the page
was open is answered ``already`` and its reason box goes (nothing left to decide); a reason typed on several lines is
kept and shown with its line breaks; the confirmation says the reason goes to the audit log and the message's record,
not to what the patient reads.

Headless Chromium through the real app (uvicorn), the real store, real HL7 over ``POST /hl7v2``; the operator
signs in with password and TOTP; the other operator decides over ``/admin`` with their client's token.
Screenshots: the test's own folder (the ``shots`` fixture)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import message_id
from tests.test_opspage26_quarantine import DESKTOP, sign_in
from tests.test_ord40_owner_page import _open, _serving_held, _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_srfix35_order_code import B

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

LINES = "接口更换：\n1. MSH-3 改为 OID 形式\n2.\t已与厂商核实"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, str, str]]:
    yield from _serving_held(tmp_path_factory, "ordfix40page", "OF40-PAGE1", "OF40-PAGE2")


def _decide_in_page(b: Browser, reason: str) -> str:
    b.eval("document.querySelector('#owner-reason').focus(); true")
    b.send("Input.insertText", text=reason)
    b.eval("document.querySelector('#owner').click(); true")
    b.wait_for("document.querySelector('#confirm-owner').open")
    b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-owner-yes').click();"
           " true")
    b.wait_for("!!document.querySelector('#replay-said').dataset.ack || document.querySelector('#replay-said').className"
               " === 'bad'")
    return str(b.eval("document.querySelector('#replay-said').innerText"))


def test_a_change_decided_meanwhile_is_answered_already_and_its_box_goes(site: tuple[Engine, str, str, str],
                                                                        shots: Path) -> None:
    engine, base, first, second = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.ordfix40", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        _open(b, first)
        # meanwhile another operator decides it through /admin with their client
        token = engine.auth.issue_system_token("ops-desk", "system/MessageHeader.cr")
        req = urllib.request.Request(f"{base}/admin/quarantine/{message_id(B, first)}/owner", method="POST",
                                     data=json.dumps({"reason": "运维乙：同一系统"}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.loads(r.read())["already"] is False
        said = _decide_in_page(b, "我也确认")
        assert said.startswith("这条消息的更改此前已按号码所有者的更改处理（决定人 ops-desk") and "运维乙：同一系统" in said, said
        assert b.eval("document.querySelector('#owner-box').hidden"), "the reason box stays after already"
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert "决定人 ops-desk" in facts and "运维乙：同一系统" in facts, facts
        _shot(b, "01-already-desktop", shots)
        doc = engine.ingestor.messages.get(message_id(B, first))
        assert [r["by"] for r in doc["replays"]] == ["ops-desk"], doc["replays"]

        # a reason on several lines: asked, kept as typed, shown with its line breaks
        _open(b, second)
        b.eval("document.querySelector('#owner-reason').focus(); true")
        b.send("Input.insertText", text=LINES)
        b.eval("document.querySelector('#owner').click(); true")
        b.wait_for("document.querySelector('#confirm-owner').open")
        asked = b.eval("document.querySelector('#confirm-owner-text').innerText")
        assert LINES in asked and "患者看不到理由" in asked, asked
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; "
               "document.querySelector('#confirm-owner-yes').click(); true")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("已按号码所有者的更改处理") and LINES in said, said
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert LINES in facts, facts
        assert b.eval("getComputedStyle(document.querySelector('#d-facts dd')).whiteSpace") == "pre-wrap"
        _shot(b, "02-lines-desktop", shots)
        assert engine.ingestor.messages.get(message_id(B, second))["decision"]["reason"] == LINES
    finally:
        b.close()
