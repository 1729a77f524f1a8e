"""time43: a result's time keeps its source (merge.yaml Observation ``effectiveDateTime``: ``derived: yields``,
``not_thinner``; ``exam_time`` of a correction's new result).

Where OBX-14 is empty the converter dates a result by OBR-7 and now says so in the time's primitive twin
(``_effectiveDateTime``, ``urn:huren:StructureDefinition:time-taken-from`` naming the field). Such a time follows
its source -- a later report moving OBR-7 moves its results -- and never replaces a time OBX-14 stated (rv42b HIGH
2's time half); a result a restamped correction states first takes the exam's time its report keeps (rv42e MED 2).

Real HL7 v2 through ``POST /hl7v2`` (one message a request, or one BHS/BTS batch) into the real store on each
backend (``tests.module_store``), read back over ``/fhir``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_codefix36_order_code import _errs
from tests.test_prior42_exam_time import DRAWN, FIXED, _one
from tests.test_probepay26_windows import CBC, msh, order, pid
from tests.test_rv41k_probes import T24_LATER, _ct, _old_exam
from tests.test_srfix35_order_code import B, http, send

__all__ = ["http", "module_eng"]

TAKEN_FROM = "urn:huren:StructureDefinition:time-taken-from"


def _lab(placer: str, filler: str, sent: str, obr7: str, status: str, *obx: tuple[str, str, str],
         tube: str = "") -> str:
    """The LIS's CBC of ``<placer>^HIS`` under ``filler``, MSH-7 ``sent``, OBR-7 ``obr7``, OBR-25 ``status``; each
    ``obx`` (code, value, OBX-14 -- empty: the result dated by OBR-7) with OBX-11 ``status``; ``tube``: an SPM."""
    spm = f"SPM|1|{tube}^LIS||BLD^全血^L|||||||||||||{obr7}\n" if tube else ""
    lines = "".join(f"OBX|{i}|NM|{code}^{code}^L||{value}|10*9/L|||||{status}|||{when}\n"
                    for i, (code, value, when) in enumerate(obx, 1))
    return (msh(B, "LIS", "ORU^R01^ORU_R01", sent) + pid(B)
            + f"ORC|RE|{placer}^HIS|{filler}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|{filler}^LIS|{CBC}|||{obr7}|||||||||D7^张^医生||||||{sent}|||{status}\n"
            + lines + spm)


def _batch(*messages: str) -> str:
    return "BHS|^~\\&|LIS|" + B + "|HUREN|FNYGT\n" + "".join(messages) + f"BTS|{len(messages)}\n"


def _results(http: TestClient, filler: str) -> dict[str, dict[str, Any]]:
    """The report's results by their code, as served."""
    report = _one(http, "DiagnosticReport", filler)
    out = {}
    for ref in report.get("result") or ():
        obs = http.get(f"/fhir/{ref['reference']}").json()
        out[obs["code"]["coding"][0]["code"]] = obs
    return out


def _taken_from(obs: dict[str, Any]) -> str | None:
    """The field the result's time was taken from, as its twin says; None: stated as itself (OBX-14)."""
    return next((e["valueString"] for e in (obs.get("_effectiveDateTime") or {}).get("extension") or ()
                 if e.get("url") == TAKEN_FROM), None)


def _time_warnings(ack: str) -> list[str]:
    """The locations (ERR-2) of the ACK's warnings of a result's or report's time."""
    return [e[2] for e in _errs(ack) if e[4] == "W" and "effective" in e[8]]


def test_a_time_taken_from_obr7_follows_the_report_and_yields_to_obx14(module_eng: Engine, http: TestClient) -> None:
    """OBX-14 empty: the result is dated by OBR-7 08:30 and says so (``OBR-7``). The LIS's re-run at 10:00 moving
    OBR-7 to 08:45 moves it with the report (it follows its source); its later message stating OBX-14 09:00 replaces
    it, the mark gone; a re-send an hour later with OBX-14 empty (OBR-7 08:50) leaves the 09:00 OBX-14 stated."""
    assert "MSA|AA" in send(http, order(B, "T43-A", CBC, "20261201080000+0800"))
    first = _lab("T43-A", "T43-FA", "20261201093000+0800", "20261201083000+0800", "F", ("WBC", "6.1", ""))
    assert "MSA|AA" in send(http, first)
    wbc = _results(http, "T43-FA")["WBC"]
    assert (wbc["effectiveDateTime"], _taken_from(wbc)) == ("2026-12-01T08:30:00+08:00", "OBR-7"), wbc

    moved = _lab("T43-A", "T43-FA", "20261201100000+0800", "20261201084500+0800", "F", ("WBC", "6.2", ""))
    assert "MSA|AA" in send(http, moved)
    wbc = _results(http, "T43-FA")["WBC"]
    assert (wbc["effectiveDateTime"], _taken_from(wbc)) == ("2026-12-01T08:45:00+08:00", "OBR-7"), wbc
    assert _one(http, "DiagnosticReport", "T43-FA")["effectiveDateTime"] == "2026-12-01T08:45:00+08:00"

    stated = _lab("T43-A", "T43-FA", "20261201103000+0800", "20261201084500+0800", "F",
                  ("WBC", "6.2", "20261201090000+0800"))
    assert "MSA|AA" in send(http, stated)
    wbc = _results(http, "T43-FA")["WBC"]
    assert (wbc["effectiveDateTime"], _taken_from(wbc)) == ("2026-12-01T09:00:00+08:00", None), wbc
    assert "_effectiveDateTime" not in wbc

    thinner = _lab("T43-A", "T43-FA", "20261201113000+0800", "20261201085000+0800", "F", ("WBC", "6.2", ""))
    ack = send(http, thinner)
    assert "MSA|AA" in ack and not _time_warnings(ack), ack
    wbc = _results(http, "T43-FA")["WBC"]
    assert (wbc["effectiveDateTime"], _taken_from(wbc)) == ("2026-12-01T09:00:00+08:00", None), wbc


def test_the_same_instant_derived_over_a_stated_one_stays_stated(module_eng: Engine, http: TestClient) -> None:
    """OBX-14 states 08:30; a re-send with OBX-14 empty and OBR-7 08:30 derives the same instant: the time stays
    OBX-14's (no mark), so the LIS's later re-send moving OBR-7 to 08:45 does not move it."""
    assert "MSA|AA" in send(http, order(B, "T43-S", CBC, "20261201080000+0800"))
    at = "20261201083000+0800"
    assert "MSA|AA" in send(http, _lab("T43-S", "T43-FS", "20261201093000+0800", at, "F", ("WBC", "6.1", at)))
    assert "MSA|AA" in send(http, _lab("T43-S", "T43-FS", "20261201100000+0800", at, "F", ("WBC", "6.1", "")))
    wbc = _results(http, "T43-FS")["WBC"]
    assert (wbc["effectiveDateTime"], _taken_from(wbc)) == ("2026-12-01T08:30:00+08:00", None), wbc
    later = _lab("T43-S", "T43-FS", "20261201110000+0800", "20261201084500+0800", "F", ("WBC", "6.1", ""))
    assert "MSA|AA" in send(http, later)
    assert _results(http, "T43-FS")["WBC"]["effectiveDateTime"] == "2026-12-01T08:30:00+08:00"


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_result_new_in_a_restamped_correction_takes_the_exam_time(module_eng: Engine, http: TestClient,
                                                                    batch: bool) -> None:
    """rv42e MED 2: the final carried WBC; the LIS's correction restamped 210 days later (OBR-7 and OBX-14 its send
    time) carries WBC and a new HGB. The report and WBC keep the exam's 2024-03-01 (prior42), and so does HGB,
    dated as taken from the report's OBR-7, the ACK warning at its OBX-14 naming both times. In one batch too."""
    run = "T43-B" if batch else "T43-C"
    final = _lab(run, f"{run}F", DRAWN, DRAWN, "F", ("WBC", "6.1", DRAWN))
    fixed = _lab(run, f"{run}F", FIXED, FIXED, "C", ("WBC", "6.3", FIXED), ("HGB", "130", FIXED))
    assert "MSA|AA" in send(http, order(B, run, CBC, DRAWN))
    if batch:
        ack = send(http, _batch(final, fixed))
        assert ack.count("MSA|AA") == 2, ack
    else:
        assert "MSA|AA" in send(http, final)
        ack = send(http, fixed)
        assert "MSA|AA" in ack, ack
    warned = [e for e in _errs(ack) if e[4] == "W" and e[2] == "OBX^2^14"]
    assert len(warned) == 1 and "2024-09-27T08:00:00+08:00" in warned[0][8] \
        and "2024-03-01T08:00:00+08:00" in warned[0][8], _errs(ack)
    results = _results(http, f"{run}F")
    assert {code: obs["effectiveDateTime"] for code, obs in results.items()} == {
        "WBC": "2024-03-01T08:00:00+08:00", "HGB": "2024-03-01T08:00:00+08:00"}, results
    assert results["HGB"]["valueQuantity"]["value"] == 130 and results["HGB"]["status"] == "corrected"
    assert _taken_from(results["HGB"]) == "OBR-7" and _taken_from(results["WBC"]) is None
    assert _one(http, "DiagnosticReport", f"{run}F")["effectiveDateTime"] == "2024-03-01T08:00:00+08:00"


def test_a_result_new_in_a_correction_of_another_tube_or_over_a_preliminary_keeps_its_time(
        module_eng: Engine, http: TestClient) -> None:
    """Guards: a correction naming a tube the report did not (a re-drawn specimen, SPM-2) is of another specimen,
    collected when it says -- its new result keeps its OBX-14, no W of a time; a correction over a preliminary
    report moves the report's time (``exam_time`` ``over`` names no preliminary) and its new result keeps its own."""
    later = "20240301113000+0800"
    assert "MSA|AA" in send(http, order(B, "T43-D", CBC, DRAWN))
    assert "MSA|AA" in send(http, _lab("T43-D", "T43-FD", DRAWN, DRAWN, "F", ("WBC", "6.1", DRAWN), tube="T43-TA"))
    ack = send(http, _lab("T43-D", "T43-FD", later, later, "C", ("WBC", "6.3", later), ("HGB", "130", later),
                          tube="T43-TB"))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[2].endswith("^14")], ack
    assert _results(http, "T43-FD")["HGB"]["effectiveDateTime"] == "2024-03-01T11:30:00+08:00"

    assert "MSA|AA" in send(http, order(B, "T43-P", CBC, DRAWN))
    assert "MSA|AA" in send(http, _lab("T43-P", "T43-FP", DRAWN, DRAWN, "P", ("WBC", "6.1", DRAWN)))
    ack = send(http, _lab("T43-P", "T43-FP", later, later, "C", ("WBC", "6.3", later), ("HGB", "130", later)))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[2].endswith("^14")], ack
    results = _results(http, "T43-FP")
    assert {code: obs["effectiveDateTime"] for code, obs in results.items()} == {
        "WBC": "2024-03-01T11:30:00+08:00", "HGB": "2024-03-01T11:30:00+08:00"}, results
    assert _taken_from(results["HGB"]) is None


def test_a_restamped_imaging_correction_says_at_obr7_that_the_study_time_stands(module_eng: Engine,
                                                                                http: TestClient) -> None:
    """The RIS's head CT of 2024-03-12 corrected 210 days later, OBR-7 restamped: the merge keeps the study's
    ``started`` as it keeps the report's time (ImagingStudy ``exam_time`` ``of: report``), and the ACK says so at
    OBR-7, the field the start was read from, as it does for the report."""
    acc = _old_exam(http, "T43E")
    ack = send(http, _ct("T43E1", acc, sent=T24_LATER, obr7=T24_LATER, status="C", text="右肺上叶小结节"))
    assert "MSA|AA" in ack, ack
    (study,) = [e["resource"] for e in http.get("/fhir/ImagingStudy", params={"identifier": acc}).json()["entry"]]
    assert study["started"].startswith("2024-03-12T08:00:00"), study
    warned = [e for e in _errs(ack) if e[4] == "W" and e[8].startswith("ImagingStudy.started")]
    assert [e[2] for e in warned] == ["OBR^1^7"], _errs(ack)
