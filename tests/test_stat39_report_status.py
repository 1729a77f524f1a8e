"""stat39 (thirty-ninth round): result and report statuses left by status38, pfix38, pffix38 and stfix38,
each read against HL7 v2 tables 0085 (OBX-11) and 0123 (OBR-25) and R4's DiagnosticReport.status /
Observation.status.

1. Two OBR groups under one filler number (one P kept out of its final result, one new F): the final report
   stays final -- it went back to preliminary because the second group's result was combined after the
   report had been (``adapters.convert.results.diagnostic_report`` now writes the report after the group).
2. A final report whose result the lab corrects (OBX-11 C) under OBR-25 F is ``corrected`` (R4: "modified
   subsequent to being final ... to correct an error in the report or referenced results").
3. A correction (OBX-11 C) under OBR-25 P over a withdrawn result: the report follows its results as merged
   (corrected), not the P.
4. An X (OBX-11, "results cannot be obtained") after a final: the result is ``cancelled`` with no value (the
   reason replaces it: R4 obs-6), the value kept in its history.
5. A W beside a kept-out P in one message: the withdrawn result keeps its own tube, not the P's re-drawn one.
6. Some results held and some stored, all withdrawn or cancelled: the report is not dated by the message.
7. The LIS's later P then its older F: an element only the P stated is not the final report's either.

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_stfix38_report_follows import _with_sodium

__all__ = ["engine", "module_http"]

engine = module_eng

_TIMES = ("issued", "effectiveDateTime")


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _final(engine: Engine, http: TestClient, tag: str, *, sodium: bool = False) -> tuple[list[dict], dict]:
    """The LIS's F 4.1 (tube A) at 10:00, with sodium's F 140 when ``sodium``: (results, report) as stored."""
    message = _potassium(f"ST39-{tag}A", "20261203100000", f"T{tag}", "4.1", "F", tube=f"ST39S{tag}A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F") if sodium else message)
    results = written(engine, http, f"ST39-{tag}A", "Observation")
    (report,) = written(engine, http, f"ST39-{tag}A", "DiagnosticReport")
    return results, report


def _second_group(message: str, tag: str, obr25: str, status: str) -> str:
    """``message`` with a second OBR group under the same placer and filler numbers: sodium 140 at OBX-11
    ``status``, OBR-4 NA, OBR-25 ``obr25``."""
    obr = ["OBR", "2", f"NB37P{tag}^HIS", f"NB37F{tag}^LIS", "NA^钠^L", "", "", "20261203080000"] + [""] * 14
    obr += ["20261203093000", "", "CH", obr25]
    obx = ["OBX", "1", "NM", "NA^钠^L", "", "140", "mmol/L", "135-145", "N", "", "", status, "", "",
           "20261203083000"]
    return message + "\r".join([f"ORC|RE|NB37P{tag}^HIS|NB37F{tag}^LIS||CM", "|".join(obr), "|".join(obx)]) + "\r"


def test_a_p_group_beside_a_new_final_group_leaves_the_report_final(engine: Engine, http: TestClient) -> None:
    """F 4.1, then one message of two groups under the filler number: potassium's P (kept out of its final)
    and sodium's F, new. Both results are final as merged, so the report stays final and lists both."""
    (obs,), report = _final(engine, http, "1")
    first = _potassium("ST39-1B", "20261203110000", "T1", "4.1", "P", tube="ST39S1A")
    ack = post(http, _second_group(first, "T1", "F", "F"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    statuses = [_read(http, r["reference"])["status"] for r in after["result"]]
    assert statuses == ["final", "final"], statuses
    assert after["status"] == "final", after


def test_a_new_p_group_beside_the_kept_out_p_still_holds_the_report(engine: Engine, http: TestClient) -> None:
    """Control: the same, sodium's group a P (OBR-25 P, OBX-11 P) new to the report: a preliminary result
    is listed, so the report is no further than it."""
    _, report = _final(engine, http, "2")
    first = _potassium("ST39-2B", "20261203110000", "T2", "4.1", "P", tube="ST39S2A")
    assert b"MSA|AA" in post(http, _second_group(first, "T2", "P", "P"))
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "preliminary"


def test_a_correction_under_obr25_f_makes_the_report_corrected(engine: Engine, http: TestClient) -> None:
    """F 4.1, then the LIS's C 4.3 with OBR-25 F: the result is corrected, and so is its report."""
    (obs,), report = _final(engine, http, "3")
    ack = post(http, _potassium("ST39-3B", "20261203110000", "T3", "4.3", "C", obr25="F", tube="ST39S3A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "corrected"
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "corrected"


def test_a_report_first_sent_with_a_corrected_result_under_f_is_corrected(
        engine: Engine, http: TestClient) -> None:
    """The converter's side of item 2: a first message with OBR-25 F and its only result C 4.3."""
    ack = post(http, _potassium("ST39-4A", "20261203110000", "T4", "4.3", "C", obr25="F", tube="ST39S4A"))
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, "ST39-4A", "DiagnosticReport")
    assert report["status"] == "corrected", report


def test_a_refinal_report_of_final_results_stays_final(engine: Engine, http: TestClient) -> None:
    """Control: F, then the LIS's F re-sent (OBR-25 F, OBX-11 F, another value): final, not corrected."""
    _, report = _final(engine, http, "5")
    assert b"MSA|AA" in post(http, _potassium("ST39-5B", "20261203110000", "T5", "4.4", "F", tube="ST39S5A"))
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "final"


def test_a_correction_under_obr25_p_over_a_withdrawal_follows_its_result(
        engine: Engine, http: TestClient) -> None:
    """F 4.1, W (OBR-25 empty: the report entered-in-error), then the LIS's C 4.3 under OBR-25 P: the
    result comes back corrected, and its report with it -- not preliminary; the W at OBR^1^25 says why."""
    (obs,), report = _final(engine, http, "6")
    assert b"MSA|AA" in post(http, _potassium("ST39-6B", "20261203110000", "T6", "4.1", "W", obr25=""))
    ack = post(http, _potassium("ST39-6C", "20261203120000", "T6", "4.3", "C", obr25="P", tube="ST39S6A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "corrected"
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "corrected"
    (warned,) = [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"]
    assert "|W|" in warned and "preliminary" in warned, warned


def test_an_x_after_a_final_takes_the_value_away(engine: Engine, http: TestClient) -> None:
    """F 4.1, then the LIS's X (OBX-5 empty): cancelled with no value beside it -- the reason the converter
    states (cannot be obtained) -- and the value in the result's history."""
    (obs,), report = _final(engine, http, "7")
    ack = post(http, _potassium("ST39-7B", "20261203110000", "T7", "", "X", tube="ST39S7A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after["status"] == "cancelled", after
    assert "valueQuantity" not in after, after
    assert after["dataAbsentReason"]["coding"][0]["code"] == "cannot-be-obtained", after
    assert not [e for e in err_lines(ack) if "a value stated earlier stands" in e], err_lines(ack)
    history = http.get(f"/fhir/Observation/{obs['id']}/_history").json()
    values = [e["resource"].get("valueQuantity", {}).get("value") for e in history["entry"]]
    assert 4.1 in values, values


def test_a_placeholder_without_value_keeps_the_final_value(engine: Engine, http: TestClient) -> None:
    """Control: F 4.1, then a re-send with OBX-5 empty and OBX-11 F (a status alone): the value stays."""
    (obs,), _ = _final(engine, http, "8")
    assert b"MSA|AA" in post(http, _potassium("ST39-8B", "20261203110000", "T8", "", "F", tube="ST39S8A"))
    assert _read(http, f"Observation/{obs['id']}")["valueQuantity"]["value"] == 4.1


def test_a_withdrawal_beside_a_kept_out_p_keeps_its_own_tube(engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium (tube A), then the LIS's W of sodium beside potassium's P of a re-drawn
    tube B (kept out): sodium, withdrawn, was measured in tube A and stays filed under it (``merge.yaml``
    Observation.status ``withdrawal_keeps``); tube B, now named by the kept-out P alone, does not join the
    final report (pffix38's ``_theirs_alone``)."""
    results, report = _final(engine, http, "9", sodium=True)
    before = {o["id"]: _read(http, f"Observation/{o['id']}")["specimen"] for o in results}
    message = _potassium("ST39-9B", "20261203120000", "T9", "5.0", "P", tube="ST39S9B", **_REDRAWN)
    ack = post(http, _with_sodium(message, "W"))
    assert b"MSA|AA" in ack, ack
    after = {o["id"]: _read(http, f"Observation/{o['id']}") for o in results}
    assert sorted(a["status"] for a in after.values()) == ["entered-in-error", "final"]
    assert {i: a["specimen"] for i, a in after.items()} == before, after
    listed = _read(http, f"DiagnosticReport/{report['id']}")["specimen"]
    assert listed == report["specimen"], (listed, report["specimen"])  # (tube B: the kept-out P's alone)


def test_a_message_partly_held_does_not_date_the_withdrawn_report(engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium, W of potassium (OBR-25 empty), then the LIS's message of a re-drawn tube B
    (OBR-7 11:00, OBR-22 11:45): potassium's P over its withdrawal (held whole) and sodium's W (stored).
    Every result is withdrawn, the report entered-in-error -- dated as before, not by the held P's times."""
    results, report = _final(engine, http, "10", sodium=True)
    withdraw = _potassium("ST39-10B", "20261203110000", "T10", "4.1", "W", obr25="", tube="ST39S10A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "F"))
    before = _read(http, f"DiagnosticReport/{report['id']}")
    message = _potassium("ST39-10C", "20261203120000", "T10", "5.0", "P", obr25="", tube="ST39S10B", **_REDRAWN)
    ack = post(http, _with_sodium(message, "W"))
    assert b"MSA|AA" in ack, ack
    assert sorted(_read(http, f"Observation/{o['id']}")["status"] for o in results) == ["entered-in-error"] * 2
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", after
    assert {n: after.get(n) for n in _TIMES} == {n: before.get(n) for n in _TIMES}, (before, after)


def test_an_element_only_the_later_p_stated_goes_with_it(engine: Engine, http: TestClient) -> None:
    """The LIS's later P (12:00) naming an interpreter (OBR-32) first, then its older F (11:50) naming
    none: in MSH-7 order the P was kept out whole, interpreter and all, so the final report names none."""
    later = _potassium("ST39-11B", "20261203120000", "T11", "5.0", "P", tube="ST39S11B", **_REDRAWN)
    later = later.replace("|CH|P", "|CH|P|||||||D002&李&四")
    assert b"MSA|AA" in post(http, later)
    (first,) = written(engine, http, "ST39-11B", "DiagnosticReport")
    assert first.get("resultsInterpreter"), first
    ack = post(http, _potassium("ST39-11A", "20261203115000", "T11", "4.1", "F", tube="ST39S11A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{first['id']}")
    assert after["status"] == "final", after
    assert "resultsInterpreter" not in after, after


def test_the_partly_held_message_says_which_times_it_did_not_store(engine: Engine, http: TestClient) -> None:
    """The same message as above: its W at the report's status names the times not stored, and that only
    some of the message's results were held."""
    _final(engine, http, "12", sodium=True)
    withdraw = _potassium("ST39-12B", "20261203110000", "T12", "4.1", "W", obr25="", tube="ST39S12A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "F"))
    message = _potassium("ST39-12C", "20261203120000", "T12", "5.0", "P", obr25="", tube="ST39S12B", **_REDRAWN)
    ack = post(http, _with_sodium(message, "W"))
    (warned,) = [e for e in err_lines(ack) if "every result the report lists" in e]
    assert "|W|" in warned, warned
    stated = warned.split("and with it", 1)[1]
    assert "issued" in stated and "effectiveDateTime" in stated and "2026-12-03T11:00" in stated, warned
