"""pages33: what a resident reads on /ui/me about where she stayed, a visit she registered for and
results not simply final -- in headless Chromium (a 390-px phone and a 1366-px desktop), through the
real path (HL7 v2 over POST /hl7v2 to uvicorn, the real store, her own sign-in).

One resident, messages from two member hospitals:
- an admission to the county hospital's ward NEI, room 301, bed 02, sent by codes only (the site's
  ward table names NEI 心内科病区): her visit reads 心内科病区 301房 02床 -- which number is the room
  and which the bed, said in words (they read "301 02" before);
- an admission to the TCM hospital's ICU, room 5, bed 3 (no table names ICU): ICU（院内代码） 5房 3床;
- an outpatient registration (ADT^A04, PV1-2 O): stored in-progress (not planned) and read 已到院,
  not 计划中;
- a liver panel whose ALT is sent appended (OBX-11 B, "without change to the original result
  values"): 已更新, not the stronger 已更正; its bilirubin could not be obtained (OBX-11 X): 未完成.
The Locations are stored named and nested (bed partOf room partOf ward), the HR mark names the
community by its name. Screenshots: HUREN_SCREENSHOTS (else the test's temporary folder).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from engine.engine import Engine
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import _http, hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

ZHOU = nid("32092319700707006")


def _messages(patient: str) -> list[bytes]:
    at_zyy = patient.replace("FNXRMYY", "FNZYY")
    county = hl7(msh("HIS", "FNXRMYY", "20260310091500", "ADT^A01^ADT_A01", "P33-ADT-1"), "EVN|A01|20260310091500",
                 patient, "PV1|1|I|NEI^301^02^FNXRMYY|R|||D1001^陈^明^^^^^^FNXRMYY||||||||||||"
                 "P33-STAY-1^^^FNXRMYY^VN|||||||||||||||||||||||||20260310090000")
    icu = hl7(msh("HIS", "FNZYY", "20260401101500", "ADT^A01^ADT_A01", "P33-ADT-2"), "EVN|A01|20260401101500",
              at_zyy, "PV1|1|I|ICU^5^3^FNZYY|E|||Z2001^周^敏^^^^^^FNZYY||||||||||||"
              "P33-STAY-2^^^FNZYY^VN|||||||||||||||||||||||||20260401100000")
    registered = hl7(msh("HIS", "FNZYY", "20260312083000", "ADT^A04^ADT_A01", "P33-ADT-3"), "EVN|A04|20260312083000",
                     at_zyy, "PV1|1|O|FS^^^FNZYY||||||||||||||||P33-VISIT-3^^^FNZYY^VN|||||||||||||||||||||||||"
                     "20260312083000")
    liver = hl7(msh("LIS", "FNXRMYY", "20260311080000", "ORU^R01^ORU_R01", "P33-LFT-1"), patient,
                "ORC|RE|P33-LFT-1^HIS|P33-LFT-1F^LIS||CM",
                "OBR|1|P33-LFT-1^HIS|P33-LFT-1F^LIS|LFT^肝功能^L|||2026031108000||||||||BLD&血液|D9^王^医生||||||"
                "202603110830|||F",
                "OBX|1|NM|ALT^丙氨酸氨基转移酶^L||52|U/L|7-40|H|||B|||202603110800",
                "OBX|2|NM|AST^天门冬氨酸氨基转移酶^L||30|U/L|13-35|N|||F|||202603110800",
                "OBX|3|NM|TBIL^总胆红素^L|||umol/L|3.4-20.5||||X|||202603110800")
    return [county, icu, registered, liver]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(ZHOU, "ZY2026003333", "FNXRMYY", "周^晓梅", "19700707", "F", "13700003333")
    yield from fed_site(tmp_path_factory.mktemp("pages33"), patient, _messages(patient))


@pytest.fixture(scope="module")
def phone(site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    yield from signed_in_phone(site, tmp_path_factory.mktemp("pages33-shots"), ZHOU)


def _fhir(site: Engine, query: str) -> list[dict[str, Any]]:
    token = site.auth.issue_system_token("pages33-reader", "system/*.rs")
    found = json.loads(_http("GET", site.settings.public_base_url + "/fhir/" + query, token)[2])
    return [e["resource"] for e in found.get("entry", [])]


def _section(phone: Phone, tab: str) -> str:
    phone.click(f"[data-tab={tab}]")
    phone.cdp.wait(f"!document.getElementById('{tab}').hidden")
    return phone.text(tab)


def _cards(phone: Phone) -> list[str]:
    _section(phone, "visits")
    return phone.cdp.eval("[...document.querySelectorAll('#visits article.card')].map(a => a.innerText)")


def test_room_and_bed_are_said_in_words_and_a_ward_code_is_said_to_be_one(phone: Phone) -> None:
    cards = _cards(phone)
    county = next(c for c in cards if "阜宁县人民医院" in c)
    assert "科室/病区：心内科病区 301房 02床" in county and "NEI" not in county, cards
    icu = next(c for c in cards if "阜宁县中医院" in c and "住院" in c)
    assert "科室/病区：ICU（院内代码） 5房 3床" in icu, cards
    assert "正在住院" in county and "正在住院" in icu, cards  # a stay under way (no discharge sent)
    assert outside(phone.cdp, {"width": 390}) == []


def test_an_outpatient_registration_reads_came_in_not_planned(site: Engine, phone: Phone) -> None:
    (visit,) = [e for e in _fhir(site, "Encounter?identifier=P33-VISIT-3")]
    assert visit["status"] == "in-progress", visit["status"]  # ADT^A04, PV1-2 O (the IG's table-hl70004)
    cards = _cards(phone)
    outpatient = next(c for c in cards if "门诊" in c)
    assert "已到院" in outpatient and "计划中" not in outpatient and "正在住院" not in outpatient, cards
    assert "科室/病区：FS（院内代码）" in outpatient, cards


def test_appended_reads_updated_and_a_result_not_obtained_not_completed(phone: Phone) -> None:
    _section(phone, "results")
    rows = dict(phone.cdp.eval("[...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent, r.innerText])"))
    assert "已更新" in rows["丙氨酸氨基转移酶"] and "已更正" not in rows["丙氨酸氨基转移酶"], rows  # OBX-11 B
    assert "未完成" in rows["总胆红素"] and "已取消" not in rows["总胆红素"], rows  # OBX-11 X
    assert "已更正" not in _section(phone, "timeline")


def test_the_stored_locations_are_named_and_nested_and_the_hr_mark_names_the_community(site: Engine) -> None:
    (stay,) = _fhir(site, "Encounter?identifier=P33-STAY-1")
    bed_ref = stay["location"][0]["location"]["reference"]
    bed = _fhir(site, "Location?_id=" + bed_ref.split("/")[1])[0]
    room = _fhir(site, "Location?_id=" + bed["partOf"]["reference"].split("/")[1])[0]
    ward = _fhir(site, "Location?_id=" + room["partOf"]["reference"].split("/")[1])[0]
    kinds = [loc["physicalType"]["coding"][0]["code"] for loc in (bed, room, ward)]
    assert kinds == ["bd", "ro", "wa"] and "partOf" not in ward, (bed, room, ward)
    assert (bed["name"], room["name"], ward["name"]) == ("NEI 301房 02床", "NEI 301房", "NEI")
    assert stay["location"][0]["location"]["display"] == "NEI 301房 02床"
    tags = [t for o in _fhir(site, "Observation?code=AST") for t in o.get("meta", {}).get("tag", [])
            if t.get("system") == "urn:huren:hr-scope"]
    assert {"system": "urn:huren:hr-scope", "code": "community", "display": "阜宁县医共体内互认"} in tags, tags
    assert not any("funing" in json.dumps(t) for t in tags), tags


def test_in_english_and_on_a_desktop_the_same(phone: Phone) -> None:
    _section(phone, "timeline")
    phone.shot("resident-zhou-timeline-phone")
    _cards(phone)
    phone.shot("resident-zhou-visits-phone")
    _section(phone, "results")
    phone.shot("resident-zhou-results-phone")
    phone.size(1366, 768, mobile=False)
    try:
        cards = _cards(phone)
        assert any("心内科病区 301房 02床" in c for c in cards), cards
        phone.shot("resident-zhou-visits-desktop")
        _section(phone, "results")
        phone.shot("resident-zhou-results-desktop")
        assert outside(phone.cdp, {"width": 1366}) == []
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'en'")
        cards = _cards(phone)
        assert any("ICU (hospital's codes) 5房 3床" in c for c in cards), cards
        assert any("Came in" in c and "Planned" not in c for c in cards if "Outpatient" in c), cards
        cut = "[...document.querySelectorAll('#tabs button')].filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.innerText)"
        assert phone.cdp.eval(cut) == []  # Appointments, Documents had been cut at 1366 px
        results = _section(phone, "results")
        assert "Updated" in results and "Not completed" in results and "Corrected" not in results, results
        phone.shot("resident-zhou-results-desktop-en")
        phone.size(390, 844, mobile=True)
        assert phone.cdp.eval(cut) == [] and outside(phone.cdp, {"width": 390}) == []
        phone.shot("resident-zhou-results-phone-en")
    finally:
        if phone.cdp.eval("document.documentElement.lang") == "en":
            phone.click("#lang")
            phone.cdp.wait("document.documentElement.lang === 'zh-CN'")
        phone.size(390, 844, mobile=True)
