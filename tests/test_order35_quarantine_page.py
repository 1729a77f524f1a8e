"""order35: the quarantine page offers the operator's decision "按较新处理" (take as later) on a message
refused because its order against a stored result cannot be told (ERR-3 206) -- and only there: not on
one whose own MSH-7 is unusable (102). Headless Chromium through the real app (uvicorn), the real store,
real HL7 over ``POST /hl7v2``; the operator signs in with password and TOTP, reads why in Chinese, reads
the one-line explanation, confirms, and the page says what the decision made of it. Screenshots go to
the test's own folder (the ``shots`` fixture; they had overwritten /work/team/reports35/order35/ each run)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.audit.record import event_of
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from engine.settings import Settings
from tests.test_msgfix34_cross_sender import FIXED, _by, _correction, _withdrawal
from tests.test_opspage26_quarantine import DESKTOP, PHONE, _open, _post, _row, sign_in
from tests.test_ord40_owner_page import _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvdocref32_probes import _three

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

UNTOLD, OWN_TIME = "OQ35-1C", "OQ35-2W"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("order35")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        # the RIS reports, the PACS withdraws the second line, the RIS's correction: 206 (another application's withdrawal)
        assert _post(base, sender, _by("RIS", _three("OQ35-1", "OQ35-X1")).encode()) == "AA"
        assert _post(base, sender, _withdrawal("OQ35-1W", "OQ35-X1", "20261202110000").encode()) == "AA"
        assert _post(base, sender, _by("RIS", _correction(UNTOLD, "OQ35-X1", "20261202120000")).encode()) == "AE"
        time.sleep(0.01)
        # a second like it (left refused: the page on a phone)
        assert _post(base, sender, _by("RIS", _three("OQ35-3", "OQ35-X3")).encode()) == "AA"
        assert _post(base, sender, _withdrawal("OQ35-3W", "OQ35-X3", "20261202110000").encode()) == "AA"
        assert _post(base, sender, _by("RIS", _correction("OQ35-3C", "OQ35-X3", "20261202120000")).encode()) == "AE"
        time.sleep(0.01)
        # the RIS's own withdrawal of another report with an unreadable MSH-7: 102
        assert _post(base, sender, _by("RIS", _three("OQ35-2", "OQ35-X2")).encode()) == "AA"
        assert _post(base, sender, _by("RIS", _withdrawal(OWN_TIME, "OQ35-X2", "2026120211OOOO")).encode()) == "AE"
        yield engine, base
    engine.close()


def test_the_operator_takes_a_message_as_later_after_reading_why(site, shots: Path) -> None:
    engine, base = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.zhou35", "operator", "周运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")
        row = _row(b, UNTOLD)
        assert "无法判断本消息与已存的结果哪个更晚" in row, row
        assert "发送时间（MSH-7）不可用" in _row(b, OWN_TIME)

        # its own time unusable: replay offered, the decision not
        _open(b, OWN_TIME)
        assert b.eval("document.querySelector('#later-box').hidden") and not b.eval("document.querySelector('#replay-box').hidden")
        assert "不能“按较新处理”" in b.eval("document.querySelector('#errs').innerText")

        # refused for an order that cannot be told: the explanation and the button, Chinese first
        _open(b, UNTOLD)
        assert not b.eval("document.querySelector('#later-box').hidden")
        errs = b.eval("document.querySelector('#errs').innerText")
        assert "OBX" in errs and "206 应用记录被锁定" in errs and "PACS" in errs, errs
        why = b.eval("document.querySelector('#later-why').innerText")
        assert why.startswith("这条消息被拒收，是因为无法从发送时间（MSH-7）判断") and "记录您是决定人" in why, why
        assert b.eval("document.querySelector('#later').innerText").startswith("按较新处理")
        box = b.eval("JSON.stringify(document.querySelector('#later').getBoundingClientRect())")
        assert json.loads(box)["width"] > 0
        _shot(b, "01-untold-offered-desktop", shots)

        # cancelled: nothing happens
        b.eval("document.querySelector('#later').click(); true")
        b.wait_for("document.querySelector('#confirm-later').open")
        asked = b.eval("document.querySelector('#confirm-later').innerText")
        assert asked.startswith("确认按较新处理") and UNTOLD in asked and "决定人" in asked and "审计" in asked, asked
        _shot(b, "02-confirm-desktop", shots, full=False)
        b.eval("document.querySelector('#confirm-later-no').click(); true")
        b.wait_for("!document.querySelector('#confirm-later').open")
        assert engine.ingestor.messages.get(message_id("FNXRMYY", UNTOLD))["status"] == QUARANTINED

        # confirmed: taken, said in Chinese, the decision recorded as the operator's
        b.eval("document.querySelector('#later').click(); true")
        b.wait_for("document.querySelector('#confirm-later').open")
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-later-yes').click(); true")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("重新处理成功：AA 已接收") and "已按较新处理：决定人 it.zhou35" in said, said
        assert "已由操作人 it.zhou35 决定按较新处理" in said, said
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert "按较新处理 Taken as later" in facts and "决定人 it.zhou35" in facts and "已处理" in facts, facts
        assert b.eval("document.querySelector('#later-box').hidden")
        _shot(b, "03-taken-as-later-desktop", shots)
        b.wait_for("document.querySelector('#list-count').dataset.total === '2'")
        assert _row(b, UNTOLD) is None

        # what it wrote names the operator; the stored message and the audit say who decided
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", UNTOLD))
        assert doc["status"] == "processed" and doc["replays"][-1]["as"] == "later" and doc["replays"][-1]["by"] == "it.zhou35"
        (prov,) = [engine.repository.read("Provenance", r.split("/")[1]) for r in doc["resources"] if r.startswith("Provenance/")]
        assert prov["agent"][-1]["who"] == {"identifier": {"system": "urn:huren:staff", "value": "it.zhou35"},
                                            "display": "周运维"}, prov["agent"]
        obs = [engine.repository.read("Observation", r.split("/")[1]) for r in doc["resources"] if r.startswith("Observation/")]
        assert any(o.get("valueString") == FIXED and o["status"] == "corrected" for o in obs), obs
        log = engine.audit
        events = [event_of(d["data"]) for d in (log.get(seq) for seq in range(log.size)) if d is not None]
        decided = [e for e in events if any(c.get("code") == "replay" for c in e.get("subtype") or ())
                   and any(d.get("type") == "as" and d.get("valueString") == "later"
                           for x in e.get("entity") or () for d in x.get("detail") or ())]
        assert len(decided) == 2 and all("it.zhou35" in json.dumps(e["agent"], ensure_ascii=False) for e in decided)

        # on a phone: the decision offered on the other such message, the button inside the screen; the 102
        # message's detail (no decision offered) wraps too, nothing sideways
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        _open(b, "OQ35-3C")
        assert not b.eval("document.querySelector('#later-box').hidden")
        later = json.loads(b.eval("JSON.stringify(document.querySelector('#later').getBoundingClientRect())"))
        assert later["left"] >= 0 and later["right"] <= b.eval("window.innerWidth"), later
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _shot(b, "04-untold-offered-phone", shots)
        _open(b, OWN_TIME)
        assert b.eval("document.querySelector('#later-box').hidden")
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _shot(b, "05-own-time-phone", shots)
    finally:
        b.close()
