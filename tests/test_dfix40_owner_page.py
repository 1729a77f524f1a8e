"""dfix40: on /ui/quarantine, an owner's decision the store was too busy to write is said as that -- nothing written,
the message held as before, ask again -- with its reason box still there, and asked again from the page it is taken.

Headless Chromium through the real app (uvicorn, the engine in this process), the real store, real HL7 over ``POST
/hl7v2``; the operator signs in with password and TOTP. The store's failure is the backend's own error raised at the
decision's batch write once (``tests.test_dfix40_decision_retry._failing_once``). Screenshots: the test's own folder
(the ``shots`` fixture).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_dfix40_decision_retry import _failing_once
from tests.test_opspage26_quarantine import DESKTOP, sign_in
from tests.test_ord40_owner_page import _held, _open, _shot
from tests.test_ordfix40_owner_page import _decide_in_page
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_srfix35_order_code import B

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, str]]:
    root = tmp_path_factory.mktemp("dfix40page")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        yield engine, base, _held(base, sender, "DF40-PAGE")
    engine.close()


def test_a_decision_the_store_was_too_busy_for_is_said_so_and_asked_again(site: tuple[Engine, str, str],
                                                                         shots: Path) -> None:
    engine, base, control = site
    msg = message_id(B, control)
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.dfix40", "operator", "郑运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        _open(b, control)
        with _failing_once(engine, sqlite3.OperationalError("database is locked")):
            said = _decide_in_page(b, "接口已更换")
        assert said.startswith("数据库正忙，本次决定未写入任何内容") and "ask again in a moment" in said, said
        assert "服务器出错" not in said, said
        assert not b.eval("document.querySelector('#owner-box').hidden"), "the reason box went after a busy store"
        _shot(b, "01-busy-desktop", shots)
        doc = engine.ingestor.messages.get(msg)
        assert doc["status"] == "processed" and doc["held_claims"] and not doc.get("replays"), doc
        b.eval("document.querySelector('#owner-reason').value = ''; true")
        said = _decide_in_page(b, "接口已更换（再次）")
        assert said.startswith("已按号码所有者的更改处理"), said
        _shot(b, "02-taken-desktop", shots)
        assert engine.ingestor.messages.get(msg)["decision"]["reason"] == "接口已更换（再次）"
    finally:
        b.close()
