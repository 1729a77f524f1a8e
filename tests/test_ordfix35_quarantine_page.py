"""ordfix35: the quarantine page says what the operator's decision "按较新处理" made of a message -- a
decision the write did not use (the sender's own time showing the message older) is said as not used,
never as taken; a decision refused because the result was written again after the refusal (409) is
said in Chinese, and the message shown again with its refusal naming what is stored now (rvorder35 LOW 5,
MED 3). Headless Chromium through the real app (uvicorn), the real store, real HL7 over ``POST /hl7v2``;
the operator signs in with password and TOTP. Screenshots go to the test's own folder
(the ``shots`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.message_time import decision
from engine.messages import QUARANTINED, message_id, now_iso
from engine.settings import Settings
from tests.test_msgfix34_cross_sender import _by, _correction, _withdrawal
from tests.test_opspage26_quarantine import DESKTOP, _open, _post, _row, sign_in
from tests.test_ord40_owner_page import _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru, _three

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

HELD, CHANGED = "OP35-1C", "OP35-2C"
PACS = "右肺上叶结节影，建议复查。"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("ordfix35")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        # the RIS's 12:00 correction refused; its own 13:00 one refused, then decided by the desk: the
        # 12:00 one's decision will answer nothing (the RIS's own later time holds it)
        assert _post(base, sender, _by("RIS", _three("OP35-1", "OP35-X1")).encode()) == "AA"
        assert _post(base, sender, _withdrawal("OP35-1W", "OP35-X1", "20261202110000").encode()) == "AA"
        assert _post(base, sender, _by("RIS", _correction(HELD, "OP35-X1", "20261202120000")).encode()) == "AE"
        assert _post(base, sender, _by("RIS", _correction("OP35-1D", "OP35-X1", "20261202130000")
                                       .replace("右肺上叶见钙化灶", "右肺上叶见钙化灶，较前相仿")).encode()) == "AE"
        engine.ingestor.replay(message_id("FNXRMYY", "OP35-1D"), actor="desk",
                               decided=decision(by="desk", system="urn:huren:client", at=now_iso()))
        # the RIS's 12:00 correction refused against the PACS's withdrawal; the PACS's own 13:00 correction taken
        assert _post(base, sender, _by("RIS", _three("OP35-2", "OP35-X2")).encode()) == "AA"
        assert _post(base, sender, _withdrawal("OP35-2W", "OP35-X2", "20261202110000").encode()) == "AA"
        assert _post(base, sender, _by("RIS", _correction(CHANGED, "OP35-X2", "20261202120000")).encode()) == "AE"
        assert _post(base, sender, _oru("OP35-2P", "OP35-X2", _obx(2, F1, "2", PACS, "C", "20261202100000"),
                                        _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp="20261202130000").encode()) == "AA"
        yield engine, base
    engine.close()


def _decide(b: Browser) -> str:
    b.eval("document.querySelector('#later').click(); true")
    b.wait_for("document.querySelector('#confirm-later').open")
    b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#replay-said').className = 'busy';"
           " document.querySelector('#confirm-later-yes').click(); true")
    b.wait_for("!!document.querySelector('#replay-said').dataset.ack || document.querySelector('#replay-said').className === 'bad'")
    return b.eval("document.querySelector('#replay-said').innerText")


def test_a_decision_not_used_is_said_so_and_a_record_changed_after_the_refusal_is_409_in_chinese(site, shots: Path) -> None:
    engine, base = site
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.fix35", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")

        # not used: the sender's own later time held it -- said as not used, never as taken
        _open(b, HELD)
        said = _decide(b)
        assert "未使用您的决定：发送方自身的发送时间表明该消息较早，仍按较早保留" in said, said
        assert "已按较新处理" not in said and "注明由您决定" not in said, said
        facts = b.eval("document.querySelector('#d-facts').innerText")
        assert "要求按较新处理（未使用）" in facts and "Taken as later" not in facts, facts
        _shot(b, "01-decision-not-used-desktop", shots)
        assert engine.ingestor.messages.get(message_id("FNXRMYY", HELD))["decision"]["used"] is False

        # the result written again after the refusal: 409, said in Chinese, nothing written, the refusal renewed
        msg = message_id("FNXRMYY", CHANGED)
        before = engine.ingestor.messages.get(msg)["refused_against"]
        _open(b, CHANGED)
        said = _decide(b)
        assert said.startswith("不能按较新处理：拒收之后，该结果已被其他消息改写") and "本次未写入任何内容" in said, said
        assert "拒收原因已更新为现存版本" in said, said
        doc = engine.ingestor.messages.get(msg)
        assert doc["status"] == QUARANTINED and doc["refused_against"] != before, doc["refused_against"]
        assert _row(b, CHANGED) is not None and not b.eval("document.querySelector('#later-box').hidden")
        _shot(b, "02-record-changed-409-desktop", shots)
    finally:
        b.close()
