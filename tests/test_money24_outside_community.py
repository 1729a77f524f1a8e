"""money24: a repeat of a result from outside the medical community, over a real MLLP socket --
checked and found right (kept so that it stays right).

DOMAIN.md: non-payment covers repeats inside the same medical community; a result recognisable only
through a wider HR scope counts for the rate and is "not payable" only when the payer extends it.
HOSPS is in the neighbouring community (sheyang). HOSPB (funing) repeats its blood count 2 days later:

- HOSPS passed QC with the city's HR mark (YC covers funing): the repeat is *reported* -- nothing at
  stake, nothing an auditor can uphold, so never on HOSPB's deduction list;
- HOSPS passed QC without an HR mark: not recognisable at HOSPB -- nothing at all;
- the same repeat of a community member's (HOSPA's) result: not payable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_money19_cds_orders import flags
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, result

INSTITUTIONS = """\
- {code: HOSPA, name: 县人民医院, community: funing, grade: 三级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPB, name: 县中医院, community: funing, grade: 二级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPS, name: 射阳县人民医院, community: sheyang, grade: 三级}
"""


def site_engine(tmp_path: Path, hr: str) -> Iterator[Engine]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    (site / "qc.yaml").write_text(f"- {{institution: HOSPS, item: all, passed: true, from: 2026-01-01, "
                                  f"until: 2026-12-31{hr}}}\n", "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.fixture(params=[", hr: [YC]", ""], ids=["city-HR", "no-HR"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield from site_engine(tmp_path, request.param)


@pytest.mark.parametrize("issuer", ["HOSPS", "HOSPA"])
def test_outside_the_community_is_never_a_deduction(engine: Engine, mllp: int, issuer: str) -> None:
    hl7 = Sender(mllp)
    hl7.send(order(issuer, "P1", CBC, "20260301090000"))
    hl7.send(result(issuer, "P1", CBC, "20260301100000"))
    hl7.send(order("HOSPB", "B1", CBC, "20260303090000"))
    hl7.send(result("HOSPB", "B1", CBC, "20260303100000"))
    got = [(f["status"], f.get("basis")) for f in flags(engine) if f["inst"] == "HOSPB"]
    with_hr = "YC" in (Path(engine.settings.site) / "qc.yaml").read_text("utf-8")
    if issuer == "HOSPA":
        assert [s for s, _ in got] == ["flagged"], got
    elif with_hr:
        assert got == [("reported", "YC")], got
    else:
        assert got == [], got
    http = TestClient(create_app(engine))
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token("insurer", "system/DetectedIssue.rus",
                                                                         kind="auditor")}
    for f in flags(engine):
        r = http.post(f"/reports/duplicates/{f['_id']}/review", json={"decision": "upheld", "reason": "复核"},
                      headers=auditor)
        assert r.status_code in (200, 422), r.text
    res = http.get("/reports/deductions", params={"institution": "HOSPB", "month": "2026-03", "_format": "csv"},
                   headers=auditor)
    assert res.status_code == 200, res.text
    rows = [line for line in res.content.decode("utf-8-sig").splitlines() if line.startswith("ded-")]
    assert len(rows) == (1 if issuer == "HOSPA" else 0), rows
