"""rvpages31: review of pages31's resident page (/ui/me) -- what a resident reads about results the
hospital withdrew or cancelled, and about a visit sent without its date, in headless Chromium on a
390-px phone, through the real path (HL7 v2 over POST /hl7v2 to uvicorn, the real store, her own
sign-in with ID number and SMS code).

One resident, four messages from the county hospital:
- a blood count, final, red cell count 5.9 flagged H; then the lab re-sends that result with OBX-11 X
  (results cannot be obtained) and OBX-5 empty -- the store keeps the value (a thinner message never
  erases one; the ACK warns), the status becomes ``cancelled``;
- a chest CT whose finding OBX carries OBX-11 W ("post original as wrong, e.g. transmitted for wrong
  patient": R4 entered-in-error) and whose impression is final;
- an outpatient registration (ADT^A04) without PV1-44, with a DG1 whose DG1-5 (diagnosis date, R4
  onsetDateTime) is 2010-01-01;
- an admission (ADT^A01) with a diagnosis of lung cancer, which an A08 then withdraws (DG1-21 D).
Each test below fails on pages31's tip for the reason its docstring states.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.engine import Engine
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

SUN = nid("32092319700303004")


def _messages(patient: str) -> list[bytes]:
    count = hl7(msh("LIS", "FNXRMYY", "20250401110000", "ORU^R01^ORU_R01", "RV31-1"), patient,
                "ORC|RE|RV31-O1^HIS|RV31-F1^LIS||CM",
                "OBR|1|RV31-O1^HIS|RV31-F1^LIS|XCG^血常规^L|||20250401080000||||||||BLD&血液|D9^王^医生||||||"
                "20250401103000|||F",
                "OBX|1|NM|WBC^白细胞计数^L||6.2|10\\S\\9/L|3.5-9.5|N|||F|||20250401100000",
                "OBX|2|NM|RBC^红细胞计数^L||5.9|10\\S\\12/L|3.8-5.1|H|||F|||20250401100000")
    # the same result re-sent: OBX-11 X, no value (the stored 5.9 and its H stay, status cancelled)
    cannot = hl7(msh("LIS", "FNXRMYY", "20250401120000", "ORU^R01^ORU_R01", "RV31-2"), patient,
                 "ORC|RE|RV31-O1^HIS|RV31-F1^LIS||CM",
                 "OBR|1|RV31-O1^HIS|RV31-F1^LIS|XCG^血常规^L|||20250401080000||||||||BLD&血液|D9^王^医生||||||"
                 "20250401113000|||F",
                 "OBX|1|NM|RBC^红细胞计数^L|||10\\S\\12/L|3.8-5.1||||X|||20250401100000")
    ct = hl7(msh("PACS", "FNXRMYY", "20250402163000", "ORU^R01^ORU_R01", "RV31-CT-1"), patient,
             "ORC|RE|RV31-CT-1^HIS|RV31-CT-1F^PACS||CM",
             "OBR|1|RV31-CT-1^HIS|RV31-CT-1F^PACS|CT001^胸部CT平扫^L|||20250402143000|||||||||D2001^吴^强||"
             "RV31-CT-1F||||20250402162800||CT|F",
             "OBX|1|TX|FINDINGS^检查所见^L||右肺上叶见2.1cm占位，考虑肺癌。||||||W|||20250402160000",
             "OBX|2|TX|IMP^诊断意见^L||双肺未见明显异常。||||||F|||20250402160000")
    visit = hl7(msh("HIS", "FNXRMYY", "20250403080500", "ADT^A04^ADT_A01", "RV31-ADT-1"), "EVN|A04|20250403080500",
                patient, "PV1|1|O|QK^^^FNXRMYY^^^^^全科门诊||||||||||||||||RV31-VISIT-7^^^FNXRMYY^VN",
                "DG1|1||I10^高血压^I10||20100101|F")
    pv1 = ("PV1|1|I|NEI^301^02^FNXRMYY^^^^^心内科病区|R|||D1001^陈^明^^^^^^FNXRMYY||||||||||||"
           "RV31-STAY-1^^^FNXRMYY^VN|||||||||||||||||||||||||20250405090000")
    admitted = hl7(msh("HIS", "FNXRMYY", "20250405091500", "ADT^A01^ADT_A01", "RV31-ADT-2"), "EVN|A01|20250405091500",
                   patient, pv1, "DG1|1||C34.1^肺癌^I10|||F|||||||||1")
    # the hospital withdraws that diagnosis (DG1-21 D): stored as verificationStatus entered-in-error
    withdrawn = hl7(msh("HIS", "FNXRMYY", "20250405150000", "ADT^A08^ADT_A01", "RV31-ADT-3"), "EVN|A08|20250405150000",
                    patient, pv1, "DG1|1||C34.1^肺癌^I10|||F|||||||||1||||||D")
    return [count, cannot, ct, visit, admitted, withdrawn]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(SUN, "ZY2025007777", "FNXRMYY", "孙^小梅", "19700303", "F", "13700007777")
    yield from fed_site(tmp_path_factory.mktemp("rvpages31"), patient, _messages(patient))


@pytest.fixture(scope="module")
def phone(site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    """Her phone, signed in once for the module (ID number, then the code the outbox holds)."""
    yield from signed_in_phone(site, tmp_path_factory.mktemp("rvpages31-shots"), SUN)


def _section(phone: Phone, tab: str) -> str:
    phone.click(f"[data-tab={tab}]")
    phone.cdp.wait(f"!document.getElementById('{tab}').hidden")
    return phone.text(tab)


def test_a_withdrawn_imaging_finding_is_not_shown_as_hers(phone: Phone) -> None:
    """FINDING (HIGH): pages31 made a withdrawn lab value (R4 entered-in-error, OBX-11 D or W) not
    shown, flagged or drawn -- but only in the lab results. The imaging card still prints every
    finding's value with no status: a CT finding the hospital posted as wrong (OBX-11 W, "transmitted
    for wrong patient") reads on her phone as her own -- 检查所见：右肺上叶见2.1cm占位，考虑肺癌。 -- under
    an HR mark, with nothing saying it was withdrawn. It is another person's finding (W), presented
    to her as hers; the FHIR record holds it as entered-in-error."""
    imaging = _section(phone, "imaging")
    assert "双肺未见明显异常" in imaging, imaging  # the report and its final impression are there
    assert "右肺上叶见2.1cm占位" not in imaging, imaging


def test_a_cancelled_result_still_showing_its_value_keeps_the_labs_flag(phone: Phone) -> None:
    """FINDING (MED): pages31's ``voided`` counts ``cancelled`` with ``entered-in-error``, and
    ``abnormality`` returns nothing for it -- but ``resultRow`` still shows a cancelled result's value
    (only entered-in-error hides it). A result the lab sent final as 5.9 (H) and then re-sent with
    OBX-11 X keeps its stored value (a thinner message never erases one) and reads
    "5.9 10^12/L 已取消" with no ↑ 偏高: the lab's high flag is taken away from a value still shown
    as hers, so an out-of-range count looks normal (main showed it with ↑ 偏高). Either the value is
    void (not shown) or, shown, it carries the flag the lab stated."""
    results = _section(phone, "results")
    rows = dict(phone.cdp.eval("[...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent, r.innerText])"))
    row = rows["红细胞计数"]
    assert "未完成" in row, rows  # the status pages31 added is said (worded 未完成 by pagesfix31, not 已取消)
    assert "5.9" not in row or "偏高" in row, (row, results)


def test_an_undated_visit_is_not_dated_by_a_diagnosis_onset(phone: Phone) -> None:
    """FINDING (MED): pages31 dates a visit sent without PV1-44 by the earliest ``whenOf`` of any
    record filed under it and says 本次就诊的检验检查记录日期为 <that day>. ``whenOf`` of a Condition is
    its onsetDateTime (DG1-5), so an outpatient registration of April 2025 carrying a diagnosis of
    hypertension first made in 2010 reads 就诊日期未注明；本次就诊的检验检查记录日期为 2010年1月1日 and
    stands on 2010年1月1日 in her timeline: a date the sender never gave the visit, stated as the date
    of test records that do not exist (a diagnosis, dated by its onset, is not one)."""
    visits = _section(phone, "visits")
    assert "门诊" in visits, visits
    assert "2010年1月1日" not in visits, visits
    days = phone.cdp.eval("(() => { document.querySelector('[data-tab=timeline]').click();"
                          " return Object.fromEntries([...document.querySelectorAll('#timeline section.day')].map("
                          "s => [s.querySelector('h3').innerText, s.innerText])); })()")
    assert "就诊" not in days.get("2010年1月1日", ""), days


def test_a_withdrawn_diagnosis_is_not_in_the_timeline_as_hers(phone: Phone, site: Engine) -> None:
    """FINDING (MED, on main too; missed by pages31): the timeline -- the tab the page opens on -- lists
    every Condition as 诊断 <name> with no word of its verification status. A diagnosis the hospital
    withdrew (DG1-21 D, stored as verificationStatus entered-in-error, shown as 录入有误 only on the
    diagnoses tab) reads in her timeline as "诊断 肺癌" on the day of her admission, exactly like a
    diagnosis that stands (here under 日期未注明: DG1-5 and DG1-19 are empty). pages31 made the timeline leave out a withdrawn lab value and its flag; a
    withdrawn diagnosis of cancer is the same case. Either it is left out or it is said withdrawn."""
    diagnoses = _section(phone, "diagnoses")
    assert "肺癌" in diagnoses and "录入有误" in diagnoses, diagnoses  # stored and worded as withdrawn there
    line = _section(phone, "timeline")
    # (the withdrawn diagnosis has no onset or recorded date: it stands under 日期未注明)
    assert "肺癌" not in line or "录入有误" in line or "作废" in line, line

