"""Review rv38h (thirty-eighth round): pffix38 (a report kept final under OBR-25 P keeps out only what its
kept-out results alone stated) and status38 (A/B over W held, ``all_results``, an older F over a later P) --
probes of where the two meet in ``engine/merge_rules.py`` (``_over``, ``_stands_with``, ``_none_standing``).

Strict xfails pin defects (a fixer turns them green); plain tests guard what was found sound. Real HL7 v2
through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over ``/fhir``.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium

__all__ = ["engine", "module_http"]

engine = module_eng

_REPORT_TIMES = ("issued", "effectiveDateTime")


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _final(engine: Engine, http: TestClient, tag: str, stamp: str = "20261203100000") -> tuple[dict, dict]:
    """The LIS's F 4.1 of tube A (drawn 08:00, issued 09:30): its Observation and DiagnosticReport as stored."""
    assert b"MSA|AA" in post(http, _potassium(f"RV38H-{tag}A", stamp, f"H{tag}", "4.1", "F", tube=f"RV38HS{tag}A"))
    (obs,) = written(engine, http, f"RV38H-{tag}A", "Observation")
    (report,) = written(engine, http, f"RV38H-{tag}A", "DiagnosticReport")
    return obs, report


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> tuple[dict, dict]:
    """F 4.1 (10:00), then the LIS's W (11:00, OBR-25 empty): the result and the report as stored, both
    entered-in-error."""
    obs, _ = _final(engine, http, tag)
    assert b"MSA|AA" in post(http, _potassium(f"RV38H-{tag}B", "20261203110000", f"H{tag}", "4.1", "W", obr25=""))
    report = written(engine, http, f"RV38H-{tag}A", "DiagnosticReport")[0]
    assert (_read(http, f"Observation/{obs['id']}")["status"], report["status"]) == ("entered-in-error",) * 2
    return _read(http, f"Observation/{obs['id']}"), report


def test_a_withdrawal_under_obr25_p_takes_the_report_with_it(engine: Engine, http: TestClient) -> None:
    """F 4.1, then the LIS's W at 11:00 with OBR-25 P. The result is withdrawn (entered-in-error); the report,
    none of whose results stands, is entered-in-error as it is with OBR-25 empty (status38's ``all_results``).
    What happens: ``_over``'s ordfix36/pffix38 branch asks ``_none_before`` -- entered-in-error is not
    "before final" -- and keeps the report final, with a W at OBR^1^25 saying its results are not taken back.
    ``_none_standing`` is not asked: the message's P is no status beside the path and nothing was held."""
    obs, report = _final(engine, http, "1")
    ack = post(http, _potassium("RV38H-1B", "20261203110000", "H1", "4.1", "W", obr25="P"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "entered-in-error"
    assert not [e for e in err_lines(ack) if "are not taken back" in e], err_lines(ack)
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "entered-in-error"


def test_a_withdrawal_with_obr25_empty_takes_the_report_with_it(engine: Engine, http: TestClient) -> None:
    """The control of the above: the same W with OBR-25 empty makes the report entered-in-error."""
    _withdrawn(engine, http, "2")


@pytest.mark.parametrize("status", ["P", "X"])
def test_a_held_message_over_a_withdrawal_keeps_the_report_entered_in_error(
        engine: Engine, http: TestClient, status: str) -> None:
    """F, W, then the LIS's P 5.0 / X under OBR-25 P (a re-drawn tube B): the result is held whole (W at
    OBX^1^11, nothing written) and the report stays entered-in-error with a W at OBR^1^25 (status38's
    ``_none_standing`` before pffix38's branch)."""
    tag = f"3{status}"
    obs, report = _withdrawn(engine, http, tag)
    ack = post(http, _potassium(f"RV38H-{tag}C", "20261203120000", f"H{tag}", "5.0" if status == "P" else "", status,
                                obr25="P", tube=f"RV38HS{tag}B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after["meta"]["versionId"] == obs["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert [e.split("|")[2] for e in err_lines(ack) if "comes back only" in e] == ["OBX^1^11"], err_lines(ack)
    (warned,) = [e for e in err_lines(ack) if "every result the report lists" in e]
    assert warned.split("|")[2] == "OBR^1^25" and "|W|" in warned, warned
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "entered-in-error"


@pytest.mark.parametrize("status", ["P", "X"])
def test_a_held_message_over_a_withdrawal_leaves_the_report_its_times_and_tubes(
        engine: Engine, http: TestClient, status: str) -> None:
    """As above. The held message's result is written in no part, so nothing it alone stated reaches the
    report either: its times (drawn 11:00, issued 11:45) and its tube B. What happens: ``_none_standing``
    returns True and ``_over`` returns no standing elements (``frozenset()``), so the report takes the held
    message's OBR-7, OBR-22 and SPM (specimen [A, B]); the only W at OBR^1^25 names the status alone."""
    tag = f"4{status}"
    _, report = _withdrawn(engine, http, tag)
    ack = post(http, _potassium(f"RV38H-{tag}C", "20261203120000", f"H{tag}", "5.0" if status == "P" else "", status,
                                obr25="P", tube=f"RV38HS{tag}B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", after
    assert {n: after.get(n) for n in _REPORT_TIMES} == {n: report.get(n) for n in _REPORT_TIMES}, after
    assert after["specimen"] == report["specimen"], (after["specimen"], report["specimen"])


def test_a_correction_under_obr25_p_over_a_withdrawal_brings_the_result_back(
        engine: Engine, http: TestClient) -> None:
    """F, W, then the LIS's C 4.3 under OBR-25 P: the correction states the result, so it comes back
    (corrected 4.3, no 'comes back only' W); the report lists it."""
    obs, report = _withdrawn(engine, http, "5")
    ack = post(http, _potassium("RV38H-5C", "20261203120000", "H5", "4.3", "C", obr25="P", tube="RV38HS5A",
                                issued="20261203115000"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "comes back only" in e], ack
    after = _read(http, f"Observation/{obs['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    assert _read(http, f"DiagnosticReport/{report['id']}")["result"] == [{"reference": f"Observation/{obs['id']}"}]


def test_a_later_redrawn_p_after_the_final_leaves_the_report_as_the_final_stated(
        engine: Engine, http: TestClient) -> None:
    """MSH-7 order: F 4.1 of tube A (11:50), then the LIS's P 5.0 of a re-drawn tube B (12:00): the report
    stays final with the F's times and tube A alone (pfix38's rule: every result kept out)."""
    _, report = _final(engine, http, "6", "20261203115000")
    ack = post(http, _potassium("RV38H-6B", "20261203120000", "H6", "5.0", "P", tube="RV38HS6B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert {n: after.get(n) for n in _REPORT_TIMES} == {n: report.get(n) for n in _REPORT_TIMES}, after
    assert after["specimen"] == report["specimen"], after


def _reversed(engine: Engine, http: TestClient, tag: str) -> tuple[dict, dict, dict]:
    """Arrival order reversed: the LIS's later P 5.0 of tube B (MSH-7 12:00) first, then its older F 4.1 of
    tube A (MSH-7 11:50). Returns the result and report as stored after both, and the F's tube."""
    assert b"MSA|AA" in post(http, _potassium(f"RV38H-{tag}B", "20261203120000", f"H{tag}", "5.0", "P",
                                              tube=f"RV38HS{tag}B", **_REDRAWN))
    ack = post(http, _potassium(f"RV38H-{tag}A", "20261203115000", f"H{tag}", "4.1", "F", tube=f"RV38HS{tag}A"))
    assert b"MSA|AA" in ack, ack
    (obs,) = written(engine, http, f"RV38H-{tag}A", "Observation")
    (report,) = written(engine, http, f"RV38H-{tag}A", "DiagnosticReport")
    (tube,) = written(engine, http, f"RV38H-{tag}A", "Specimen")
    return obs, report, tube


def test_an_older_final_after_a_later_p_makes_the_result_the_final_one(engine: Engine, http: TestClient) -> None:
    """status38 item 3, with a re-drawn tube: the result is the F's whole -- final 4.1, tube A, 张三, ISE,
    observed 08:30 -- and the report is final."""
    obs, report, tube = _reversed(engine, http, "7")
    assert (obs["status"], obs["valueQuantity"]["value"]) == ("final", 4.1), obs
    assert obs["specimen"] == {"reference": f"Specimen/{tube['id']}"}, obs
    assert obs["effectiveDateTime"].startswith("2026-12-03T08:30"), obs
    assert obs["method"]["coding"][0]["code"] == "ISE" and "张三" in [p.get("display") for p in obs["performer"]]
    assert report["status"] == "final", report


def test_an_older_final_after_a_later_p_dates_the_report_as_in_msh_order(engine: Engine, http: TestClient) -> None:
    """As above. In MSH-7 order the report is dated by the F (drawn 08:00, issued 09:30) and lists tube A
    alone (``test_a_later_redrawn_p_after_the_final_leaves_the_report_as_the_final_stated``); status38 says
    the outcome is now the same in either order. What happens: the report's OBR-7/OBR-22 are the P's (the
    F is older: ``not_from_older``, W at OBR^1^7/OBR^1^22) and its specimen list is [tube B, tube A] -- a
    final report dated and specimened by a preliminary measurement no result it lists carries."""
    obs, report, tube = _reversed(engine, http, "8")
    assert report["effectiveDateTime"].startswith("2026-12-03T08:00"), report
    assert report["issued"].startswith("2026-12-03T09:30"), report
    assert report["specimen"] == [{"reference": f"Specimen/{tube['id']}"}], report["specimen"]
