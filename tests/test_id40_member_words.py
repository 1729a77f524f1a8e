"""id40: the member-number refusal names what differs in Chinese on the operator's refused-messages page too -- the
page's script fills the reason's {what} and says its English terms in Chinese (``app.js`` ``termed``, the words'
``terms``), as ``ui_quarantine.err_said`` does for the pages the server draws. Headless Chromium through the real
app (uvicorn), the real store, real HL7 over ``POST /hl7v2``; the operator signs in with password and TOTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_mfix34_members import _fnzyy
from tests.test_opspage26_quarantine import DESKTOP, _open, _post, _row, sign_in
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvidentity32_probes import adt

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

REFUSED = "ID40M-B"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("id40m")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        assert _post(base, sender, adt("ID40M-A", "ID40M^^^FNXRMYY^MR", "王^丽", "19800301", "F").encode()) == "AA"
        refused = _fnzyy(adt(REFUSED, "ZM40^^^FNZYY^MR~ID40M^^^FNXRMYY^MR", "陈^四", "19800301", "M"))
        assert _post(base, sender, refused.encode()) == "AE"
        yield engine, base
    engine.close()


def test_the_member_refusal_names_what_differs_in_chinese_on_the_page(site: tuple[Engine, str], tmp_path: Path) -> None:
    engine, base = site
    b = Browser(tmp_path)  # (the profile argument, unused since browser_pool: nothing is saved)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.id40", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")
        row = _row(b, REFUSED)
        assert row and "其姓名、性别与本消息不符" in row, row
        _open(b, REFUSED)
        detail = b.eval("document.querySelector('#detail').innerText")
        assert "其姓名、性别与本消息不符" in detail and "name (PID-5) and sex (PID-8)" in detail, detail
        assert "sex (PID-8)与" not in detail and "{what}" not in detail, detail
    finally:
        b.close()
