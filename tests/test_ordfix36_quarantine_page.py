"""ordfix36: the quarantine page says a 409 for a refusal stored before every version was recorded (it
named the first result's version only) as what it is -- a version stored before the refusal that it did
not name, not "改写" (changed) after it -- shows the message again with its refusal now naming both, and
the operator's next decision takes the correction. Headless Chromium through the real app (uvicorn), the
real store, real HL7 over ``POST /hl7v2``; the operator signs in with password and TOTP. Screenshots go
to the test's own folder (the ``shots`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from engine.settings import Settings
from tests.test_msgfix34_cross_sender import _by
from tests.test_opspage26_quarantine import DESKTOP, _open, _post, sign_in
from tests.test_ord40_owner_page import _shot
from tests.test_ordfix35_quarantine_page import _decide
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

REFUSED = "OQ36-1C"
LINE1, LINE2, IMPRESSION = "双肺纹理增粗。", "右肺上叶见结节影。", "慢性支气管炎。"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("ordfix36")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        report = _oru("OQ36-1", "OQ36-X1", _obx(1, F1, "1", LINE1, "F"), _obx(2, F1, "2", LINE2, "F"),
                      _obx(3, IMP, "", IMPRESSION, "F"), mrn="OQ36M1", name="褚^一")
        assert _post(base, sender, _by("RIS", report).encode()) == "AA"
        withdraw = _oru("OQ36-1W", "OQ36-X1", _obx(1, F1, "1", LINE1, "W"), _obx(2, F1, "2", LINE2, "W"),
                        mrn="OQ36M1", name="褚^一", stamp="20261202110000")
        assert _post(base, sender, withdraw.encode()) == "AA"
        correct = _oru(REFUSED, "OQ36-X1", _obx(1, F1, "1", "双肺纹理清晰。", "C"), _obx(2, F1, "2", "右肺上叶见钙化灶。", "C"),
                       _obx(3, IMP, "", IMPRESSION, "F"), mrn="OQ36M1", name="褚^一", stamp="20261202120000")
        assert _post(base, sender, _by("RIS", correct).encode()) == "AE"
        msg = message_id("FNXRMYY", REFUSED)
        both = engine.ingestor.messages.get(msg)["refused_against"]
        assert len(both) == 2, both
        engine.ingestor.messages.messages.update(msg, {"refused_against": both[:1]})  # (as stored before ordfix36)
        yield engine, base
    engine.close()


def test_a_version_the_old_refusal_did_not_name_is_said_as_not_named_then_one_decision_takes_it(site, shots: Path) -> None:
    engine, base = site
    msg = message_id("FNXRMYY", REFUSED)
    b = Browser(shots)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.fix36", "operator", "褚运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")
        _open(b, REFUSED)
        said = _decide(b)
        assert said.startswith("不能按较新处理：这条消息拒收时只记录了第一个") and "并非拒收后被改写" in said, said
        assert "已被其他消息改写" not in said and "the record changed" not in said, said
        doc = engine.ingestor.messages.get(msg)
        assert doc["status"] == QUARANTINED and len(doc["refused_against"]) == 2, doc["refused_against"]
        _shot(b, "01-refusal-did-not-name-409-desktop", shots)
        _open(b, REFUSED)
        said = _decide(b)
        assert "已按较新处理" in said, said
        assert engine.ingestor.messages.get(msg)["status"] != QUARANTINED
        _shot(b, "02-decided-in-one-more-round-desktop", shots)
    finally:
        b.close()
