"""prior42: a correction keeps the exam's time (merge.yaml ``exam_time``; review rv41k MED 6).

A result's time (OBR-7, OBX-14) is when its specimen was collected or its exam made: the time recognition dates a
prior by (``engine.recognition.facts.result_time``). A LIS or RIS that sends OBR-7 as its report time (报告时间)
restamps a correction (OBR-25 / OBX-11 C) with its own send time; stored as sent, the 2024 result became a result
of the correction's day. Now the correction's value is stored, its time is not (W at the field naming both), and
its own time is the report's ``issued`` (OBR-22).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir``."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_codefix36_order_code import _errs
from tests.test_probepay26_windows import CBC, msh, order, pid
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import T24_LATER, T26, _ct, _old_exam, _reports, _w205
from tests.test_srfix35_order_code import B, http, send

__all__ = ["http", "module_eng"]

DRAWN, FIXED = "20240301080000+0800", "20240927080000+0800"  # the exam; its correction 210 days later


def _cbc(placer: str, filler: str, when: str, status: str, wbc: str, *, tube: str = "") -> str:
    """The LIS's CBC of ``<placer>^HIS`` under ``filler``: MSH-7, OBR-7, OBR-22 and OBX-14 all ``when`` (the
    sender's habit: OBR-7 its report time), OBR-25 and OBX-11 ``status``; ``tube``: an SPM of that number."""
    spm = f"SPM|1|{tube}^LIS||BLD^全血^L|||||||||||||{when}\n" if tube else ""
    return (msh(B, "LIS", "ORU^R01^ORU_R01", when) + pid(B)
            + f"ORC|RE|{placer}^HIS|{filler}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|{filler}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞^L||{wbc}|10*9/L|||||{status}|||{when}\n" + spm)


def _one(http: TestClient, rtype: str, filler: str) -> dict[str, Any]:
    found = http.get(f"/fhir/{rtype}", params={"identifier": filler, "_count": 10}).json()
    entries = [e["resource"] for e in found.get("entry") or ()]
    assert len(entries) == 1, found
    return entries[0]


def _observation(http: TestClient, report: dict[str, Any]) -> dict[str, Any]:
    (ref,) = [r["reference"] for r in report["result"]]
    return http.get(f"/fhir/{ref}").json()


def _time_warnings(ack: str) -> dict[str, list[str]]:
    """Each W of a time not stored as the exam's, by its location (ERR-2)."""
    out: dict[str, list[str]] = {}
    for e in _errs(ack):
        if e[4] == "W" and "the time the result was made" in e[8]:
            out.setdefault(e[2], []).append(e[8])
    return out


def test_a_late_restamped_correction_keeps_the_exam_day(module_eng: Engine, http: TestClient) -> None:
    """F of 2024-03-01, then the LIS's C 210 days later with every time its own: the corrected value is stored,
    the report and its result stay dated 2024-03-01 08:00; the report's ``issued`` is the correction's; the ACK
    is AA and warns once at OBR-7 and once at OBX-14, naming both times."""
    assert "MSA|AA" in send(http, order(B, "P42-A", CBC, DRAWN))
    assert "MSA|AA" in send(http, _cbc("P42-A", "P42-FA", DRAWN, "F", "6.1"))
    ack = send(http, _cbc("P42-A", "P42-FA", FIXED, "C", "6.3"))
    assert "MSA|AA" in ack, ack
    report = _one(http, "DiagnosticReport", "P42-FA")
    obs = _observation(http, report)
    assert (report["status"], obs["status"], obs["valueQuantity"]["value"]) == ("corrected", "corrected", 6.3)
    assert report["effectiveDateTime"].startswith("2024-03-01T08:00:00"), report
    assert obs["effectiveDateTime"].startswith("2024-03-01T08:00:00"), obs
    assert report["issued"].startswith("2024-09-27T08:00:00"), report
    warned = _time_warnings(ack)
    assert sorted(warned) == ["OBR^1^7", "OBX^1^14"], ack
    assert all(len(w) == 1 and "2024-09-27T08:00" in w[0] and "2024-03-01T08:00" in w[0] for w in warned.values())


def test_a_correction_restating_the_exam_time_says_nothing_of_it(module_eng: Engine, http: TestClient) -> None:
    """The guard: a C that restates the exam's own OBR-7 and OBX-14 is stored as before, with no W of a time."""
    assert "MSA|AA" in send(http, order(B, "P42-B", CBC, DRAWN))
    assert "MSA|AA" in send(http, _cbc("P42-B", "P42-FB", DRAWN, "F", "6.1"))
    ack = send(http, _cbc("P42-B", "P42-FB", DRAWN, "C", "6.3"))
    assert "MSA|AA" in ack and not _time_warnings(ack), ack
    obs = _observation(http, _one(http, "DiagnosticReport", "P42-FB"))
    assert (obs["status"], obs["valueQuantity"]["value"]) == ("corrected", 6.3), obs


def test_a_correction_of_a_redrawn_tube_takes_its_collection_time(module_eng: Engine, http: TestClient) -> None:
    """A C naming a tube the result did not (SPM-2 of a re-drawn specimen) is of another specimen, collected
    when it says: its time is stored (``unless_new: [specimen]``), no W of a time."""
    later = "20240301113000+0800"
    assert "MSA|AA" in send(http, order(B, "P42-C", CBC, DRAWN))
    assert "MSA|AA" in send(http, _cbc("P42-C", "P42-FC", DRAWN, "F", "6.1", tube="P42-TA"))
    ack = send(http, _cbc("P42-C", "P42-FC", later, "C", "6.3", tube="P42-TB"))
    assert "MSA|AA" in ack and not _time_warnings(ack), ack
    report = _one(http, "DiagnosticReport", "P42-FC")
    obs = _observation(http, report)
    assert obs["effectiveDateTime"].startswith("2024-03-01T11:30:00"), obs
    assert report["effectiveDateTime"].startswith("2024-03-01T11:30:00"), report


def test_a_first_final_over_a_preliminary_takes_its_time(module_eng: Engine, http: TestClient) -> None:
    """The rule is a correction's: P at 08:00, then the F stating 09:00 -- the final's time is stored."""
    final = "20240301090000+0800"
    assert "MSA|AA" in send(http, order(B, "P42-D", CBC, DRAWN))
    assert "MSA|AA" in send(http, _cbc("P42-D", "P42-FD", DRAWN, "P", "6.1"))
    ack = send(http, _cbc("P42-D", "P42-FD", final, "F", "6.2"))
    assert "MSA|AA" in ack and not _time_warnings(ack), ack
    report = _one(http, "DiagnosticReport", "P42-FD")
    assert report["effectiveDateTime"].startswith("2024-03-01T09:00:00"), report
    assert _observation(http, report)["effectiveDateTime"].startswith("2024-03-01T09:00:00")


def test_a_restamped_imaging_correction_keeps_the_exam_and_the_study_time(module_eng: Engine, http: TestClient) -> None:
    """The RIS's head CT of 2024-03-12, corrected 210 days later by the placer number with OBR-7 the correction's
    time: one report, corrected, still dated 2024-03-12 08:00 -- and its ImagingStudy (an imaging prior's date,
    ``started``) too."""
    acc = _old_exam(http, "P42E")
    ack = send(http, _ct("P42E1", acc, sent=T24_LATER, obr7=T24_LATER, status="C", text="右肺上叶小结节"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    (report,) = _reports(http, acc)
    assert (report["status"], report["conclusion"]) == ("corrected", "右肺上叶小结节"), report
    assert report["effectiveDateTime"].startswith("2024-03-12T08:00:00"), report
    studies = http.get("/fhir/ImagingStudy", params={"identifier": acc}).json().get("entry") or ()
    assert [s["resource"]["started"][:19] for s in studies] == ["2024-03-12T08:00:00"], studies


def test_a_restamped_correction_by_the_accession_alone_after_the_reuse(module_eng: Engine, http: TestClient) -> None:
    """xofix41c's left case with this rule: the 2024 head CT and the 2026 one under the reused accession, then a
    C by the accession alone whose OBR-7 is its own send time (2026-03-20). Nothing in it tells which exam it
    corrects, so it goes to the newest holder, the 2026 order's report (W 205 saying so) -- and the exam time of
    that report stays the 2026 exam's; the 2024 report is untouched."""
    acc = _old_exam(http, "P42F")
    assert "MSA|AA" in send(http, _stated("HIS", "P42F2", "NW", HEAD, "", ""))
    assert "MSA|AA" in send(http, _ct("P42F2", acc, sent=T26, obr7=T26, status="F", text="右肺上叶结节"))
    assert _conclusions_of(http, acc) == sorted([("final", "未见异常", "2024-03-12T08:00:00"),
                                                 ("final", "右肺上叶结节", "2026-03-12T10:00:00")])
    fixed = "20260320100000+0800"
    ack = send(http, _ct("", acc, sent=fixed, obr7=fixed, status="C", text="右肺上叶结节，建议随访"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _conclusions_of(http, acc) == sorted([("corrected", "右肺上叶结节，建议随访", "2026-03-12T10:00:00"),
                                                 ("final", "未见异常", "2024-03-12T08:00:00")])


def _conclusions_of(http: TestClient, acc: str) -> list[tuple[str, str, str]]:
    return sorted((str(r.get("status")), str(r.get("conclusion")), str(r.get("effectiveDateTime"))[:19])
                  for r in _reports(http, acc))

