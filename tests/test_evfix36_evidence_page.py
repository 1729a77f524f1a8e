"""evfix36: the auditor's evidence says every value the lab reported, by the resident's page's rule,
and which order the money is charged to (rv36b LOW 9 and note 10).

- A titer (OBX-2 SN ``^1^:^320``, ``<^1^:^128``: a FHIR valueRatio), a range (NR ``10^20``, SN
  ``^^-^10``: a valueRange) and an instant (DTM: a valueDateTime) are each the repeat's 结果 Value on
  the evidence page, as the lab reported them -- the page had drawn none (its reader knew a quantity,
  a text and a coded finding only). One formatter, ``shared/value.js``, draws them on both pages; the
  resident's page now keeps a titer's comparator and a range's unit too.
- The 医嘱 Order line names the order the flag charges -- its test, the institution that placed it,
  when (北京时间), its placer and filler numbers as stored -- from that order's record, and nothing of
  any person in it (its requester, the patient). A flag naming another person's order (a row stored
  by an earlier release) shows none of that order.

Real HL7 v2 over ``POST /hl7v2`` into the real store; the real pages in headless Chromium (uvicorn;
an auditor signed in with password and TOTP; the resident with her ID number and the code sent to
her) at 1366 and 390 px. Screenshots go to ``$HUREN_SCREENSHOTS`` when set, else the test's folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_evidence33_page import SIZES, _shot_of, _shots
from tests.test_evidence33_pairs import A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpfix34_page import _open
from tests.test_insurance_ui import sign_in
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import Phone, nid
from tests.test_ui12_phone import outside
from tests.test_uifix35_evidence_page import HBSAG, LOCAL_HBV, _terms

# one repeated HBsAg a person, its value of each kind the converter stores (OBX-2 -> value[x]), and
# what the auditor reads for it: the digits, comparator and unit as sent, a time on Beijing's clock
REPEATS = [
    ("SN", "^1^:^320", "", "1:320"),                                        # a titer: valueRatio
    ("SN", "<^1^:^128", "", "<1:128"),                                      # below the first dilution
    ("NR", "10^20", "/HP", "10–20 /HP"),                                    # valueRange, its unit once
    ("SN", "^^-^10", "/HP", "≤10 /HP"),                                     # an open range: its bound
    ("DTM", "20260312013000+0000", "", "2026年3月12日 09:30（北京时间）"),  # valueDateTime, Beijing's clock
]
STORED = ["valueRatio", "valueRatio", "valueRange", "valueRange", "valueDateTime"]  # REPEATS' value[x]
PEOPLE = [nid(f"320923198504120{n:02d}") for n in (5, 7, 9, 11, 13)]  # men born 1985-04-12, as PID says


def _feed(engine: Engine, http: TestClient) -> dict[str, str]:  # noqa: F811
    """Each person's prior HBsAg at FNXRMYY (a coded 阴性, 2026-03-10), then FNZYY's order R<n> (08:00
    on the 12th) and its result (10:00) of the kind REPEATS gives: a flag each. Their ids by person."""
    for n, (person, (kind, value, unit, _)) in enumerate(zip(PEOPLE, REPEATS, strict=True), 1):
        who = {"person": person, "mrn": f"MRN-E36-{n}"}
        send(http, result(A, f"P{n}", LOCAL_HBV, "20260310090000+0800",
                          obx=f"OBX|1|CWE|{HBSAG}||NEG^阴性^HL70078||||||{{s}}", **who))
        send(http, order(B, f"R{n}", HBSAG, "20260312080000+0800", **who))
        send(http, result(B, f"R{n}", LOCAL_HBV, "20260312100000+0800",
                          obx=f"OBX|1|{kind}|{HBSAG}||{value}|{unit}|||||{{s}}", **who))
    rows = [r for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"] if r["item"] == "HBV"]
    flags = {evidence(engine, http, r["id"])["flag"]["person"]: r["id"] for r in rows}
    assert sorted(flags) == sorted(PEOPLE), rows
    return flags


def _order_line(browser: Browser) -> tuple[str, str]:  # noqa: F811
    """The 医嘱 Order line as read (its words: on a phone one part a line, on a desktop one line with
    " · " between the parts: read either way as parts joined by " · "), and its 溯源 Trace once opened."""
    words = browser.eval("(() => { const dt = [...document.querySelectorAll('#ev-facts > dt')]"
                         ".find(d => d.innerText === '医嘱 Order'); return dt.nextElementSibling.innerText; })()")
    words = " · ".join(line.strip() for line in words.split("\n") if line.strip())
    traced = browser.eval("(() => { const dt = [...document.querySelectorAll('#ev-facts > dt')]"
                          ".find(d => d.innerText === '医嘱 Order'); const t = dt.nextElementSibling.querySelector('details.trace');"
                          " t.open = true; const said = t.innerText; t.open = false; return said; })()")
    return words, traced


@pytest.mark.parametrize("size", list(SIZES))
def test_every_value_the_lab_reported_is_the_auditors_evidence(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                               browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    """Five repeats of HBsAg, one a person, each reported as another kind of value: each flag's
    evidence says the repeat's value as the lab reported it (1:320, <1:128, 10–20 /HP, ≤10 /HP, an
    instant on Beijing's clock), beside the prior's 阴性; and names the order it charges."""
    flags = _feed(engine, http)
    ev = evidence(engine, http, flags[PEOPLE[0]])
    assert ev["resultResource"]["valueRatio"] == {"numerator": {"value": 1}, "denominator": {"value": 320}}, ev
    assert ev["orderInstitution"] == B and ev["orderResource"]["id"] == ev["flag"]["order"].split("/")[1], ev
    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"qian.values.{size}", "auditor")
    shots = _shots(tmp_path)
    for n, (person, (kind, _, _, said)) in enumerate(zip(PEOPLE, REPEATS, strict=True), 1):
        _open(browser, flags[person])
        prior, repeat = _terms(browser, "#ev-prior-words"), _terms(browser, "#ev-repeat-words")
        assert prior["结果 Value"] == "阴性" and repeat.get("结果 Value") == said, (kind, prior, repeat)
        # and the folded FHIR JSON holds the value as stored (it had kept a quantity's and a text's only)
        stored = json.loads(browser.eval("document.querySelector('#ev-repeat').textContent"))
        assert stored.get(STORED[n - 1]), (kind, stored)
        words, traced = _order_line(browser)
        # which order: its test, who placed it, when (Beijing), its numbers as stored; nobody named
        assert words.startswith(f"HBsAg · 阜宁县中医院（FNZYY） · 开单 ordered 2026年3月12日 08:00（北京时间） · "
                                f"医嘱号 placer R{n} · 执行号 filler FR{n}"), words
        assert "张" not in words and "王" not in browser.eval("document.querySelector('#evidence').innerText")
        ref = evidence(engine, http, flags[person])["flag"]["order"]
        assert ref in traced and f"urn:huren:id:HIS|R{n}" in traced and f"urn:huren:id:LIS|FR{n}" in traced, traced
        assert "ServiceRequest/" not in browser.eval("document.querySelector('#evidence').innerText")
        assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        if n in (1, 3):
            _shot_of(browser, "#evidence", shots / f"evfix36-{kind.lower()}{n}-{size}-evidence.png")


def test_a_flag_naming_another_persons_order_shows_none_of_it(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                               browser: Browser) -> None:  # noqa: F811
    """A flag row stored by an earlier release naming an order of someone else (the linker has refused
    such a link since evid35; a row written before is not re-decided): its evidence gives that order as
    not available, and its Order line says so -- no test, institution, date or number of that order."""
    flags = _feed(engine, http)
    theirs = evidence(engine, http, flags[PEOPLE[0]])["flag"]["order"]
    assert engine.recognition.flags.update(flags[PEOPLE[1]], {"order": theirs})
    ev = evidence(engine, http, flags[PEOPLE[1]])
    assert ev["flag"]["order"] == theirs and ev["orderResource"] is None and ev["orderInstitution"] is None, ev
    mine = evidence(engine, http, flags[PEOPLE[2]])  # the others' evidence is as it was
    assert mine["orderResource"]["identifier"][0]["value"] == "R3" and mine["orderInstitution"] == B
    sign_in(browser, server, engine, "/ui/duplicates", "qian.other", "auditor")
    _open(browser, flags[PEOPLE[1]])
    words, traced = _order_line(browser)
    assert words.startswith("医嘱 · （无权查看或已不存在 not available）"), words
    assert "R1" not in browser.eval("document.querySelector('#evidence').innerText") and theirs in traced


# --- the resident's page: the same rule ---------------------------------------------------------------

ZHAO = nid("32092319780303002")  # the 17th digit even: a woman


@pytest.fixture(scope="module")
def resident_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(ZHAO, "ZY2026003636", "FNXRMYY", "赵^晓梅", "19780303", "F", "13700003636")
    serology = hl7(msh("LIS", "FNXRMYY", "20260311080000", "ORU^R01^ORU_R01", "EF36-SER-1"), patient,
                   "ORC|RE|EF36-SER-1^HIS|EF36-SER-1F^LIS||CM",
                   "OBR|1|EF36-SER-1^HIS|EF36-SER-1F^LIS|SER^血清学^L|||202603110800||||||||BLD&血液|D9^王^医生||||||"
                   "202603110830|||F",
                   "OBX|1|SN|ASO^抗链球菌溶血素O滴度^L||<^1^:^128||||||F|||202603110800",
                   "OBX|2|SN|WF^肥达反应滴度^L||^1^:^320||||||F|||202603110800",
                   "OBX|3|NR|RBC^尿红细胞^L||10^20|/HP|||||F|||202603110800",
                   "OBX|4|SN|WBC^尿白细胞^L||^^-^5|/HP|||||F|||202603110800")
    yield from fed_site(tmp_path_factory.mktemp("evfix36"), patient, [serology])


def test_the_residents_page_says_a_titer_and_a_range_by_the_same_rule(resident_site: Engine, tmp_path: Path) -> None:
    """Her serology: a titer below the first dilution, a titer, a range of cells per high-power field and
    an open one. Her page says "<1:128" (it had said 1/128: the lab's comparator dropped), "1:320",
    "10–20 /HP" and "≤5 /HP" (it had said 10–20 and –5, no unit) -- the evidence page's words."""
    for phone in signed_in_phone(resident_site, tmp_path, ZHAO):
        p: Phone = phone
        p.click("[data-tab=results]")
        p.cdp.wait("!document.getElementById('results').hidden")
        rows = dict(p.cdp.eval("[...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent, r.querySelector('td.v').innerText])"))
        assert rows["抗链球菌溶血素O滴度"].startswith("<1:128"), rows
        assert rows["肥达反应滴度"].startswith("1:320") and rows["尿红细胞"].startswith("10–20 /HP"), rows
        assert rows["尿白细胞"].startswith("≤5 /HP"), rows
        assert outside(p.cdp, {"width": 390}) == []
        p.shot("evfix36-resident-titers")
