"""money24: QC status at its last day, in the hospital's days, over a real MLLP socket -- checked and
found right (kept so that it stays right).

HOSPA passed QC until 2026-03-01 (institutions.yaml), and a failed assessment (qc.yaml, passed: false)
suspends HOSPC's blood counts for 2026-03-01..03-31 whatever institutions.yaml declares:

- HOSPA's blood count taken 2026-03-01 23:30 local (sent ``20260301153000+0000``), HOSPB repeats it on
  03-03: not payable (QC covered the last day);
- taken 2026-03-02 00:30 local (``20260301163000+0000``, still 03-01 in UTC): QC had lapsed -- nothing;
- HOSPC's blood count of 03-01 (QC failed): nothing flagged for HOSPB's repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_money19_cds_orders import flags
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, result

INSTITUTIONS = """\
- {code: HOSPA, name: 县人民医院, community: c1, grade: 三级, qc: {passed: all, until: 2026-03-01}}
- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPC, name: 镇卫生院, community: c1, grade: 一级, qc: {passed: all, until: 2099-12-31}}
"""
QC = "- {institution: HOSPC, item: all, passed: false, from: 2026-03-01, until: 2026-03-31, source: 室间质评不合格}\n"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    (site / "qc.yaml").write_text(QC, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.mark.parametrize(("issuer", "taken", "expected"), [
    ("HOSPA", "20260301153000+0000", [("flagged", None)]),
    ("HOSPA", "20260301163000+0000", []),
    ("HOSPC", "20260301020000+0000", []),
], ids=["last-qc-day", "day-after-qc", "qc-failed"])
def test_qc_on_the_results_local_day(engine: Engine, mllp: int, issuer: str, taken: str,
                                     expected: list[tuple[str, str | None]]) -> None:
    hl7 = Sender(mllp)
    hl7.send(order(issuer, "P1", CBC, taken))
    hl7.send(result(issuer, "P1", CBC, taken))
    hl7.send(order("HOSPB", "B1", CBC, "20260303010000+0000"))
    hl7.send(result("HOSPB", "B1", CBC, "20260303020000+0000"))
    got = [(f["status"], f.get("reason")) for f in flags(engine) if f["inst"] == "HOSPB"]
    assert got == expected, got
