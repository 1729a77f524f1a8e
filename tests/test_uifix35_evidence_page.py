"""uifix35: the duplicate flag's evidence as an auditor reads it, after review rvui35 -- a result
beyond its assay's range keeps its comparator on both pages that draw results (the auditors' and the
resident's: one rule, ``shared/exact.js``'s ``quantity``); a qualitative result (阴性/阳性) is shown as
a value; the HR scope is said in words; times say they are Beijing's; references and LOINC codes are
kept for tracing but folded beneath what a person reads (溯源 Trace).

Real HL7 v2 over ``POST /hl7v2`` into the real store; the real pages in headless Chromium (uvicorn; a
staff auditor signed in with password and TOTP; the resident with her ID number and the code sent to
her), at 1366 and 390 px. Screenshots go to ``$HUREN_SCREENSHOTS`` when set, else the test's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_evidence33_page import SIZES, _shot_of, _shots
from tests.test_evidence33_pairs import A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import flag_of
from tests.test_evpfix34_page import _open
from tests.test_insurance_ui import sign_in
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_probepay26_windows import order, result
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import Phone, nid
from tests.test_rvui35_probes import _prior, _repeat
from tests.test_ui12_phone import outside

HBSAG = "5196-1^HBsAg^LN"  # the hepatitis B markers (乙肝标志物, HBV): a whole item, a qualitative finding
LOCAL_HBV = "YGBZ^乙肝表面抗原^L"  # the labs' own OBR-4 code no map knows: the results are the Observations


def _hbv(http: TestClient, prior: str, repeat: str) -> None:  # noqa: F811
    """FNXRMYY's HBsAg of 2026-03-10 and FNZYY's, ordered and reported on 2026-03-12: the prior a
    coded finding (OBX-2 CWE, HL7 table 0078's NEG with the lab's word), the repeat the lab's text
    (OBX-2 ST), as labs send them."""
    send(http, result(A, "A1", LOCAL_HBV, "20260310090000+0800", obx=f"OBX|1|CWE|{HBSAG}||{prior}||||||{{s}}"))
    send(http, order(B, "B1", HBSAG, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_HBV, "20260312100000+0800", obx=f"OBX|1|ST|{HBSAG}||{repeat}||||||{{s}}"))


def _terms(browser: Browser, selector: str) -> dict[str, str]:  # noqa: F811
    """The (term, value) lines of the ``dl`` at ``selector``, as a person reads them (innerText)."""
    return dict(browser.eval(f"[...document.querySelector({selector!r}).querySelectorAll(':scope > dt')]"
                             ".map(dt => [dt.innerText, dt.nextElementSibling.innerText])"))


@pytest.mark.parametrize("size", list(SIZES))
def test_a_qualitative_result_is_shown_as_the_lab_worded_it(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                            browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    """A whole item's two results are what was compared: the prior a coded 阴性 (CWE), the repeat the
    lab's text 阳性 (ST). Each is the auditor's 结果 Value -- a negative prior beside a positive repeat
    is the very fact a review weighs; only a number had been drawn."""
    _hbv(http, "NEG^阴性^HL70078", "阳性")
    row = flag_of(engine, http, "HBV")
    ev = evidence(engine, http, row["id"])
    # the preconditions: the store kept each as sent (a coded finding, a text)
    assert ev["priorResource"]["valueCodeableConcept"]["coding"][0]["code"] == "NEG", ev["priorResource"]
    assert ev["resultResource"]["valueString"] == "阳性", ev["resultResource"]
    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"zhou.hbv.{size}", "auditor")
    _open(browser, row["id"])
    assert browser.eval("document.querySelector('.results').hidden") is False
    prior, repeat = _terms(browser, "#ev-prior-words"), _terms(browser, "#ev-repeat-words")
    assert prior["结果 Value"] == "阴性" and repeat["结果 Value"] == "阳性", (prior, repeat)
    assert prior["时间 When"] == "2026年3月10日 09:00（北京时间）", prior
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#evidence", _shots(tmp_path) / f"uifix35-qualitative-{size}-evidence.png")


@pytest.mark.parametrize("size", list(SIZES))
def test_the_evidence_reads_in_words_its_codes_kept_for_tracing(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    """The liver panel repeated, ALT run twice by the repeat's lab (one beyond the assay's range, SN
    '>^500'). What the auditor reads is words: the recognition scope in words (互认, the HR mark named
    as such), no ``Observation/<uuid>`` among them. Every reference the evidence cites is still on the
    page for whoever traces it, folded under 溯源 Trace, and opens with a click."""
    _prior(http)
    _repeat(http, "OBX|1|SN|1742-6^ALT^LN||>^500|U/L|||||F|||20260312110000+0800\n"
                  "OBX|2|NM|1920-8^AST^LN||35|U/L|||||F|||20260312100000+0800\n"
                  "OBX|3|NM|1742-6^ALT^LN||88|U/L|||||{s}")
    row = flag_of(engine, http)
    ev = evidence(engine, http, row["id"])
    cited = {r for p in ev["pairs"] if p["analyte"] for r in (p["result"], p["prior"], *(o["reference"] for o in p["resultAlso"]))}
    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"zhou.words.{size}", "auditor")
    _open(browser, row["id"])
    facts = _terms(browser, "#ev-facts")
    # FNXRMYY's QC (mappings/recognition/qc.yaml) carries the city's mark: said what it is, not "HR范围"
    scope = facts["互认范围 Recognition scope"]
    assert scope.startswith("医共体内互认 community") and "前次结果另可在以下范围互认（互认标志 HR）：盐城市HR" in scope, scope
    assert "HR范围" not in browser.eval("document.querySelector('#evidence').innerText")
    # the values as reported, the other result's time said to be Beijing's
    also = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .also li b.value')].map(b => b.textContent)")
    assert also == [">500 U/L"], also
    assert "同项其他结果 1 条（北京时间）" in browser.eval("document.querySelector('#ev-pairs .also h5').innerText")
    # the references: none in what is read, every one kept (folded) and shown when opened
    shown = browser.eval("document.querySelector('#evidence').innerText")
    assert "Observation/" not in shown and "DiagnosticReport/" not in shown, shown
    kept = set(browser.eval("[...document.querySelectorAll('#evidence details.trace small.ref')].map(s => s.textContent)"))
    assert cited <= kept and {ev["flag"]["prior"], ev["flag"]["result"]} <= kept, (cited, kept)
    browser.eval("document.querySelectorAll('#ev-pairs details.trace').forEach(d => { d.open = true; }); true")
    opened = browser.eval("document.querySelector('#ev-pairs').innerText")
    assert all(ref in opened for ref in cited), opened
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / f"uifix35-traced-{size}-pairs.png")
    browser.eval("document.querySelectorAll('#evidence details.trace').forEach(d => { d.open = false; }); true")
    _shot_of(browser, "#evidence", _shots(tmp_path) / f"uifix35-words-{size}-evidence.png")


# --- the resident's page: the same rule ---------------------------------------------------------------

SUN = nid("32092319750505004")  # the 17th digit even: a woman


@pytest.fixture(scope="module")
def resident_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    patient = pid(SUN, "ZY2026005555", "FNXRMYY", "孙^晓兰", "19750505", "F", "13700005555")
    liver = hl7(msh("LIS", "FNXRMYY", "20260311080000", "ORU^R01^ORU_R01", "UF35-LFT-1"), patient,
                "ORC|RE|UF35-LFT-1^HIS|UF35-LFT-1F^LIS||CM",
                "OBR|1|UF35-LFT-1^HIS|UF35-LFT-1F^LIS|LFT^肝功能^L|||202603110800||||||||BLD&血液|D9^王^医生||||||"
                "202603110830|||F",
                "OBX|1|SN|ALT^丙氨酸氨基转移酶^L||<^5|U/L|7-40|L|||F|||202603110800",
                "OBX|2|SN|AST^天门冬氨酸氨基转移酶^L||>^500|U/L|13-35|H|||F|||202603110800")
    yield from fed_site(tmp_path_factory.mktemp("uifix35"), patient, [liver])


def test_the_residents_page_says_the_same_values_by_the_same_rule(resident_site: Engine, tmp_path: Path) -> None:
    """Her liver panel: ALT below the assay's range, AST above it. Her page reads '<5 U/L' and
    '>500 U/L', as the auditors' evidence does -- one rule (shared/exact.js) draws both."""
    for phone in signed_in_phone(resident_site, tmp_path, SUN):
        p: Phone = phone
        p.click("[data-tab=results]")
        p.cdp.wait("!document.getElementById('results').hidden")
        rows = dict(p.cdp.eval("[...document.querySelectorAll('#results tr')].map("
                               "r => [r.querySelector('th').firstChild.textContent, r.innerText])"))
        assert "<5 U/L" in rows["丙氨酸氨基转移酶"] and ">500 U/L" in rows["天门冬氨酸氨基转移酶"], rows
        assert outside(p.cdp, {"width": 390}) == []
        p.shot("uifix35-resident-comparators")
