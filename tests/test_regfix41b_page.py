"""regfix41b: the operator's page says a held ID-number change cannot be decided -- the number it states is held by
another record -- before any confirmation, naming that record by its MRN only.

The walk-in: the HIS registered GQ (number a) and GR (number b, another woman of one name and birth date); the LIS's
A04 under GQ states b (held, W 205). Opened on ``/ui/quarantine``, the page shows, in place of the decision, in
Chinese, that the number belongs to another record (病历号 GR) and what settles it; no reason box, no decision button;
neither woman's number anywhere on it. Headless Chromium through the real app (uvicorn), the real store, real HL7 over
``POST /hl7v2``; the operator signs in with password and TOTP. Screenshots go to the ``shots`` folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import undeclared_site
from tests.test_opspage26_quarantine import DESKTOP, _post, sign_in
from tests.test_ord40_owner_page import _held_row, _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvidentity32_probes import _nid, adt

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

A, B = _nid("32092319700212002"), _nid("32092319700212012")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("regfix41bpage")  # (a site declaring no registration application: decl42)
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0,
                             site=undeclared_site(root / "site")))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for raw in (adt("GQ1", f"GQ^^^FNXRMYY^MR~{A}^^^^NNCHN", "甲^十二", "19700212", "F"),
                    adt("GR1", f"GR^^^FNXRMYY^MR~{B}^^^^NNCHN", "甲^十二", "19700212", "F"),
                    adt("GQ2", f"GQ^^^FNXRMYY^MR~{B}^^^^NNCHN", "甲^十二", "19700212", "F", app="LIS")):
            assert _post(base, sender, raw.encode()) == "AA"
        yield engine, base
    engine.close()


def test_the_page_says_the_number_is_another_records_before_any_decision(site: tuple[Engine, str],
                                                                          shots: Path) -> None:
    engine, base = site
    b = Browser(shots / "profile")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.regfix41b", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        row = _held_row(b, "GQ2")
        assert row is not None and "身份证号更改" in row, row
        b.eval("[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes('GQ2'))"
               ".querySelector('button.open').click(); true")
        b.wait_for("!document.querySelector('#detail').hidden && !document.querySelector('#owner-barred').hidden")
        assert b.eval("document.querySelector('#owner-box').hidden"), "the decision is offered"
        assert not b.eval("document.querySelector('#owner-barred').hidden")
        assert b.eval("document.querySelector('#owner-barred-merged').hidden")
        said = b.eval("document.querySelector('#owner-barred').innerText")
        assert "已属于另一份病历" in said and "病历号 GR" in said and "不能按号码所有者的更改处理" in said, said
        assert "撤下本病历错误的身份证号" in said and "再合并病历" in said and "请先更正那份病历" in said, said
        page = b.eval("document.querySelector('#detail').innerText")
        shown = page.replace(b.eval("document.querySelector('#d-raw').innerText"), "")
        assert A not in shown and B not in shown, shown
        _shot(b, "01-barred-number-elsewhere", shots)
    finally:
        b.close()
