"""ufix38: ``/admin/fidelity`` as the operators read it in headless Chromium (1366x768 and 390x844), after
rv38g's review of ui38's page -- ``tests/test_ui38_pages.py``'s harness, an engine of its own fed real HL7 v2
over ``POST /hl7v2``:
- FNZYY: an order whose text names no item, then its result (a mapping gap ``order_text``); an order of
  血常规 and a result under a local code its map knows with no item (gap ``no_item``); a result with OBR-4
  left empty (kind ``absent``); a person filed under FNXRMYY's number that FNXRMYY then registers for
  another person (a ``member_contradicted`` row naming FNZYY's own record);
- FNXRMYY: a code no map knows.

What a person saw, each pinned here: the gap rows told "不在站点的代码对照表中" (false for a mapped code, the
wrong fix for both), the empty field called an unmapped code, the records to correct not on the page at
all; an operator bound to FNZYY asking for FNXRMYY told it "has nothing unmapped"; and the page's read
audited as an "unauthenticated caller". Screenshots: ``HUREN_UFIX38_SHOTS`` (else the test's folder).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.auth.staff import StaffDirectory
from engine.engine import Engine
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_rvidentity32_probes import adt
from tests.test_srfix35_order_code import oru
from tests.test_ui12_phone import outside
from tests.test_ui38_pages import DESKTOP, PHONE, Site, _sign_in, fed_site
from tests.test_xotext36_order_text import LFT_LOCAL, _by_text

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

PERSON = "PID|1||UF38-0001^^^FNZYY^MR||周^测试||19700101|M\n"  # no one else's: the feed's results are this test's


def _messages() -> list[str]:
    def own(message: str) -> str:  # srfix35's messages name its patient: this test's own instead
        return "".join(PERSON if line.startswith("PID|") else line + "\n" for line in message.splitlines())

    filed = adt("UF38B1", "UF38B^^^FNXRMYY^MR", "王^一", "19900101", "F").replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)
    return [own(_by_text("UF38-T", "凝血检查十项")), own(oru("UF38-T", item=LFT_LOCAL)),
            own(_by_text("UF38-N", "血常规")), own(oru("UF38-N", item="100101^白细胞^L")),
            own(oru("UF38-A", item="")),
            own(oru("UF38-O", item="UF38Q^某项^L")).replace("|FNZYY|", "|FNXRMYY|", 1),
            filed, adt("UF38B2", "UF38B^^^FNXRMYY^MR", "郑^一", "19600101", "M")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    fed = [(body.replace("\n", "\r").encode(), "AA") for body in _messages()]
    with fed_site(tmp_path_factory.mktemp("ufix38"), "HUREN_UFIX38_SHOTS", fed) as s:
        s.staff("qian.ufix38", "operator", "钱运维")
        s.secrets["wu.ufix38"] = StaffDirectory(s.engine.settings.data_dir).add(
            "wu.ufix38", role="operator", institution="YBJ", password=AUDITOR_PASSWORD, display="吴运维",
            roles=s.engine.staff.roles, remit="FNZYY").secret
        yield s


def _row(b: Browser, value: str) -> str:
    return b.eval("[...document.querySelectorAll('table.items tbody tr')].find(r => "
                  f"r.querySelector('td[data-label=\"代码/段 Value\"]').innerText === {value!r}).innerText")


def _requestor_of_last_read(engine: Engine) -> str:
    reads = [e for e in engine.audit.events() if any(d.get("valueString") == "fidelity" for x in e.get("entity") or ()
                                                      for d in x.get("detail") or ())]
    who = [a["who"] for a in reads[-1]["agent"] if a.get("requestor")]
    return str(who[0].get("identifier", {}).get("value") or who[0].get("display"))


def test_an_operator_reads_each_row_as_what_it_is_and_the_records_to_correct(site: Site) -> None:
    b = Browser(site.shots / "profile-op")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        _sign_in(b, site, "qian.ufix38", "/admin/fidelity?institution=FNZYY")
        assert _requestor_of_last_read(site.engine) == "qian.ufix38"  # not "unauthenticated caller"
        text = _row(b, "凝血检查十项")
        assert "医嘱文字未指明项目" in text and "未指明任何识别项目" in text and "items.yaml" in text, text
        no_item = _row(b, "100101")
        assert "已映射但无识别项目" in no_item and "已映射但没有识别项目" in no_item, no_item
        empty = _row(b, "ServiceRequest.code")
        assert "发送方未填写 Field left empty" in empty and "发送方未填写 OBR-4" in empty, empty
        for row in (text, no_item, empty):
            assert "不在站点的代码对照表中" not in row and "Unmapped code" not in row, row
        records = b.eval("[...document.querySelectorAll('div.records code')].map(c => c.innerText)")
        assert records and all(r.startswith("Patient/") for r in records), records
        site.shot(b, "ufix38-fidelity-operator-desktop")
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        b.send("Page.navigate", url=site.base + "/admin/fidelity?institution=FNZYY")
        b.wait_for("document.readyState === 'complete' && document.querySelectorAll('div.records').length > 0")
        assert outside(b, PHONE) == []
        site.shot(b, "ufix38-fidelity-operator-phone")
    finally:
        b.close()


def test_an_operator_bound_to_a_hospital_is_told_another_is_outside_their_remit(site: Site) -> None:
    b = Browser(site.shots / "profile-bound")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        _sign_in(b, site, "wu.ufix38", "/admin/fidelity?institution=FNXRMYY")
        said = b.eval("document.querySelector('#outside') && document.querySelector('#outside').innerText")
        assert said and "不在您的查看范围内" in said and "阜宁县中医院（FNZYY）" in said, said
        text = b.eval("document.body.innerText")
        assert "没有未映射" not in text and "converted in full" not in text and "UF38Q" not in text, text
        assert _requestor_of_last_read(site.engine) == "wu.ufix38"
        assert outside(b, PHONE) == []
        site.shot(b, "ufix38-fidelity-bound-phone")
    finally:
        b.close()
