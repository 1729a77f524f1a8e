"""A held merge on /ui/quarantine, as the operator sees and decides it (the lead, forty-third round; idn43's page
words had no page test).

Headless Chromium through the real app (uvicorn, the engine in this process) on the shipped (declared) site, real
HL7 over ``POST /hl7v2``: the HIS registers her record with her ID number; the LIS files a walk-in's result and sends
an A40 merging the HIS's record into its walk-in -- held (W 205 at MRG-1, ``persons.merge_refused``). The operator
signs in with password and TOTP, opens the held message, reads why in Chinese (病历合并), takes it with a reason, and
the merge is made once. Screenshots: the test's own folder (the ``shots`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_opspage26_quarantine import DESKTOP, PHONE, _post, sign_in
from tests.test_ord40_owner_page import _open, _shot
from tests.test_ordfix40_owner_page import _decide_in_page
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvidentity32_probes import _nid, adt, oru

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

NUMBER = _nid("32092319800811420")
A40 = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|LD43M|P|2.5.1\r"
       "EVN|A40|20261201121500\rPID|1||LD43W^^^FNXRMYY^MR||癸^四十三||19800811|F\rMRG|LD43H^^^FNXRMYY^MR\r")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("lead43page")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        token = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for message in (adt("LD43Ha", f"LD43H^^^FNXRMYY^MR~{NUMBER}^^^^NNCHN", "壬^四十三", "19800811", "F"),
                        oru("LD43Wa", "LD43W^^^FNXRMYY^MR", "癸^四十三", "19800811", "F", "LD43OBS"),
                        adt("LD43Wb", "LD43W^^^FNXRMYY^MR", "癸^四十三", "19800811", "F", app="LIS"), A40):
            assert _post(base, token, message.encode()) == "AA", message
        yield engine, base
    engine.close()


def test_the_operator_reads_a_held_merge_in_chinese_and_takes_it_once(site: tuple[Engine, str], shots: Path) -> None:
    engine, base = site
    held = engine.ingestor.messages.get(message_id("FNXRMYY", "LD43M"))
    assert held is not None and any(c.get("kind") == "merge" for c in held.get("held_claims") or ()), held
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.lead43", "operator", "钱运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        intro = b.eval("document.querySelectorAll('p.intro')[1].innerText")
        assert "病历合并" in intro and "a merge of two records" in intro, intro
        row = b.eval("[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes('LD43M'))"
                     "?.innerText")
        assert row and "病历合并" in row, row
        _open(b, "LD43M")
        why = b.eval("document.querySelector('#owner-why-merge').hidden ? '' : "
                     "document.querySelector('#owner-why-merge').innerText")
        assert why.startswith("这条消息要合并两份病历") and "MRG-1" in why, why
        assert b.eval("document.querySelector('#owner-why-id').hidden"), "the ID number's words shown for a merge"
        _shot(b, "01-held-merge-desktop", shots)
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)  # (the operator's phone: the same words, nothing cut)
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways"
        b.eval("document.querySelector('#held').scrollIntoView(); true")
        _shot(b, "01b-held-list-phone", shots, full=False)
        b.eval("document.querySelector('#owner-box').scrollIntoView(); true")
        _shot(b, "01c-held-merge-why-phone", shots, full=False)
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        said = _decide_in_page(b, "已核对身份证件，两份病历为同一人")
        assert "服务器出错" not in said and b.eval("document.querySelector('#replay-said').className") != "bad", said
        assert said.startswith("已按号码所有者的更改处理：两份病历已合并") and "the two records are merged" in said, said
        _shot(b, "02-merge-taken-desktop", shots)
        decided = engine.ingestor.messages.get(message_id("FNXRMYY", "LD43M"))
        assert decided["decision"]["reason"] == "已核对身份证件，两份病历为同一人", decided.get("decision")
    finally:
        b.close()
