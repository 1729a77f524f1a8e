"""ord40: the operator decides a held change of an order on the refused-messages page, as a person would.

The page (``/ui/quarantine``) lists, beside the refused messages, the messages accepted with a change held
(暂未采用的医嘱更改: AA, W 204 -- the order's history names another application for the number its change came
under). The operator opens one, reads why in Chinese, is told to give a reason when they press the button
without one, types it, confirms, and is told the order took the change, with their name and reason; the message
leaves the held list and its facts say who decided and why. On a phone the held list reads as cards.

Headless Chromium through the real app (uvicorn), the real store, real HL7 over ``POST /hl7v2``; the operator
signs in with password and TOTP. Screenshots: the test's own folder (the ``shots`` fixture)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests import browser_pool
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_opspage26_quarantine import DESKTOP, PHONE, _post, sign_in
from tests.test_ord39_order_history import _from
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_srfix35_order_code import B, oru

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

REASON = "放射科 RIS 自 12 月 1 日起 MSH-3 改为 OID 形式（接口厂商更换），与原 RIS 为同一系统"


def _held(base: str, token: str, placer: str, app: str = f"^{OID}^ISO") -> str:
    """The HIS orders head CT, the RIS reports it; ``app`` (by default the RIS's interface, now ``^<OID>^ISO``)
    sends XX to chest CT: held (AA, W 204). Returns its control id."""
    for message in (_ordered(placer), _ris(oru(placer, item=HEAD))):
        assert _post(base, token, message.replace("\n", "\r").encode()) == "AA"
    held = _from(app, _changed(placer, CHEST))
    assert _post(base, token, held.replace("\n", "\r").encode()) == "AA"
    return held.split("\n", 1)[0].split("|")[9]


def _serving_held(tmp_path_factory: pytest.TempPathFactory, name: str, *placers: str,
                  app: str = f"^{OID}^ISO") -> Iterator[tuple[Any, ...]]:
    """The real app served (uvicorn) on a store of its own, and one held message per placer number sent by an
    interface engine's post-only token: yields the engine, the base URL, then each held message's control id."""
    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp(name) / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        yield (engine, base, *(_held(base, sender, placer, app) for placer in placers))
    engine.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, str, str]]:
    yield from _serving_held(tmp_path_factory, "ord40page", "O40-PAGE1", "O40-PAGE2")


def _shot(b: Browser, name: str, folder: Path, full: bool = True) -> Path:
    """The page as it is now, saved as ``folder``/``name``.png (``folder``: the test's ``shots``): the whole page, or
    with ``full`` False the viewport as the person sees it. The one screenshot of the quarantine page tests."""
    if not browser_pool.shooting():  # for a person to look at; none is taken otherwise
        return folder / f"{name}.png"
    data = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=full)["data"]
    out = folder / f"{name}.png"
    out.write_bytes(base64.b64decode(data))
    return out


def _held_row(b: Browser, control: str) -> str | None:
    return b.eval(f"[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes({json.dumps(control)}))"
                  "?.innerText")


def _open(b: Browser, control: str) -> None:
    """Open the held row of message ``control`` (its button, as a click) and wait for its details and owner box."""
    b.eval(f"[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes({json.dumps(control)}))"
           ".querySelector('button.open').click(); true")
    b.wait_for("!document.querySelector('#detail').hidden && !document.querySelector('#owner-box').hidden")


def _order(engine: Engine, placer: str) -> dict:
    found = engine.repository.search("ServiceRequest", [("identifier", f"urn:huren:id:HIS|{placer}")])
    (order,) = found.resources if hasattr(found, "resources") else found
    return order


def test_the_operator_takes_a_held_change_as_the_owners_giving_a_reason(site: tuple[Engine, str, str, str],
                                                                       shots: Path) -> None:
    engine, base, first, second = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.ord40", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        row = _held_row(b, first)
        assert row is not None and "暂未采用" in row and "AA 已接收" in row, row
        assert "应答" in b.eval("document.querySelector('#held thead').innerText")
        _shot(b, "01-held-list-desktop", shots)

        _open(b, first)
        errs = b.eval("document.querySelector('#errs').innerText")
        assert "暂未采用：ORC-1 XX" in errs and "医嘱的历史记录表明是 FNZYY 的 RIS" in errs and "204" in errs, errs
        assert b.eval("document.querySelector('#replay-box').hidden") and b.eval("document.querySelector('#later-box').hidden")
        # the button without a reason: told at the box, nothing sent
        b.eval("document.querySelector('#owner').click(); true")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("请先填写理由"), said
        assert b.eval("document.activeElement.id") == "owner-reason"
        assert b.eval("document.querySelector('#owner-reason').getAttribute('aria-invalid')") == "true"
        assert not b.eval("document.querySelector('#confirm-owner').open")
        assert not engine.ingestor.messages.get(message_id(B, first)).get("replays")
        _shot(b, "02-reason-required-desktop", shots)
        # typed as a person types, then confirmed
        b.send("Input.insertText", text=REASON)
        b.eval("document.querySelector('#owner').click(); true")
        b.wait_for("document.querySelector('#confirm-owner').open")
        asked = b.eval("document.querySelector('#confirm-owner').innerText")
        assert "确认按号码所有者的更改处理" in asked and REASON in asked and "审计日志" in asked, asked
        assert b.eval("document.querySelector('#replay-said').innerText") == ""  # (the ask for a reason, answered)
        _shot(b, "03-confirm-desktop", shots)
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-owner-yes').click(); true")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack || document.querySelector('#replay-said').className === 'bad'")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("已按号码所有者的更改处理：医嘱已采用本消息的更改。决定人 it.ord40") and REASON in said, said
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert "按号码所有者的更改处理" in facts and "决定人 it.ord40" in facts and REASON in facts, facts
        assert b.eval("document.querySelector('#owner-box').hidden")
        assert _held_row(b, first) is None and _held_row(b, second) is not None
        _shot(b, "04-taken-desktop", shots)
        doc = engine.ingestor.messages.get(message_id(B, first))
        assert doc["decision"]["as"] == "owner" and doc["decision"]["reason"] == REASON and doc["decision"]["used"]
        assert doc["replays"][-1]["by"] == "it.ord40"

        # the held list on a phone: cards, nothing wider than the screen
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        b.send("Page.reload")
        b.wait_for("document.body.dataset.held === '1'")
        assert _held_row(b, second) is not None
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _shot(b, "05-held-list-phone", shots)
    finally:
        b.close()
