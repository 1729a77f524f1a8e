"""rvui35: probes of the thirty-fourth round's staff pages (pages34) and of the duplicate flag's
evidence (evpage34, evpfix34), as an auditor reads them.

Real HL7 v2 over ``POST /hl7v2`` into the real store; the evidence read back over HTTP
(``GET /reports/duplicates/{id}``) and, for what a person sees, the real page in headless Chromium
(uvicorn, a staff auditor signed in with password and TOTP), as evpfix34's page tests do.

A probe that shows a defect is a strict xfail naming its severity; the others guard what was found
sound (a withdrawn result leaves the evidence, a report cannot be re-filed under another patient).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.hl7_calls import ER7
from tests.test_evidence33_page import _shot_of, _shots
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import flag_of, timed
from tests.test_evpfix34_page import _open
from tests.test_insurance_ui import sign_in
from tests.test_pages34_staff import auditor, insurance  # noqa: F401 - fixtures (the worked March, signed in)
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer
from tests.test_reports_ui import Browser, browser, server  # noqa: F401 - fixtures
from tests.test_resident_ui import CHROMIUM

# a second resident, born the same day as the feed's patient (the builder's PID-7 is 19850412)
LI = "320923198504120036"

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


def _prior(http: TestClient, *extra: tuple[str, ...]) -> None:  # noqa: F811
    """FNXRMYY's liver results of 2026-03-10 09:00 (ALT 30, AST 28, and ``extra``), as Observations alone."""
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=timed((ALT, "30", "20260310090000+0800"), *extra, (AST, "28", "20260310090000+0800"))))


def _repeat(http: TestClient, obx: str) -> None:  # noqa: F811
    """FNZYY's order of 2026-03-12 08:00 for the liver panel and its results (``obx``) of 10:00."""
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800", obx=obx))


def _alt(ev: dict[str, Any]) -> dict[str, Any]:
    [alt] = [p for p in ev["pairs"] if p["analyte"] == "ALT"]
    return alt


# --- values as the lab sent them ---------------------------------------------------------------------

BEYOND = ("OBX|1|SN|1742-6^ALT^LN||>^500|U/L|||||F|||20260312110000+0800\n"
          "OBX|2|NM|1920-8^AST^LN||35|U/L|||||F|||20260312100000+0800\n"
          "OBX|3|SN|1742-6^ALT^LN||<^5|U/L|||||{s}")


@needs_chromium
def test_a_value_beyond_the_assays_range_is_shown_with_its_comparator(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                      browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The repeat's lab sent ALT as structured numbers (OBX-2 SN): '<5' at 10:00 and '>500' at 11:00
    (beyond the assay's range). The store keeps each comparator (valueQuantity.comparator); the
    auditor comparing the repeat with the prior's 30 U/L must read '<5' and '>500', never a bare 5 and
    500 -- a different value from the one the lab reported."""
    _prior(http)
    _repeat(http, BEYOND)
    row = flag_of(engine, http)
    alt = _alt(evidence(engine, http, row["id"]))
    # the precondition: the store kept what was sent
    assert alt["resultResource"]["valueQuantity"]["comparator"] == "<"
    assert [o["resource"]["valueQuantity"]["comparator"] for o in alt["resultAlso"]] == [">"]
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.cmp", "auditor")
    _open(browser, row["id"])
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / "rvui35-comparator-pairs.png")
    repeat = browser.eval("document.querySelector('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child dl').innerText")
    also = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .also li b.value')].map(b => b.textContent)")
    assert "结果 Value\n<5 U/L" in repeat, repeat
    assert also == [">500 U/L"], also


@needs_chromium
def test_the_evidence_says_its_times_are_beijing(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                 browser: Browser) -> None:  # noqa: F811
    """The repeat's ALT 90 was sent at 03:00 UTC (OBX-14 20260312030000+0000); the page shows it as
    11:00 -- Beijing's -- but nothing on the evidence says whose clock that is."""
    _prior(http)
    _repeat(http, timed((ALT, "90", "20260312030000+0000"), (AST, "35", "20260312100000+0800"), (ALT, "88", "")))
    row = flag_of(engine, http)
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.tz", "auditor")
    _open(browser, row["id"])
    said = browser.eval("document.querySelector('#ev-pairs').innerText")
    assert "2026年3月12日 11:00" in said, said  # the UTC instant drawn in Beijing's clock
    assert "北京时间" in said, said


# --- what the evidence lists: only results that stand, of one patient ------------------------------

def test_a_withdrawn_other_result_leaves_the_evidence(engine: Any, http: TestClient) -> None:  # noqa: F811
    """Both sides ran ALT twice; each lab then withdraws one (OBX-11 W in a corrected report). The flag
    stands, and its evidence no longer lists either withdrawn result (not as an 'other result',
    not anywhere): a withdrawn value is no evidence of a repeat."""
    _prior(http, (ALT, "31", "20260310093000+0800"))
    _repeat(http, timed((ALT, "90", "20260312110000+0800"), (AST, "35", "20260312100000+0800"), (ALT, "88", "")))
    row = flag_of(engine, http)
    alt = _alt(evidence(engine, http, row["id"]))
    withdrawn = {*alt["result_also"], *alt["prior_also"]}
    assert len(withdrawn) == 2
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800", status="C",
                      obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||C|||20260310090000+0800\n"
                          "OBX|2|NM|1742-6^ALT^LN||31|U/L|||||W|||20260310093000+0800\n"
                          "OBX|3|NM|1920-8^AST^LN||28|U/L|||||{s}"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800", status="C",
                      obx="OBX|1|NM|1742-6^ALT^LN||90|U/L|||||W|||20260312110000+0800\n"
                          "OBX|2|NM|1920-8^AST^LN||35|U/L|||||C|||20260312100000+0800\n"
                          "OBX|3|NM|1742-6^ALT^LN||88|U/L|||||{s}"))
    after = flag_of(engine, http)
    assert after["id"] == row["id"] and after["status"] == "flagged"
    ev = evidence(engine, http, row["id"])
    alt = _alt(ev)
    assert (alt["resultAlso"], alt["priorAlso"]) == ([], [])
    cited = {ref for p in ev["pairs"] for ref in (p["result"], p["prior"], *(o["reference"] for o in
                                                                          p["resultAlso"] + p["priorAlso"]))}
    assert cited.isdisjoint(withdrawn)
    assert alt["resultResource"]["valueQuantity"]["value"] == 88 and alt["priorResource"]["valueQuantity"]["value"] == 30


def test_a_report_cannot_be_refiled_under_another_patient_beneath_a_flag(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The prior's lab re-sends its report (same OBR-2) under another resident. Were it re-filed, the
    flag's evidence would show that resident's results as this patient's prior. It is refused (AE,
    ERR naming the OBR and why) and the evidence's subjects are what they were."""
    _prior(http, (ALT, "31", "20260310093000+0800"))
    _repeat(http, timed((ALT, "90", "20260312110000+0800"), (AST, "35", "20260312100000+0800"), (ALT, "88", "")))
    row = flag_of(engine, http)

    def subjects(ev: dict[str, Any]) -> set[str]:
        return {r["subject"]["reference"] for p in ev["pairs"]
                for r in (p["resultResource"], p["priorResource"], *(o["resource"] for o in p["resultAlso"] + p["priorAlso"]))}

    before = subjects(evidence(engine, http, row["id"]))
    assert len(before) == 2  # the patient as each institution registered her: one person
    ack = http.post("/hl7v2", content=result(A, "A1", LOCAL_LFT, "20260310090000+0800", status="C", person=LI, mrn="MRN-LI",
                                             obx=timed((ALT, "30", "20260310090000+0800"), (ALT, "31", "20260310093000+0800"),
                                                       (AST, "28", "20260310090000+0800"))).replace("\n", "\r").encode(),
                    headers={"Content-Type": ER7}).text
    assert "MSA|AE" in ack and "ERR||OBR^1^2" in ack, ack
    assert subjects(evidence(engine, http, row["id"])) == before
    assert [r["id"] for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]] == [row["id"]]


@needs_chromium
def test_a_result_in_another_unit_is_shown_in_its_own_unit_on_a_phone(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                       browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The prior's lab reported ALT in µkat/L (0.50, and a re-run 0.52); the repeat in U/L. At 390 px the
    auditor reads each value in the unit it was sent in, with its digits (0.50, not 0.5), never a
    figure beside another's unit; nothing runs off the screen."""
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx="OBX|1|NM|1742-6^ALT^LN||0.50|ukat/L|||||F|||20260310090000+0800\n"
                          "OBX|2|NM|1742-6^ALT^LN||0.52|ukat/L|||||F|||20260310093000+0800\n"
                          "OBX|3|NM|1920-8^AST^LN||28|U/L|||||{s}"))
    _repeat(http, timed((ALT, "88", "20260312100000+0800"), (AST, "35", "")))
    row = flag_of(engine, http)
    alt = _alt(evidence(engine, http, row["id"]))
    prior_values = [alt["priorResource"]["valueQuantity"], *(o["resource"]["valueQuantity"] for o in alt["priorAlso"])]
    assert sorted((str(q["value"]), q["unit"]) for q in prior_values) == [("0.5", "ukat/L"), ("0.52", "ukat/L")]
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.unit", "auditor")
    _open(browser, row["id"])
    prior = browser.eval("document.querySelector('#ev-pairs .pair[data-analyte=ALT] .pair-side:first-child').innerText")
    repeat = browser.eval("document.querySelector('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child').innerText")
    assert "0.50 ukat/L" in prior and "0.52 ukat/L" in prior and "U/L" not in prior.replace("ukat/L", ""), prior
    assert "结果 Value\n88 U/L" in repeat and "ukat" not in repeat, repeat
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / "rvui35-units-phone-pairs.png")


@needs_chromium
def test_a_remit_bound_auditor_reads_the_priors_other_results_only_through_the_flag(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                                    browser: Browser) -> None:  # noqa: F811
    """An auditor bound to FNZYY opens FNZYY's flag: its prior and the prior's other ALT (31 U/L) are
    FNXRMYY's, shown because the flag is within her remit (vouched for that one request). Read on
    their own, outside the evidence, the same Observation is not hers to read (a bound auditor reads a
    patient's records only as a flag's evidence: ``ScopedRepository.vouch``, for that request)."""
    _prior(http, (ALT, "31", "20260310093000+0800"))
    _repeat(http, timed((ALT, "90", "20260312110000+0800"), (AST, "35", "20260312100000+0800"), (ALT, "88", "")))
    row = flag_of(engine, http)
    [other] = _alt(evidence(engine, http, row["id"]))["prior_also"]
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "sun.remit35", "auditor", remit=B)
    _open(browser, row["id"])
    listed = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .pair-side:first-child .also li')]"
                          ".map(li => li.innerText)")
    assert len(listed) == 1 and listed[0].startswith("31 U/L") and "阜宁县人民医院（FNXRMYY）" in listed[0], listed
    alone = browser.eval(f"fetch('/fhir/{other}').then(r => r.status)")
    assert alone in (403, 404), alone
    # while the evidence, asked again the same way (her session), still gives it: the read above was refused
    # for being outside the flag, not for the way it was asked
    again = browser.eval(f"fetch('/reports/duplicates/{row['id']}').then(r => r.json()).then(e => e.pairs.find("
                         "p => p.analyte === 'ALT').priorAlso.map(o => o.resource && o.resource.valueQuantity.value))")
    assert again == [31], again
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


# --- the settlement and indicators page (pages34) ----------------------------------------------------

@needs_chromium
def test_a_money_indicators_numerator_says_its_unit_and_fen(auditor: tuple[Browser, Path]) -> None:  # noqa: F811
    """The worked March: two admissions cost 5100.50 in all, 2550.25 each. The table's 分子 Numerator
    cell of 住院次均费用 reads as money, as its value does."""
    b, _ = auditor
    cells = b.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
    [cost] = [c for c in cells if c[0].startswith("住院次均费用")]
    # money as every page says it (shared/money.js, ui36): grouped, to the fen, in the words' unit
    assert cost[2] == "2,550.25 元", cost
    assert cost[3] == "5,100.50 元", cost
