"""pages31: what a resident reads on /ui/me about results that are not simply final, on a phone in
headless Chromium (thirty-first round).

A county hospital's LIS sends one blood count over real HTTP (POST /hl7v2 to uvicorn) whose OBX-11
statuses are the ones a lab really sends: P (preliminary), C (corrected), X (cannot be done, no
value), D (deleted: the value was entered in error) and N (not asked, no value). The page had shown
every value as if final -- the withdrawn 4.1 as her red cell count, flagged high and drawn in her
trend -- and the codes ``cannot-be-obtained``, ``not-asked`` and the visit status ``unknown`` as
English words; the visit the message names, sent without its date, stood undated at the timeline's end. What is asserted is the text the resident sees, in Chinese and after switching to
English; and that the words cover every R4 status code those fields can carry (read from the R4
schema the validator uses, so a code missing from the page's tables is found here, not by a person).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

OUYANG = nid("32092319700202002")
SCHEMA = Path(__file__).resolve().parent.parent / "conformance" / "schema" / "fhir.r4.schema.json.gz"


def _blood_count(patient: str) -> list[bytes]:
    """An earlier final red cell count, then the day whose results carry OBX-11 P, C, X, D and N."""
    earlier = hl7(msh("LIS", "FNXRMYY", "20250301110000", "ORU^R01^ORU_R01", "P31-RBC-0"), patient,
                  "ORC|RE|P31-O0^HIS|P31-F0^LIS||CM",
                  "OBR|1|P31-O0^HIS|P31-F0^LIS|XCG^血常规^L|||20250301080000||||||||BLD&血液|D9^王^医生||||||"
                  "20250301103000|||F",
                  "OBX|1|NM|RBC^红细胞计数^L||3.9|10\\S\\12/L|3.8-5.1|N|||F|||20250301100000")
    day = hl7(msh("LIS", "FNXRMYY", "20250401110000", "ORU^R01^ORU_R01", "P31-ST-1"), patient,
              # an outpatient visit the result message names (PV1-19): R4 status unknown, no period
              "PV1|1|O|NEI^301^02^FNXRMYY||||||||||||||||ZY2026009999-1^^^FNXRMYY^VN",
              "ORC|RE|P31-O1^HIS|P31-F1^LIS||CM",
              "OBR|1|P31-O1^HIS|P31-F1^LIS|XCG^血常规^L|||20250401080000||||||||BLD&血液|D9^王^医生||||||"
              "20250401103000|||P",
              "OBX|1|NM|WBC^白细胞计数^L||6.2|10\\S\\9/L|3.5-9.5|N|||P|||20250401100000",
              "OBX|2|NM|HGB^血红蛋白^L||98|g/L|115-150|L|||C|||20250401100000",
              "OBX|3|NM|PLT^血小板计数^L|||10\\S\\9/L|125-350||||X|||20250401100000",
              "OBX|4|NM|RBC^红细胞计数^L||5.9|10\\S\\12/L|3.8-5.1|H|||D|||20250401100000",
              "OBX|5|NM|HCT^红细胞压积^L|||%|35-45||||N|||20250401100000")
    return [earlier, day]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(OUYANG, "ZY2026009999", "FNXRMYY", "欧阳^娜娜", "19700202", "F", "13700009999")
    yield from fed_site(tmp_path_factory.mktemp("pages31"), patient, _blood_count(patient))


@pytest.fixture(scope="module")
def phone(site: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    """Her phone, signed in once for the module (ID number, then the code the outbox holds)."""
    yield from signed_in_phone(site, tmp_path_factory.mktemp("pages31-shots"), OUYANG)


def _rows(phone: Phone) -> list[tuple[str, str]]:
    """The results tables as she reads them, newest day first: (test name, the row's visible text)."""
    phone.click("[data-tab=results]")
    phone.cdp.wait("!document.getElementById('results').hidden")
    return [tuple(r) for r in phone.cdp.eval("[...document.querySelectorAll('#results tr')].map("
                                             "r => [r.querySelector('th').firstChild.textContent, r.innerText])")]


def test_results_say_preliminary_corrected_withdrawn_and_why_a_value_is_missing(phone: Phone) -> None:
    both = _rows(phone)
    phone.shot("pages31-results-phone")
    rows = dict(both[:5])  # 1 April's five (1 March's red cell count is the sixth row)
    assert [n for n, _ in both] == ["白细胞计数", "血红蛋白", "血小板计数", "红细胞计数", "红细胞压积", "红细胞计数"], both
    assert "3.9" in both[5][1], both
    assert "6.2" in rows["白细胞计数"] and "初步结果，可能更改" in rows["白细胞计数"], rows
    assert "98 g/L" in rows["血红蛋白"] and "偏低" in rows["血红蛋白"] and "已更正" in rows["血红蛋白"], rows
    assert "未能测出" in rows["血小板计数"] and "未完成" in rows["血小板计数"], rows
    assert "未检测" in rows["红细胞压积"], rows
    # the value the lab withdrew is not shown as hers, nor flagged: only that it was withdrawn
    withdrawn = rows["红细胞计数"]
    assert "作废" in withdrawn and "5.9" not in withdrawn and "偏高" not in withdrawn and "超出" not in withdrawn, rows
    section = phone.text("results")
    for code in ("cannot-be-obtained", "not-asked", "preliminary", "entered-in-error", "unknown"):
        assert code not in section, (code, section)
    # the day's heading counts the results there are (four: the withdrawn one is none) and says the
    # report is preliminary
    assert "4 项结果" in section and "初步结果" in section, section
    assert outside(phone.cdp, {"width": 390}) == []


def test_the_timeline_and_trend_leave_the_withdrawn_value_out(phone: Phone) -> None:
    phone.click("[data-tab=timeline]")
    phone.cdp.wait("!document.getElementById('timeline').hidden")
    line = phone.text("timeline")
    assert "1 项异常：血红蛋白 ↓ 偏低" in line and "红细胞计数" not in line, line
    phone.click("[data-tab=trends]")
    phone.cdp.wait("!document.getElementById('trends').hidden")
    # one red cell count left (3.9 on 1 March): no trend drawn from a withdrawn 5.9
    names = phone.cdp.eval("[...document.querySelectorAll('#trends article.chart h3')].map(h => h.innerText)")
    assert not any("红细胞计数" in n for n in names), names


def test_a_visit_sent_without_its_date_says_no_english_and_the_date_of_its_records(phone: Phone) -> None:
    """The visit the result message names (PV1-19, no PV1-44) had read 阜宁县人民医院 · unknown and
    stood at the end of the timeline under 日期未注明; it is now said as undated, with the date of the
    records filed under it (1 April, not the withdrawn value's), and placed on that day."""
    phone.click("[data-tab=visits]")
    phone.cdp.wait("!document.getElementById('visits').hidden")
    visits = phone.text("visits")
    assert "门诊" in visits and "阜宁县人民医院" in visits, visits
    assert "unknown" not in visits, visits
    assert "就诊日期未注明；本次就诊的检验检查记录日期为 2025年4月1日" in visits, visits
    phone.click("[data-tab=timeline]")
    phone.cdp.wait("!document.getElementById('timeline').hidden")
    days = phone.cdp.eval("Object.fromEntries([...document.querySelectorAll('#timeline section.day')].map("
                          "s => [s.querySelector('h3').innerText, s.innerText]))")
    assert "日期未注明" not in days, days
    april = days["2025年4月1日"]
    assert "门诊" in april and "就诊日期未注明，按本次就诊的检验检查记录排在这一天" in april, days


def test_in_english_the_same_words(phone: Phone) -> None:
    phone.click("#lang")
    try:
        phone.cdp.wait("document.documentElement.lang === 'en'")
        rows = dict(_rows(phone)[:5])
        assert "Preliminary, may change" in rows["白细胞计数"], rows
        assert "Could not be measured" in rows["血小板计数"] and "Not tested" in rows["红细胞压积"], rows
        assert "Withdrawn by the hospital" in rows["红细胞计数"] and "5.9" not in rows["红细胞计数"], rows
    finally:
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'zh-CN'")


@pytest.mark.parametrize(("table", "resources"), [
    ("encStatus", ("Encounter",)),
    ("obsStatus", ("Observation", "DiagnosticReport")),
    ("apptStatus", ("Appointment",)),
    ("taskStatus", ("Task",)),
])
def test_every_r4_status_code_has_words_in_both_languages(phone: Phone, table: str, resources: tuple[str, ...]) -> None:
    """Every code R4 allows in the status fields the page words (the schema's enums) is in the page's
    table in Chinese and in English (``""`` for a code that says nothing, such as unknown or final)."""
    definitions = json.loads(gzip.decompress(SCHEMA.read_bytes()))["definitions"]
    allowed = {c for r in resources for c in definitions[r]["properties"]["status"]["enum"]}
    for lang in ("zh-CN", "en"):
        listed = set(phone.cdp.eval(f"Object.keys(window.MeI18n.WORDS[{json.dumps(lang)}].{table})"))
        assert allowed <= listed, (lang, table, sorted(allowed - listed))
