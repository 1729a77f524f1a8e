"""pagesfix31: records the hospital withdrew (R4 entered-in-error) on every card of the resident's page
(/ui/me), how a visit sent without its date is dated, and non-final values away from their row -- in
headless Chromium on a 390-px phone, through the real path (HL7 v2 over POST /hl7v2 to uvicorn, the
real store, her own sign-in with ID number and SMS code).

One resident, messages from the county hospital:
- a prescription (RDE) filed under an outpatient visit sent without its date (PV1-19, no PV1-44),
  ordered 5 March 2026 (ORC-9): the visit is dated by it and said to be dated by a prescription;
- a second prescription the pharmacy marks ORC-5 ER (entered in error: R4 entered-in-error);
- a vaccination the health centre deletes (RXA-21 D: entered-in-error);
- an admission whose diagnosis (breast cancer) an A08 withdraws (DG1-21 D): not in her timeline;
- a chest X-ray whose impression OBX is posted as wrong (OBX-11 W): the converter still builds the
  report's conclusion and its text document from it (left to the HL7 side), the page must not show it;
- two glucose results, the later preliminary (OBX-11 P) and high: the timeline's abnormal line and the
  trend mark it preliminary;
- an outpatient registration (A04) without PV1-44 whose only record is a diagnosis with an onset:
  said undated, not dated by the onset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_record_ui import _http, hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, _free_port, nid, serving
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

QIAN = nid("32092319720404004")


def _messages(patient: str) -> list[bytes]:
    undated_visit = "PV1|1|O|XNK^^^FNXRMYY^^^^^心内科门诊||||D1001^陈^明||||||||||||PF31-VISIT-1^^^FNXRMYY^VN"
    rx = hl7(msh("HIS", "FNXRMYY", "20260305100000", "RDE^O11^RDE_O11", "PF31-RDE-1"), patient, undated_visit,
             "ORC|NW|PF31-RX-1^HIS|PF31-RX-1^PHARM||IP||||20260305100000|N002^赵^护士||D1001^陈^明",
             "RXE|^BID&0800,2000^^20260305|CN-NIF^硝苯地平缓释片^L|20||mg^毫克^UCUM|TAB^片|每日2次，每次1片，饭后口服|||"
             "28|片^片|2|||||||||||||||I10^高血压^I10",
             "RXR|PO^口服^HL70162")
    wrong_rx = hl7(msh("HIS", "FNXRMYY", "20260306100000", "RDE^O11^RDE_O11", "PF31-RDE-2"), patient,
                   "ORC|NW|PF31-RX-2^HIS|PF31-RX-2^PHARM||ER||||20260306100000|N002^赵^护士||D1001^陈^明",
                   "RXE|^QD^^20260306|CN-TAM^他莫昔芬片^L|10||mg^毫克^UCUM|TAB^片|每日1次，每次1片|||"
                   "30|片^片|0",
                   "RXR|PO^口服^HL70162")
    vaccine = hl7(msh("HIS", "FNXRMYY", "20261008094000", "VXU^V04^VXU_V04", "PF31-VXU-1"), patient,
                  "ORC|RE|PF31-IM-1^HIS|PF31-IM-1^FNXRMYY||CM",
                  "RXA|0|1|20261008093000||CN-HPV^九价HPV疫苗^L|0.5|mL^毫升^UCUM||00^New Record^NIP001|N001^王^护士|||||"
                  "HP2026-7|20270630||||CP|D",
                  "RXR|IM^肌内注射^HL70162|LD^左三角肌^HL70163")
    pv1 = ("PV1|1|I|NEI^301^02^FNXRMYY^^^^^心内科病区|R|||D1001^陈^明^^^^^^FNXRMYY||||||||||||"
           "PF31-STAY-1^^^FNXRMYY^VN|||||||||||||||||||||||||20260405090000")
    admitted = hl7(msh("HIS", "FNXRMYY", "20260405091500", "ADT^A01^ADT_A01", "PF31-ADT-1"), "EVN|A01|20260405091500",
                   patient, pv1, "DG1|1||C50.9^乳腺癌^I10|||F|||||||||1")
    withdrawn = hl7(msh("HIS", "FNXRMYY", "20260405150000", "ADT^A08^ADT_A01", "PF31-ADT-2"), "EVN|A08|20260405150000",
                    patient, pv1, "DG1|1||C50.9^乳腺癌^I10|||F|||||||||1||||||D")
    xray = hl7(msh("PACS", "FNXRMYY", "20260402163000", "ORU^R01^ORU_R01", "PF31-DR-1"), patient,
               "ORC|RE|PF31-DR-1^HIS|PF31-DR-1F^PACS||CM",
               "OBR|1|PF31-DR-1^HIS|PF31-DR-1F^PACS|DR001^胸部正位片^L|||20260402143000|||||||||D2001^吴^强||"
               "PF31-DR-1F||||20260402162800||DX|F",
               "OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。||||||F|||20260402160000",
               "OBX|2|TX|IMP^诊断意见^L||左肺下叶结节，建议复查。||||||W|||20260402160000")

    def glucose(control: str, when: str, value: str, flag: str, status: str) -> bytes:
        return hl7(msh("LIS", "FNXRMYY", when + "0000", "ORU^R01^ORU_R01", control), patient,
                   f"ORC|RE|{control}^HIS|{control}F^LIS||CM",
                   f"OBR|1|{control}^HIS|{control}F^LIS|SHQ^生化^L|||{when}0000||||||||BLD&血液|D9^王^医生||||||"
                   f"{when}3000|||{status}",
                   f"OBX|1|NM|GLU^葡萄糖^L||{value}|mmol/L|3.9-6.1|{flag}|||{status}|||{when}0000")

    registered = hl7(msh("HIS", "FNXRMYY", "20260503080500", "ADT^A04^ADT_A01", "PF31-ADT-3"), "EVN|A04|20260503080500",
                     patient, "PV1|1|O|QK^^^FNXRMYY^^^^^全科门诊||||||||||||||||PF31-VISIT-2^^^FNXRMYY^VN",
                     "DG1|1||E11^2型糖尿病^I10||20080601|F")
    lipids = hl7(msh("LIS", "FNXRMYY", "20260210110000", "ORU^R01^ORU_R01", "PF31-TC-1"), patient,
                 "ORC|RE|PF31-TC-1^HIS|PF31-TC-1F^LIS||CM",
                 "OBR|1|PF31-TC-1^HIS|PF31-TC-1F^LIS|XZ^血脂^L|||20260210080000||||||||BLD&血液|D9^王^医生||||||"
                 "20260210103000|||F",
                 "OBX|1|NM|TC^总胆固醇^L||6.8|mmol/L|2.8-5.2|H|||F|||20260210100000")
    return [rx, wrong_rx, vaccine, admitted, withdrawn, xray,
            glucose("PF31-GLU-1", "2026040108", "5.6", "N", "F"), glucose("PF31-GLU-2", "2026042108", "7.4", "H", "P"),
            registered, lipids]


def fed_site(tmp: Path, patient: str, messages: list[bytes]) -> Iterator[Engine]:
    """A served site (uvicorn, the real store) fed ``messages`` over ``POST /hl7v2``, each answered AA;
    shared by the resident-page modules of the thirty-first round (pages31, rvpages31, pagesfix31)."""
    engine = Engine(Settings(data_dir=tmp / "var", http_port=_free_port(), mllp_port=0))
    with serving(engine):
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for msg in messages:
            status, headers, ack = _http("POST", engine.settings.public_base_url + "/hl7v2", sender, msg,
                                         "x-application/hl7-v2+er7")
            assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
        yield engine
    engine.close()


def signed_in_phone(site: Engine, shots: Path, national_id: str) -> Iterator[Phone]:
    """Her 390-px phone, signed in once (ID number, then the code the outbox holds), page loaded."""
    p = Phone(shots)
    cdp = p.cdp
    try:
        p.size(390, 844, mobile=True)
        cdp.call("Page.navigate", url=site.settings.public_base_url + "/ui/me/")
        cdp.wait("location.pathname === '/ui/me/' && document.getElementById('signin')?.hidden === false")
        cdp.eval("document.getElementById('login').click()")
        cdp.wait("location.pathname === '/auth/authorize' && !!document.getElementById('national_id')")
        cdp.eval(f"document.getElementById('national_id').value = '{national_id}'; document.forms[0].submit()")
        cdp.wait("!!document.getElementById('code')")
        code = json.loads((site.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")
        cdp.wait("document.body.dataset.ready === '1'")
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(QIAN, "ZY2026008888", "FNXRMYY", "钱^小红", "19720404", "F", "13700008888")
    for engine in fed_site(tmp_path_factory.mktemp("pagesfix31"), patient, _messages(patient)):
        # the hospital's system withdraws the lipid report over FHIR (status entered-in-error) and
        # leaves its result final: the result goes with its report
        base = engine.settings.public_base_url
        his = engine.auth.issue_system_token("his-fnxrmyy", "system/*.cruds")
        found = json.loads(_http("GET", base + "/fhir/DiagnosticReport?identifier=PF31-TC-1F", his)[2])
        (report,) = [e["resource"] for e in found.get("entry", [])]
        report["status"] = "entered-in-error"
        status, _, body = _http("PUT", base + "/fhir/DiagnosticReport/" + report["id"], his,
                                json.dumps(report, ensure_ascii=False).encode())
        assert status == 200, body
        yield engine


@pytest.fixture(scope="module")
def phone(site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    yield from signed_in_phone(site, tmp_path_factory.mktemp("pagesfix31-shots"), QIAN)


def _section(phone: Phone, tab: str) -> str:
    phone.click(f"[data-tab={tab}]")
    phone.cdp.wait(f"!document.getElementById('{tab}').hidden")
    return phone.text(tab)


def _cards(phone: Phone, tab: str) -> list[str]:
    _section(phone, tab)
    return phone.cdp.eval(f"[...document.querySelectorAll('#{tab} article.card')].map(a => a.innerText)")


def test_withdrawn_medicine_and_vaccination_say_withdrawn_and_nothing_else(phone: Phone) -> None:
    """Their cards keep the name and say the hospital withdrew them; no dose, lot or amount (which may
    be another person's); and the timeline does not list them as hers."""
    meds = {c.split("\n")[0]: c for c in _cards(phone, "meds")}
    wrong = next(c for t, c in meds.items() if "他莫昔芬" in t)
    assert "医院已作废此记录" in wrong and "每日1次" not in wrong and "30 片" not in wrong, meds
    kept = next(c for t, c in meds.items() if "硝苯地平" in t)
    assert "每日2次" in kept and "作废" not in kept, meds
    vaccine = _cards(phone, "immunisations")
    assert len(vaccine) == 1 and "九价HPV疫苗" in vaccine[0] and "医院已作废此记录" in vaccine[0], vaccine
    assert "HP2026-7" not in vaccine[0] and "0.5" not in vaccine[0], vaccine
    line = _section(phone, "timeline")
    assert "他莫昔芬" not in line and "九价HPV疫苗" not in line and "乳腺癌" not in line, line
    assert "硝苯地平" in line, line


def test_a_visit_is_dated_by_its_prescription_and_said_so_and_one_dated_by_nothing_is_said_undated(phone: Phone) -> None:
    """A visit named by a prescription message (no PV1-44) is dated by the prescription's order time
    and says so (not "检验检查记录": there are none); a registration whose only record is a diagnosis
    with a 2008 onset is said undated, not dated 2008."""
    visits = _cards(phone, "visits")
    by_rx = [c for c in visits if "心内科门诊" in c or "2026年3月5日" in c]
    assert any("就诊日期未注明；本次就诊的处方用药记录日期为 2026年3月5日" in c for c in by_rx), visits
    assert not any("检验检查记录" in c for c in visits), visits
    assert not any("2008" in c for c in visits), visits
    assert any("就诊日期未注明" in c and "日期为" not in c for c in visits), visits
    days = phone.cdp.eval("(() => { document.querySelector('[data-tab=timeline]').click();"
                          " return Object.fromEntries([...document.querySelectorAll('#timeline section.day')].map("
                          "s => [s.querySelector('h3').innerText, s.innerText])); })()")
    assert "按本次就诊的处方用药记录排在这一天" in days["2026年3月5日"], days
    assert "就诊" not in days.get("2008年6月1日", ""), days


def test_a_withdrawn_impression_is_not_shown_as_the_conclusion(phone: Phone) -> None:
    imaging = _section(phone, "imaging")
    assert "双肺纹理清晰" in imaging and "医院已作废此结果" in imaging, imaging
    assert "左肺下叶结节" not in imaging, imaging
    assert "左肺下叶结节" not in _section(phone, "timeline")
    # the report's text document carries every OBX: the withdrawn impression's line is left out
    documents = _section(phone, "documents")
    assert "胸部正位片" in documents and "双肺纹理清晰" in documents and "左肺下叶结节" not in documents, documents


def test_a_preliminary_value_is_marked_in_the_timeline_and_the_trend(phone: Phone) -> None:
    line = _section(phone, "timeline")
    assert "葡萄糖 ↑ 偏高（初步）" in line, line
    _section(phone, "trends")
    labels = phone.cdp.eval("[...document.querySelectorAll('#trends article.chart')].filter(a => "
                            "a.querySelector('h3').innerText.includes('葡萄糖')).map(a => "
                            "[...a.querySelectorAll('svg text')].map(t => t.textContent))")
    assert len(labels) == 1 and "7.4↑（初步）" in labels[0] and "5.6" in labels[0], labels


def test_a_result_of_a_withdrawn_report_is_withdrawn_with_it(phone: Phone) -> None:
    """The lipid report the hospital withdrew over FHIR, its total cholesterol left final: the report
    heading had said 医院已作废此结果 while 6.8 ↑ 偏高 stood below it, counted and flagged as hers."""
    rows = dict(phone.cdp.eval("(() => { document.querySelector('[data-tab=results]').click();"
                               " return [...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent, r.innerText]); })()"))
    row = rows["总胆固醇"]
    assert "医院已作废此结果" in row and "6.8" not in row and "偏高" not in row, rows
    line = _section(phone, "timeline")
    assert "总胆固醇" not in line and "血脂" not in line, line


def test_in_english_and_within_the_phone(phone: Phone) -> None:
    phone.click("#lang")
    try:
        phone.cdp.wait("document.documentElement.lang === 'en'")
        visits = _section(phone, "visits")
        assert "Visit date not stated; the prescriptions and medicines filed under this visit are dated" in visits, visits
        assert outside(phone.cdp, {"width": 390}) == []
        meds = _section(phone, "meds")
        assert "Withdrawn by the hospital (entered in error)" in meds, meds
        assert outside(phone.cdp, {"width": 390}) == []
        _section(phone, "timeline")
        assert outside(phone.cdp, {"width": 390}) == []
    finally:
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'zh-CN'")
