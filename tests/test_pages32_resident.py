"""pages32: what a resident reads on /ui/me about wards sent by code, corrected and amended
results, and how many records a section says it holds -- in headless Chromium on a 390-px phone,
through the real path (HL7 v2 over POST /hl7v2 to uvicorn, the real store, her own sign-in).

One resident, messages from two member hospitals:
- an admission at the county hospital whose ward is sent by its codes only (PV1-3 NEI^301^02, no
  PL-9 name): the site's ward table (mappings/wards.yaml) names NEI there 心内科病区;
- an outpatient visit at the TCM hospital in a department no table names (FS): its codes are shown as
  sent and said to be the hospital's codes, never given a guessed name;
- a liver panel whose report is corrected (OBR-25 C), one value amended (OBX-11 A) and high, one
  corrected (OBX-11 C), and one the lab withdrew (OBX-11 D);
- a chest X-ray report sent corrected (OBR-25 C) with an amended finding (OBX-11 A).
What is asserted is the text she sees: 已更正 on every card, row, timeline line and trend where such a
result is shown; the section counts count what is shown as hers and say the withdrawn one apart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.engine import Engine
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

SUN = nid("32092319680606006")


def _messages(patient: str) -> list[bytes]:
    admitted = hl7(msh("HIS", "FNXRMYY", "20260310091500", "ADT^A01^ADT_A01", "P32-ADT-1"), "EVN|A01|20260310091500",
                   patient, "PV1|1|I|NEI^301^02^FNXRMYY|R|||D1001^陈^明^^^^^^FNXRMYY||||||||||||"
                   "P32-STAY-1^^^FNXRMYY^VN|||||||||||||||||||||||||20260310090000")
    outpatient = hl7(msh("HIS", "FNZYY", "20260312083000", "ADT^A04^ADT_A01", "P32-ADT-2"), "EVN|A04|20260312083000",
                     patient.replace("FNXRMYY", "FNZYY"), "PV1|1|O|FS^^^FNZYY||||||||||||||||P32-VISIT-2^^^FNZYY^VN|||||||||||||||||||||||||"
                     "20260312083000")

    def liver(control: str, when: str, alt: str, status: str) -> bytes:
        return hl7(msh("LIS", "FNXRMYY", when + "0000", "ORU^R01^ORU_R01", control), patient,
                   f"ORC|RE|{control}^HIS|{control}F^LIS||CM",
                   f"OBR|1|{control}^HIS|{control}F^LIS|LFT^肝功能^L|||{when}0000||||||||BLD&血液|D9^王^医生||||||"
                   f"{when}3000|||{status}",
                   f"OBX|1|NM|ALT^丙氨酸氨基转移酶^L||{alt}|U/L|7-40|H|||{'A' if status == 'C' else 'F'}|||{when}0000",
                   f"OBX|2|NM|AST^天门冬氨酸氨基转移酶^L||30|U/L|13-35|N|||{status}|||{when}0000",
                   f"OBX|3|NM|TBIL^总胆红素^L||99|umol/L|3.4-20.5|H|||{'D' if status == 'C' else 'F'}|||{when}0000")

    xray = hl7(msh("PACS", "FNXRMYY", "20260315163000", "ORU^R01^ORU_R01", "P32-DR-1"), patient,
               "ORC|RE|P32-DR-1^HIS|P32-DR-1F^PACS||CM",
               "OBR|1|P32-DR-1^HIS|P32-DR-1F^PACS|DR001^胸部正位片^L|||20260315143000|||||||||D2001^吴^强||"
               "P32-DR-1F||||20260315162800||DX|C",
               "OBX|1|TX|FINDINGS^检查所见^L||右肺中叶少许炎症。||||||A|||20260315160000")
    return [admitted, outpatient, liver("P32-LFT-1", "2026030108", "52", "F"), liver("P32-LFT-2", "2026031108", "88", "C"),
            xray]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(SUN, "ZY2026007777", "FNXRMYY", "孙^丽华", "19680606", "F", "13700007777")
    yield from fed_site(tmp_path_factory.mktemp("pages32"), patient, _messages(patient))


@pytest.fixture(scope="module")
def phone(site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    yield from signed_in_phone(site, tmp_path_factory.mktemp("pages32-shots"), SUN)


def _section(phone: Phone, tab: str) -> str:
    phone.click(f"[data-tab={tab}]")
    phone.cdp.wait(f"!document.getElementById('{tab}').hidden")
    return phone.text(tab)


def _heading(phone: Phone, tab: str) -> str:
    _section(phone, tab)
    return phone.cdp.eval(f"document.getElementById('{tab}-h').innerText")


def test_a_ward_sent_by_code_reads_its_name_and_an_unnamed_one_says_it_is_codes(phone: Phone) -> None:
    visits = phone.cdp.eval("(() => { document.querySelector('[data-tab=visits]').click();"
                            " return [...document.querySelectorAll('#visits article.card')].map(a => a.innerText); })()")
    inpatient = next(c for c in visits if "阜宁县人民医院" in c)
    assert "科室/病区：心内科病区 301房 02床" in inpatient and "NEI" not in inpatient, visits
    outpatient = next(c for c in visits if "阜宁县中医院" in c)
    assert "科室/病区：FS（院内代码）" in outpatient, visits
    assert outside(phone.cdp, {"width": 390}) == []


def test_corrected_and_amended_read_corrected_on_every_card_line_and_trend(phone: Phone) -> None:
    rows = dict(phone.cdp.eval("(() => { document.querySelector('[data-tab=results]').click();"
                               " return [...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent + '|' + r.innerText.includes('88'),"
                               " r.innerText]); })()"))
    assert "已更新" in rows["丙氨酸氨基转移酶|true"] and "偏高" in rows["丙氨酸氨基转移酶|true"], rows  # OBX-11 A (amended: pages33)
    results = _section(phone, "results")
    assert "amended" not in results and "corrected" not in results, results
    # the day's heading says the report is corrected (OBR-25 C)
    march11 = phone.cdp.eval("[...document.querySelectorAll('#results article')].map(a => a.querySelector('.meta').innerText)"
                             ".find(t => t.includes('肝功能') && t.includes('已更正'))")
    assert march11, results
    line = _section(phone, "timeline")
    assert "肝功能 · 2 项结果 · 已更正" in line, line
    assert "丙氨酸氨基转移酶 ↑ 偏高（已更新）" in line, line
    xray = phone.cdp.eval("[...document.querySelectorAll('#timeline li.k-imaging')].map(li => li.innerText)")
    assert len(xray) == 1 and "胸部正位片" in xray[0] and "已更正" in xray[0], xray
    # the recognition mark names no community by its code ("医共体互认 funing")
    assert "funing" not in line, line
    imaging = _section(phone, "imaging")
    assert "已更正" in imaging and "右肺中叶少许炎症。（已更新）" in imaging, imaging  # report C, finding A
    _section(phone, "trends")
    labels = phone.cdp.eval("[...document.querySelectorAll('#trends article.chart')].filter(a => "
                            "a.querySelector('h3').innerText.includes('丙氨酸')).map(a => "
                            "[...a.querySelectorAll('svg text')].map(t => t.textContent))")
    assert len(labels) == 1 and "88↑（已更新）" in labels[0], labels
    # drawn as a final value (a dot, not the ring of a preliminary one), its label inside the chart
    drawn = phone.cdp.eval("(() => { const a = [...document.querySelectorAll('#trends article.chart')].find(a => "
                           "a.querySelector('h3').innerText.includes('丙氨酸')); const svg = a.querySelector('svg').getBoundingClientRect();"
                           " return [[...a.querySelectorAll('circle')].map(c => c.classList.contains('marked')),"
                           " [...a.querySelectorAll('svg text')].every(t => { const r = t.getBoundingClientRect();"
                           " return r.left >= svg.left - 0.5 && r.right <= svg.right + 0.5; })]; })()")
    assert drawn == [[False, False], True], drawn


def test_a_section_counts_what_it_shows_as_hers_and_says_the_withdrawn_apart(phone: Phone) -> None:
    """Six values were sent, one withdrawn (OBX-11 D): 共 5 条（另有 1 条已作废）, not 共 6 条."""
    assert _heading(phone, "results").endswith("共 5 条（另有 1 条已作废）"), _heading(phone, "results")
    assert _heading(phone, "visits").endswith("共 2 条"), _heading(phone, "visits")
    assert _heading(phone, "imaging").endswith("共 1 条"), _heading(phone, "imaging")
    shown = phone.cdp.eval("[...document.querySelectorAll('#results tr')].filter(r => !r.classList.contains('void')).length")
    assert shown == 5


def test_in_english_the_same(phone: Phone) -> None:
    phone.click("#lang")
    try:
        phone.cdp.wait("document.documentElement.lang === 'en'")
        assert _heading(phone, "results").endswith("5 records (and 1 withdrawn)")
        visits = _section(phone, "visits")
        assert "FS (hospital's codes)" in visits and "心内科病区 301房 02床" in visits, visits
        line = _section(phone, "timeline")
        assert "(updated)" in line, line  # OBX-11 A: amended (pages33)
        assert outside(phone.cdp, {"width": 390}) == []
    finally:
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'zh-CN'")
