"""reg41: a held change of a record's resident ID number on the operator's page, decided as a person would.

A LIS walk-in A04 registered a record with a wrong valid number; the HIS's A04 stating the right one is held (AA,
W 205: another application registered the number). ``/ui/quarantine`` lists it under 暂未采用的更改 with 类别
身份证号更改; opened, the page says why in Chinese (the ID number's words, not the order's), the operator types a
reason, confirms (the confirmation names the ID number), and is told the record took the number; the record holds
it, the message leaves the list.

Headless Chromium through the real app (uvicorn), the real store, real HL7 over ``POST /hl7v2``; the operator
signs in with password and TOTP. Screenshots go to the ``shots`` folder (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import undeclared_site
from tests.test_opspage26_quarantine import DESKTOP, _post, sign_in
from tests.test_ord40_owner_page import _held_row, _open, _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvidentity32_probes import MRN, _nid, adt

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

REASON = "已核对居民身份证：检验科自助登记时录入的号码有误，HIS 的号码正确"
WRONG, RIGHT = _nid("32092319700211002"), _nid("32092319700211022")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    """The real app served on a store of its own: the LIS's walk-in, then the HIS's A04 held (sent by an interface
    engine's post-only token)."""
    root = tmp_path_factory.mktemp("reg41page")  # (a site declaring no registration application: decl42)
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0,
                             site=undeclared_site(root / "site")))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for raw in (adt("GK1", f"GK^^^FNXRMYY^MR~{WRONG}^^^^NNCHN", "甲^十一", "19700211", "F", app="LIS"),
                    adt("GK2", f"GK^^^FNXRMYY^MR~{RIGHT}^^^^NNCHN", "甲^十一", "19700211", "F")):
            assert _post(base, sender, raw.encode()) == "AA"
        yield engine, base
    engine.close()


def _numbers(engine: Engine) -> set[str]:
    found = engine.repository.search("Patient", [("identifier", f"{MRN}|GK")])
    (record,) = found.resources
    return {i["value"] for i in record.get("identifier") or () if i.get("system") == "urn:huren:id:NNCHN"}


def test_the_operator_takes_a_held_id_number_giving_a_reason(site: tuple[Engine, str], shots: Path) -> None:
    engine, base = site
    assert _numbers(engine) == {WRONG}
    b = Browser(shots / "profile")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.reg41", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        assert b.eval("document.querySelector('#held-title').innerText").startswith("暂未采用的更改")
        assert "类别" in b.eval("document.querySelector('#held thead').innerText")
        row = _held_row(b, "GK2")
        assert row is not None and "身份证号更改" in row and "医嘱更改" not in row and "暂未采用" in row, row
        assert WRONG not in row and RIGHT not in row, row
        _shot(b, "01-held-id-number", shots)

        _open(b, "GK2")
        errs = b.eval("document.querySelector('#errs').innerText")
        assert "暂未采用：PID-3 给出的居民身份证号" in errs and "MSH-3 LIS 登记" in errs and "205" in errs, errs
        assert not b.eval("document.querySelector('#owner-why-id').hidden")
        assert b.eval("document.querySelector('#owner-why').hidden")
        b.eval("document.querySelector('#owner-reason').focus(); true")
        b.send("Input.insertText", text=REASON)
        b.eval("document.querySelector('#owner').click(); true")
        b.wait_for("document.querySelector('#confirm-owner').open")
        asked = b.eval("document.querySelector('#confirm-owner').innerText")
        assert "其对病历身份证号的更改" in asked and REASON in asked, asked
        _shot(b, "02-confirm-id-number", shots)
        b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-owner-yes').click(); true")
        b.wait_for("!!document.querySelector('#replay-said').dataset.ack || document.querySelector('#replay-said').className === 'bad'")
        said = b.eval("document.querySelector('#replay-said').innerText")
        assert said.startswith("已按号码所有者的更改处理：病历已采用本消息的身份证号。决定人 it.reg41") and REASON in said, said
        assert _held_row(b, "GK2") is None
        _shot(b, "03-taken-id-number", shots)
    finally:
        b.close()
    assert _numbers(engine) == {RIGHT}
