"""The resident's whole record on /ui/me, used as an elderly resident would on a 360-px phone.

Three member hospitals send HL7 v2 for 赵桂兰 (and one for another resident) over real HTTP
(POST /hl7v2 to uvicorn): admission with allergy and diagnosis, lab results, a CT report, an
outpatient visit, a vaccination (VXU), a prescription (RDE), an appointment (SIU) and a referral
(REF). A hospital system then reads her results and another resident tries to, so "who looked"
has something to say. In headless Chromium she signs in
with her ID number and SMS code, reads the timeline from all three hospitals, sees abnormal
values in words, switches to large text, to English and back, and opens "who looked at my
record". Screenshots land in ``HUREN_SCREENSHOTS`` (or the test's tmp dir) for a person to check.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_ui import CHROMIUM, Phone, _free_port, nid, serving
from tests.test_ui12_phone import (
    outside,  # every visible element inside the screen, not only the page's width
)

ZHAO = nid("32092319480305002")
QIAN = nid("32092319510711003")


def hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode("utf-8") + b"\r"


def msh(app: str, inst: str, when: str, kind: str, control: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|FUNING|{when}||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8"


def pid(number: str, mrn: str, inst: str, name: str, birth: str, sex: str, phone: str = "") -> str:
    tel = f"^PRN^CP^^^^{phone}" if phone else ""
    return f"PID|1||{number}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{name}||{birth}|{sex}|||||{tel}"


def lab(inst: str, control: str, day: str, patient: str, order: tuple[str, str], *obx: tuple) -> bytes:
    """An ORU^R01 with one order and numeric results (code, name, value, unit, range, flag)."""
    rows = [f"OBX|{i}|NM|{c}^{n}^L||{v}|{u}|{r}|{f}|||F|||{day}1000" for i, (c, n, v, u, r, f) in enumerate(obx, 1)]
    return hl7(msh("LIS", inst, f"{day}1100", "ORU^R01^ORU_R01", control), patient,
               f"ORC|RE|{control}-O^HIS|{control}-F^LIS||CM",
               f"OBR|1|{control}-O^HIS|{control}-F^LIS|{order[0]}^{order[1]}^L|||{day}0800||||||||BLD&血液|D9^王^医生||||||{day}1030|||F",
               *rows)


def feeds() -> list[bytes]:
    zhao_rm = pid(ZHAO, "ZY2026000301", "FNXRMYY", "赵^桂兰", "19480305", "F", "13700001234")
    zhao_zy = pid(ZHAO, "MZ2026000777", "FNZYY", "赵桂兰", "19480305", "F")
    zhao_yl = pid(ZHAO, "YL2026000055", "FNYLWSY", "赵桂兰", "19480305", "F")
    qian = pid(QIAN, "ZY2026000999", "FNXRMYY", "钱^多多", "19510711", "M", "13700009999")
    return [
        hl7(msh("HIS", "FNXRMYY", "20260302091500", "ADT^A01^ADT_A01", "RM-ADT-1"), "EVN|A01|20260302091500", zhao_rm,
            "PV1|1|I|NEI^301^02^FNXRMYY^^^^^心内科病区|R|||D1001^陈^明^^^^^^FNXRMYY||||||||||||"
            "ZY2026000301-1^^^FNXRMYY^VN|||||||||||||||||||||||||20260302090000",
            "PV2|||R51^头晕^ICD10CN",
            "AL1|1|DA|Z001^青霉素^L|SV|皮疹",
            "DG1|1||I10.x00^高血压^ICD10CN||20260302|A"),
        lab("FNXRMYY", "RM-LIS-1", "20260302", zhao_rm, ("1100", "生化"),
            ("GLU", "葡萄糖", "7.4", "mmol/L", "3.9-6.1", "H"), ("K", "钾", "4.1", "mmol/L", "3.5-5.3", "N")),
        lab("FNZYY", "ZY-LIS-1", "20260615", zhao_zy, ("1020", "肝功能"),
            ("ALT", "谷丙转氨酶", "62", "U/L", "7-40", "H"), ("GLU", "葡萄糖", "6.8", "mmol/L", "3.9-6.1", "H")),
        hl7(msh("PACS", "FNZYY", "20260615163000", "ORU^R01^ORU_R01", "ZY-PACS-1"), zhao_zy,
            "ORC|RE|ZY-CT-1^HIS|ZY-CT-1F^PACS||CM",
            "OBR|1|ZY-CT-1^HIS|ZY-CT-1F^PACS|CT001^胸部CT平扫^L|||20260615143000|||||||||D2001^吴^强||ZY-CT-1F||||"
            "20260615162800||CT|F",
            "OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰，未见明显实质性病变。||||||F|||20260615160000",
            "OBX|2|TX|IMP^诊断意见^L||双肺未见明显异常。||||||F|||20260615160000"),
        hl7(msh("HIS", "FNYLWSY", "20260920080500", "ADT^A04^ADT_A01", "YL-ADT-1"), "EVN|A04|20260920080500", zhao_yl,
            "|".join(["PV1", "1", "O", "QK^^^FNYLWSY^^^^^全科门诊", "", "", "", "W0101^孙^丽^^^^^^FNYLWSY", *[""] * 11,
                      "YL2026000055-20260920^^^FNYLWSY^VN", *[""] * 24, "20260920080000"])),
        lab("FNYLWSY", "YL-LIS-1", "20260920", zhao_yl, ("XCG", "血常规"),
            ("HGB", "血红蛋白", "98", "g/L", "115-150", "L"), ("GLU", "葡萄糖", "5.2", "mmol/L", "3.9-6.1", "N")),
        # the new feeds: a vaccination at the health centre, a prescription and a follow-up
        # appointment at the county hospital, a referral up from the health centre
        hl7(msh("HIS", "FNYLWSY", "20261008094000", "VXU^V04^VXU_V04", "YL-VXU-1"), zhao_yl,
            "ORC|RE|YL-IM-1^HIS|YL-IM-1^FNYLWSY||CM",
            "RXA|0|1|20261008093000||CN-FLU^流感疫苗^L|0.5|mL^毫升^UCUM||00^New Record^NIP001|N001^王^护士|||||"
            "FL2026-118|20270630|||||CP|A",
            "RXR|IM^肌内注射^HL70162|LD^左三角肌^HL70163"),
        hl7(msh("HIS", "FNXRMYY", "20260305100000", "RDE^O11^RDE_O11", "RM-RDE-1"), zhao_rm,
            "PV1|1|O|XNK^^^FNXRMYY^^^^^心内科门诊||||D1001^陈^明||||||||||||ZY2026000301-2",
            "ORC|NW|RX-301^HIS|RX-301^PHARM||IP||||20260305100000|N002^赵^护士||D1001^陈^明",
            "RXE|^BID&0800,2000^^20260305|CN-NIF^硝苯地平缓释片^L|20||mg^毫克^UCUM|TAB^片|每日2次，每次1片，饭后口服|||"
            "28|片^片|2|||||||||||||||I10^高血压^I10",
            "RXR|PO^口服^HL70162"),
        hl7(msh("HIS", "FNXRMYY", "20261120090000", "SIU^S12^SIU_S12", "RM-SIU-1"),
            "SCH|" + "|".join(["APT-77^HIS", "APT-77^FNXRMYY", "", "", "", "", "FU^高血压复诊^L", "ROUTINE^常规^HL70276",
                               "15", "MIN", "^^15^20261210090000"] + [""] * 13 + ["Booked"]),
            "NTE|1||请带上近期血压记录", zhao_rm, "RGS|1|A", "AIS|1|A|CARD^心内科门诊^L|20261210090000|||15|MIN",
            "AIP|1|A|D1001^陈^明|D^医生", "AIL|1|A|门诊^201^1^FNXRMYY"),
        hl7(msh("HIS", "FNYLWSY", "20260920100000", "REF^I12^REF_I12", "YL-REF-1"),
            "RF1|A^^HL70283|R^^HL70280|CARD^上转：心内科进一步诊治^L|||RF-2026-07^FNYLWSY|20260920|20261020||"
            "I10^高血压^I10",
            "PRD|RP^转出医生^HL70286|孙^丽|||^WPN^PH^^^^88880000||W0101",
            "PRD|RT^接收医生^HL70286|陈^明|||^WPN^PH^^^^66660000||D1001",
            zhao_yl, "DG1|1||I10^高血压^I10||20260920|F", "NTE|1||血压控制不佳"),
        lab("FNXRMYY", "RM-LIS-2", "20260920", qian, ("1100", "生化"),
            ("GLU", "葡萄糖", "4.4", "mmol/L", "3.9-6.1", "N")),
    ]


def _http(method: str, url: str, token: str, body: bytes | None = None, ctype: str = "application/fhir+json"):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
    with urllib.request.urlopen(req) as r:  # noqa: S310 - our own test server
        return r.status, dict(r.headers), r.read()


@pytest.fixture
def community(tmp_path: Path):
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "var", http_port=port, mllp_port=0)
    engine = Engine(settings)
    with serving(engine):
        yield from _fed(engine)
    engine.close()


def _fed(engine: Engine):
    """The three hospitals' feeds, the other kinds of record, a hospital's read and a stranger's try."""
    settings = engine.settings
    base = settings.public_base_url
    sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
    for message in feeds():
        status, headers, ack = _http("POST", base + "/hl7v2", sender, message, "x-application/hl7-v2+er7")
        assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
    ids = engine.identity.patients_for_number(ZHAO)
    assert len(ids) == 3, ids  # one record per hospital, linked by her ID number
    engine.auth.registry.add("fnxrmyy-his", scopes=["system/*.cruds"], kind="system", name="阜宁县人民医院 HIS")
    his = engine.auth.issue_system_token("fnxrmyy-his", "system/*.cruds")
    # a doctor's system at the county hospital looks at her results (who-looked must say so)
    status, _, _ = _http("GET", f"{base}/fhir/Observation?subject=Patient/{ids[1]}", his)
    assert status == 200
    # 钱多多, signed in on his own phone, tries to open her record: refused, and she will see the attempt
    qian = engine.identity.patients_for_number(QIAN)[0]
    person = engine.identity.record(qian)["person"]
    token, _ = engine.auth.issue_token(subject=person, kind="patient", client_id="huren-me", scopes=["patient/*.rs"],
                                       patient=qian, person=person)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _http("GET", f"{base}/fhir/Patient/{ids[0]}", token)
    assert refused.value.code == 404
    yield engine, base


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_elderly_resident_reads_her_whole_record_on_a_small_phone(community, tmp_path):
    engine, base = community
    phone = Phone(tmp_path)
    cdp = phone.cdp
    try:
        phone.size(360, 740, mobile=True)
        cdp.call("Page.navigate", url=base + "/ui/me/")
        cdp.wait("document.getElementById('signin')?.hidden === false")
        signin = phone.text("signin")
        assert "身份证" in signin and "服务台" in signin  # what to do without a phone number on file
        phone.shot("01-signin-360")
        phone.click("#login")
        cdp.wait("location.pathname === '/auth/authorize' && !!document.getElementById('national_id')")
        assert "服务台" in cdp.eval("document.body.innerText")
        phone.shot("02-id-number-360")
        cdp.eval(f"document.getElementById('national_id').value = '{ZHAO}'; document.forms[0].submit()")
        cdp.wait("!!document.getElementById('code')")
        code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")
        cdp.wait("document.body.dataset.ready === '1'")
        assert cdp.eval("location.search") == ""

        # the banner says who this is, in Chinese (女, not "female"), with her three hospitals
        banner = phone.text("banner")
        assert banner.startswith("赵桂兰") and "女" in banner and "female" not in banner
        assert "1948年3月5日" in banner
        assert "过敏：青霉素（严重）" in banner  # what to tell any doctor, at the top
        for hospital in ("阜宁县人民医院", "阜宁县中医院", "阜宁县益林镇中心卫生院"):
            assert hospital in banner

        # one timeline, newest first, across the three hospitals and every kind of record
        timeline = phone.text("timeline")
        # kinds a resident's token can search on this server (the HL7 feeds for vaccinations,
        # medicines and appointments bring their search parameters): those must show; the others
        # must leave an empty section, not break the page
        kinds = {"Immunization": ("2026年10月8日", "流感疫苗", "immunisations"),
                 "MedicationRequest": ("2026年3月5日", "每日2次，每次1片，饭后口服", "meds"),
                 "Appointment": ("2026年12月10日", "高血压复诊", "appointments")}
        searchable = {t for t in kinds if engine.repository.params.compartment_params(t)}
        days = [d for t, (d, _, _) in kinds.items() if t in searchable] + ["2026年9月20日", "2026年6月15日", "2026年3月2日"]
        days.sort(key=lambda d: [int(x) for x in re.findall(r"\d+", d)], reverse=True)
        assert all(d in timeline for d in days), timeline
        assert [timeline.index(d) for d in days] == sorted(timeline.index(d) for d in days), timeline
        for words in ("上转：心内科进一步诊治", "高血压", "青霉素", "胸部CT平扫", "住院", "门诊", "血常规",
                      "阜宁县益林镇中心卫生院", "阜宁县中医院", "阜宁县人民医院"):
            assert words in timeline, words
        for rtype, (_, words, section) in kinds.items():
            if rtype in searchable:
                assert words in timeline and words in phone.text(section), rtype
            else:
                assert "暂无记录" in phone.text(section), rtype
        assert "血红蛋白 ↓ 偏低" in timeline and "谷丙转氨酶 ↑ 偏高" in timeline  # abnormal in words
        assert "4.4" not in cdp.eval("document.body.innerText")  # 钱多多's result is not hers
        assert outside(cdp, {"width": 360}) == []  # no sideways scrolling
        phone.shot("03-timeline-360")
        # what a screen reader needs: landmarks, one h1, labelled navigation, a live status, and
        # every button named by its text
        assert cdp.eval("!!document.querySelector('header') && !!document.querySelector('main#main')")
        assert cdp.eval("document.querySelectorAll('h1').length") == 1
        assert cdp.eval("document.getElementById('tabs').getAttribute('aria-label')") == "档案分类"
        assert cdp.eval("document.getElementById('status').getAttribute('aria-live')") == "polite"
        assert cdp.eval("[...document.querySelectorAll('button')].every(b => (b.getAttribute('aria-label') || b.textContent).trim())")
        assert cdp.eval("[...document.querySelectorAll('section.tab')].every(s => s.querySelector('h2'))")

        # results by category: the lab's flag and range, in words, not only colour
        phone.click("[data-tab=results]")
        results = phone.text("results")
        assert "7.4 mmol/L" in results and "↑ 偏高" in results and "参考范围 3.9-6.1" in results
        assert "98 g/L" in results and "↓ 偏低" in results
        assert cdp.eval("document.querySelectorAll('#results tr.abn').length") == 4
        # the blood count of a QC-passed health centre carries the mutual-recognition (HR) mark
        marks = cdp.eval("[...document.querySelectorAll('#results .hr')].map(m => m.textContent)")
        assert marks and all(m.startswith("HR 互认") and "可互认结果（医共体内互认" in m for m in marks), marks
        phone.shot("04-results-360")
        phone.click("[data-tab=referrals]")
        referrals = phone.text("referrals")
        assert "上转：心内科进一步诊治" in referrals and "阜宁县益林镇中心卫生院" in referrals and "进行中" in referrals
        if engine.repository.params.compartment_params("Task"):
            assert "对方已接收" in referrals  # the referral's task, in plain words
        phone.click("[data-tab=imaging]")
        assert "双肺未见明显异常" in phone.text("imaging")

        # large text: remembered, and still no sideways scrolling at 360 px
        phone.click("#bigtext")
        assert cdp.eval("document.documentElement.classList.contains('big')")
        assert cdp.eval("document.getElementById('bigtext').getAttribute('aria-pressed')") == "true"
        assert cdp.eval("localStorage.getItem('me.big')") == "1"
        assert cdp.eval("parseFloat(getComputedStyle(document.body).fontSize)") >= 22
        phone.click("[data-tab=results]")
        assert outside(cdp, {"width": 360}) == []
        phone.shot("05-results-big-360")
        phone.click("[data-tab=timeline]")
        assert outside(cdp, {"width": 360}) == []
        phone.shot("06-timeline-big-360")

        # English and back: every label follows, sex included, dates in each language's form
        phone.click("#lang")
        assert cdp.eval("document.documentElement.lang") == "en"
        banner = phone.text("banner")
        assert "Female" in banner and "5 Mar 1948" in banner
        timeline = phone.text("timeline")
        assert "Referral" in timeline and "Outpatient" in timeline and "20 Sep 2026" in timeline
        assert "↓ Low" in timeline and "低" not in timeline.replace("偏低", "")
        assert outside(cdp, {"width": 360}) == []  # longer English words still fit
        phone.shot("07-timeline-en-big-360")
        phone.click("#lang")
        assert cdp.eval("document.documentElement.lang") == "zh-CN" and "女" in phone.text("banner")

        # vaccinations, medicines, appointments and referral progress in plain words. Where this
        # server cannot yet search a kind for a resident (its search parameters come with the
        # feeds that carry it), the same resources, read over HTTP, are handed to the page's
        # renderer, so the wording is checked either way
        # (a referral's Task is outside the R4 compartment, and read by the page itself: the access
        # rules let a resident read a Task ``for`` them)
        missing = [t for t in ("Immunization", "MedicationRequest", "Appointment")
                   if not engine.repository.params.compartment_params(t)]
        if missing:
            his = engine.auth.issue_system_token("fnxrmyy-his", "system/*.cruds")
            mine = {f"Patient/{i}" for i in engine.identity.patients_for_number(ZHAO)}
            for rtype in missing:
                found = json.loads(_http("GET", f"{base}/fhir/{rtype}?_count=100", his)[2])
                hers = [e["resource"] for e in found.get("entry", [])
                        if {(e["resource"].get(k) or {}).get("reference") for k in ("for", "subject", "patient")} & mine]
                cdp.eval(f"state.{rtype} = {json.dumps(hers)}")
            cdp.eval("state.meds_all = [...state.MedicationRequest]; renderAll(); showTab('meds')")
        meds = phone.text("meds")
        assert "用法：每日2次，每次1片，饭后口服" in meds and "正在使用" in meds and "原因：高血压" in meds
        assert "处方" in meds and "阜宁县人民医院" in meds
        # the medicine's name is on its Medication resource: shown when the server includes it for
        # a resident, otherwise the card says where to find it instead of leaving a blank
        assert "硝苯地平缓释片" in meds and "名称请看医院的处方单" not in meds
        vaccines = phone.text("immunisations")
        assert "流感疫苗" in vaccines and "已接种" in vaccines and "剂量：0.5 毫升" in vaccines and "接种方式：肌内注射" in vaccines and "阜宁县益林镇中心卫生院" in vaccines
        appointments = phone.text("appointments")
        assert "高血压复诊" in appointments and "已预约" in appointments and "2026年12月10日 09:00" in appointments
        assert "科室：心内科门诊" in appointments and "备注：请带上近期血压记录" in appointments
        assert "阜宁县人民医院" in appointments
        referrals = phone.text("referrals")
        assert "对方医院已同意接收" in referrals  # the referral Task's state, in words
        assert "接诊：陈明 医生" in referrals and "转出：孙丽 医生" in referrals  # the doctors, by name
        timeline = phone.text("timeline")
        assert timeline.index("2026年12月10日") < timeline.index("2026年10月8日") < timeline.index("2026年9月20日")
        phone.click("[data-tab=meds]")
        phone.shot("06b-meds-big-360")

        # the FHIR export: Patient/$everything of every linked record, in one Bundle (the file the
        # page would save is caught where the page hands it to the browser)
        cdp.eval("window.saveBlob = (blob, name) => { window.__saved = { blob, name }; }")
        phone.click("#export")
        cdp.wait("!!window.__saved")
        bundle = json.loads(cdp.eval("window.__saved.blob.text()"))
        assert cdp.eval("window.__saved.name").endswith(".json") and bundle["type"] == "collection"
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        patients = {e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
        assert patients == set(engine.identity.patients_for_number(ZHAO))  # all three hospitals' records
        assert kinds.count("Observation") >= 6 and "AllergyIntolerance" in kinds and "Encounter" in kinds
        assert "Task" in kinds and "Medication" in kinds  # hers, though outside the R4 compartment
        everyone_else = set(engine.identity.patients_for_number(QIAN))
        assert not everyone_else & {e["resource"].get("subject", {}).get("reference", "").split("/")[-1]
                                    for e in bundle["entry"]}

        # who looked at my record: the county hospital's system read her results (the page asks
        # the server, which brings the audit trail's views up to date first)
        cdp.call("Page.reload")
        cdp.wait("document.body.dataset.ready === '1'")
        assert cdp.eval("document.documentElement.classList.contains('big')")  # remembered across loads
        phone.click("[data-tab=who]")
        who = phone.text("who")
        assert "阜宁县人民医院 HIS（医院信息系统）查看了您的检验结果" in who or \
               "阜宁县人民医院 HIS（医院信息系统）查询了您的检验结果" in who, who
        assert "钱" not in who and "unauthenticated" not in who and "Provenance" not in who
        assert "另一位居民（通过「互认·我的健康档案」）试图查看您的档案 — 被拒绝" in who, who
        phone.shot("08-who-big-360")
        cdp.eval("document.getElementById('who-hide-own').click()")
        assert "您本人" in phone.text("who")  # her own views, on request

        # desktop size, normal text
        phone.click("#bigtext")
        phone.size(1280, 900, mobile=False)
        phone.click("[data-tab=timeline]")
        phone.shot("09-timeline-desktop")
        phone.click("[data-tab=results]")
        phone.shot("10-results-desktop")
        # the print summary lays out every category (print media)
        cdp.call("Emulation.setEmulatedMedia", media="print")
        assert cdp.eval("getComputedStyle(document.getElementById('allergies')).display") != "none"
        assert cdp.eval("getComputedStyle(document.getElementById('tabs')).display") == "none"
        phone.shot("11-print-desktop")
        cdp.call("Emulation.setEmulatedMedia", media="")
    finally:
        phone.close()
