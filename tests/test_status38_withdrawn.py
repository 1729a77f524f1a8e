"""status38: what may bring a withdrawn result back, and what its report is.

- An A or B (HL7 v2.5 table 0085: A amended, B appended -- each made to a FINAL result) after a W ("post
  original as wrong, e.g. transmitted for wrong patient") brought the withdrawn result back as amended, like
  a C or F. Only a message stating the result anew (C or F with its value) revives a withdrawal; an A or B,
  with its value or without, is held whole as a P, R, S, I or X is (``merge.yaml`` ``not_back``: ``amended``
  in the whole step's ``to``).
- The report (``merge.yaml`` DiagnosticReport.status ``all_results``): a report none of whose results
  stands, as merged, is entered-in-error when every one is withdrawn, cancelled when every one is withdrawn
  or not obtained -- unless OBR-25 states X itself (the lab's cancel: R4 "cancelled rather than entered-in-
  error" where the order was acted upon; rvres35's RIS cancel with every line W). The LIS's X over W with
  OBR-25 empty read the report cancelled off the X; an A, or a status alone with OBR-25 F, over W left the
  report corrected or final beside its only result withdrawn; a group all X (OBR-25 empty) left a final
  report final.

Real HL7 v2 through ``POST /hl7v2`` (one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.merge_rules import MergeRules, all_results_of, shipped
from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result
from tests.test_rv37e_probes import _msg

__all__ = ["engine", "module_http"]

engine = module_eng


def _get(http: TestClient, rtype: str, rid: str) -> dict:
    return http.get(f"/fhir/{rtype}/{rid}").json()


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> tuple[str, str]:
    """The LIS's F 4.1 (10:00), then its W (11:00, OBR-25 empty): the result's and the report's ids, both
    entered-in-error."""
    assert b"MSA|AA" in post(http, _result(f"S38W-{tag}A", "20261203100000", f"S38WM{tag}", f"S38WP{tag}", "4.1", "F"))
    (obs,) = written(engine, http, f"S38W-{tag}A", "Observation")
    (report,) = written(engine, http, f"S38W-{tag}A", "DiagnosticReport")
    assert report["status"] == "final", report
    assert b"MSA|AA" in post(http, _result(f"S38W-{tag}B", "20261203110000", f"S38WM{tag}", f"S38WP{tag}", "4.1", "W"))
    assert _get(http, "Observation", obs["id"])["status"] == "entered-in-error"
    assert _get(http, "DiagnosticReport", report["id"])["status"] == "entered-in-error"
    return obs["id"], report["id"]


def _warned(ack: bytes, words: str) -> list[str]:
    return [e for e in err_lines(ack) if words in e and "|W|" in e]


def test_an_amendment_over_a_withdrawal_writes_nothing_until_a_correction(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then over MLLP the LIS's A 5.0 at 12:00 (OBR-25 C) with a note: AA, the withdrawn version
    whole (entered-in-error 4.1, no note, no new version), one W at OBX^1^11 saying an A amends a final
    result; the report stays entered-in-error (W at OBR^1^25: its only result is withdrawn). The LIS's C 4.3
    at 13:00 then brings the result back, and the report with it."""
    obs_id, report_id = _withdrawn(engine, http, "1")
    before = _get(http, "Observation", obs_id)
    (ack,) = mllp(engine, _result("S38W-1C", "20261203120000", "S38WM1", "S38WP1", "5.0", "A", report="C",
                                  note="复核").encode())
    assert b"MSA|AA" in ack, ack
    after = _get(http, "Observation", obs_id)
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"], after.get("note")) == ("entered-in-error", 4.1, None)
    (warned,) = _warned(ack, "comes back only")
    assert warned.split("|")[2] == "OBX^1^11" and '"amended"' in warned, warned
    assert "an A or B amends or appends to a final result" in warned, warned
    (report_w,) = _warned(ack, "every result the report lists")
    assert report_w.split("|")[2] == "OBR^1^25" and '"corrected"' in report_w, report_w
    assert _get(http, "DiagnosticReport", report_id)["status"] == "entered-in-error"
    ack = post(http, _result("S38W-1D", "20261203130000", "S38WM1", "S38WP1", "4.3", "C"))
    assert b"MSA|AA" in ack and not _warned(ack, "comes back only"), ack
    after = _get(http, "Observation", obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    assert _get(http, "DiagnosticReport", report_id)["status"] == "corrected"


@pytest.mark.parametrize("value", ["4.1", ""])
def test_an_appendix_over_a_withdrawal_is_held_with_or_without_its_value(
        engine: Engine, http: TestClient, value: str) -> None:
    """F 4.1, W, then the LIS's B ("final results reviewed and further information provided ... without
    change to the original result values") -- restating 4.1, or a status alone: held whole either way,
    W at OBX^1^11; the result and its report stay withdrawn."""
    tag = f"2{'V' if value else 'E'}"
    obs_id, report_id = _withdrawn(engine, http, tag)
    ack = post(http, _result(f"S38W-{tag}C", "20261203120000", f"S38WM{tag}", f"S38WP{tag}", value, "B"))
    assert b"MSA|AA" in ack, ack
    assert [e.split("|")[2] for e in _warned(ack, "comes back only")] == ["OBX^1^11"], err_lines(ack)
    after = _get(http, "Observation", obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert _get(http, "DiagnosticReport", report_id)["status"] == "entered-in-error"


def test_an_amendment_after_a_final_is_still_taken(engine: Engine, http: TestClient) -> None:
    """The control: F 4.1, then the LIS's A 4.2 at 12:00 amends the final result (no W at OBX-11)."""
    assert b"MSA|AA" in post(http, _result("S38W-3A", "20261203100000", "S38WM3", "S38WP3", "4.1", "F"))
    (obs,) = written(engine, http, "S38W-3A", "Observation")
    ack = post(http, _result("S38W-3B", "20261203120000", "S38WM3", "S38WP3", "4.2", "A", report="C"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "|OBX^1^11|" in e], ack
    after = _get(http, "Observation", obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("amended", 4.2), after


def test_the_shipped_withdrawal_steps_hold_an_amendment_whole() -> None:
    """What the shipped file says, as the merge reads it: over entered-in-error, an amended status is the
    whole step's (held with its value or without); the status-alone step keeps F and C only."""
    steps = shipped().plan("Observation", "ORU").elements["status"].not_back
    whole = [s for s in steps if s.over == {"entered-in-error"} and not s.unless]
    alone = [s for s in steps if s.over == {"entered-in-error"} and s.unless]
    assert [(s.to, s.whole) for s in whole] == [({"registered", "preliminary", "cancelled", "amended"}, True)], whole
    assert [s.to for s in alone] == [{"final", "corrected"}], alone


def test_a_cancel_over_a_withdrawal_stating_no_report_status_leaves_the_report_withdrawn(
        engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's X 5.0 at 12:00 with OBR-25 empty: the result is held (status37), and the
    report -- its status read off the X -- follows its only result as stored: entered-in-error, the W
    naming no field the sender left empty."""
    obs_id, report_id = _withdrawn(engine, http, "4")
    ack = post(http, _result("S38W-4C", "20261203120000", "S38WM4", "S38WP4", "5.0", "X", report=""))
    assert b"MSA|AA" in ack, ack
    assert _get(http, "Observation", obs_id)["status"] == "entered-in-error"
    assert _get(http, "DiagnosticReport", report_id)["status"] == "entered-in-error"
    (report_w,) = _warned(ack, "every result the report lists")
    assert report_w.split("|")[2] == "" and '"cancelled"' in report_w, report_w


def test_the_labs_stated_cancel_over_a_withdrawal_cancels_the_report(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's X at 12:00 with OBR-25 X: the result stays withdrawn (held), the report is
    the lab's cancel as stated -- cancelled, as the RIS's X with every line W is (rvres35); no W at OBR-25."""
    obs_id, report_id = _withdrawn(engine, http, "5")
    message = _result("S38W-5C", "20261203120000", "S38WM5", "S38WP5", "5.0", "X")
    assert message.split("\r")[3].split("|")[25] == "X", message  # (OBR-25, not OBR-24: the fixture's fix)
    ack = post(http, message)
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "|OBR^1^25|" in e], ack
    assert _get(http, "Observation", obs_id)["status"] == "entered-in-error"
    assert _get(http, "DiagnosticReport", report_id)["status"] == "cancelled"


def test_a_status_alone_with_obr25_f_over_a_withdrawal_leaves_the_report_withdrawn(
        engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's F with OBX-5 empty and OBR-25 F at 12:00: the status alone is held
    (statfix37) -- and the report does not read final beside its only result withdrawn: entered-in-error,
    W at OBR^1^25."""
    obs_id, report_id = _withdrawn(engine, http, "6")
    ack = post(http, _result("S38W-6C", "20261203120000", "S38WM6", "S38WP6", "", "F"))
    assert b"MSA|AA" in ack, ack
    assert _get(http, "Observation", obs_id)["status"] == "entered-in-error"
    assert _get(http, "DiagnosticReport", report_id)["status"] == "entered-in-error"
    assert [e.split("|")[2] for e in _warned(ack, "every result the report lists")] == ["OBR^1^25"], err_lines(ack)


def test_a_group_of_results_all_cancelled_cancels_its_final_report(engine: Engine, http: TestClient) -> None:
    """F 4.1 (report final), then the LIS's X at 12:00 with no value and OBR-25 empty: the lab's cancel of
    the result is taken (status37's control), and the report whose every result is cancelled is cancelled
    -- it was ``unknown`` (the placeholder), so the report stayed final beside its only result cancelled."""
    assert b"MSA|AA" in post(http, _result("S38W-7A", "20261203100000", "S38WM7", "S38WP7", "4.1", "F"))
    (obs,) = written(engine, http, "S38W-7A", "Observation")
    (report,) = written(engine, http, "S38W-7A", "DiagnosticReport")
    ack = post(http, _result("S38W-7B", "20261203120000", "S38WM7", "S38WP7", "", "X", report=""))
    assert b"MSA|AA" in ack, ack
    assert _get(http, "Observation", obs["id"])["status"] == "cancelled"
    assert _get(http, "DiagnosticReport", report["id"])["status"] == "cancelled"


def test_a_withdrawn_result_beside_one_standing_leaves_the_report_with_that_one(
        engine: Engine, http: TestClient) -> None:
    """The control: K1 and K2 final; the LIS withdraws K1 alone (11:00), then sends X over it (12:00, OBR-25
    empty). K2 still stands: the report is not made withdrawn or cancelled by K1 -- it stays final."""
    assert b"MSA|AA" in post(http, _msg("S38W-8A", "20261203100000", "S38WM8", "S38WP8", [("4.1", "F"), ("140", "F")]))
    (report,) = written(engine, http, "S38W-8A", "DiagnosticReport")
    assert b"MSA|AA" in post(http, _msg("S38W-8B", "20261203110000", "S38WM8", "S38WP8", [("4.1", "W")]))
    ack = post(http, _msg("S38W-8C", "20261203120000", "S38WM8", "S38WP8", [("5.0", "X")], report=""))
    assert b"MSA|AA" in ack and not _warned(ack, "every result the report lists"), ack
    statuses = sorted(_get(http, "Observation", r["reference"].split("/")[1])["status"]
                      for r in _get(http, "DiagnosticReport", report["id"])["result"])
    assert statuses == ["entered-in-error", "final"], statuses
    assert _get(http, "DiagnosticReport", report["id"])["status"] == "final"


_ALL = "      all_results: {entered-in-error: [entered-in-error], cancelled: [cancelled, entered-in-error]}\n"


def _site(tmp_path: Path, line: str) -> Path:
    """The shipped ``merge.yaml`` with DiagnosticReport.status's ``all_results`` line replaced by ``line``."""
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    assert text.count(_ALL) == 1
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace(_ALL, line), encoding="utf-8")
    return path


def test_a_sites_all_results_loads_in_its_order_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    """The shipped entries, as the merge and the converter read them (in their order: entered-in-error
    first); a site's own loads; one naming no status list is refused at load, naming the file."""
    assert all_results_of(None, "DiagnosticReport", "status") == (
        ("entered-in-error", frozenset({"entered-in-error"})),
        ("cancelled", frozenset({"cancelled", "entered-in-error"})))
    rules = MergeRules(load_merge_file(_site(tmp_path, "      all_results: {cancelled: [cancelled]}\n")))
    assert rules.plan("DiagnosticReport", "ORU").elements["status"].all_results == (
        ("cancelled", frozenset({"cancelled"})),)
    for bad in ("      all_results: {cancelled: []}\n", "      all_results: cancelled\n"):
        with pytest.raises(SiteError, match="merge.yaml"):
            load_merge_file(_site(tmp_path, bad))
