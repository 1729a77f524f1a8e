"""stfix38 (thirty-eighth round): where status38's ``all_results`` and pffix38's kept-out report meet --
review rv38h's HIGH 1, MED 1 and MED 2, beyond its probes (``tests/test_rv38h_probes.py``).

- A message under OBR-25 P whose results are, as merged, all withdrawn or not obtained takes its final report
  with them (``MergeRules._none_standing``); a standing result beside them keeps it final (control).
- A P or X held whole over a withdrawn result leaves the report its times and tubes, and the W at OBR-25
  names them (``_stands_with`` from ``_none_standing``).
- The LIS's older F over its later P: the report is the F's, as in MSH-7 order (``_over_later_p``); when the
  P's report lists a result the F does not, the P's statement stays the report's (control).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium

__all__ = ["engine", "module_http"]

engine = module_eng

_TIMES = ("issued", "effectiveDateTime")


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _with_sodium(message: str, status: str, value: str = "140", seen: str = "20261203083000") -> str:
    """``message`` (one OBR, potassium's OBX) with a second result, sodium ``value`` at OBX-11 ``status``."""
    sodium = "|".join(["OBX", "2", "NM", "NA^钠^L", "", value, "mmol/L", "135-145", "N", "", "", status, "", "", seen])
    lines = message.rstrip("\r").split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBX|1|")) + 1
    return "\r".join([*lines[:at], sodium, *lines[at:]]) + "\r"


def _final(engine: Engine, http: TestClient, tag: str, *, sodium: bool = False) -> tuple[list[dict], dict]:
    """The LIS's F 4.1 of tube A at 10:00 (with sodium's F 140 when ``sodium``): results and report as stored."""
    message = _potassium(f"SF38-{tag}A", "20261203100000", f"S{tag}", "4.1", "F", tube=f"SF38S{tag}A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F") if sodium else message)
    results = written(engine, http, f"SF38-{tag}A", "Observation")
    (report,) = written(engine, http, f"SF38-{tag}A", "DiagnosticReport")
    return results, report


def test_a_withdrawal_under_obr25_p_says_why_the_report_went_with_it(engine: Engine, http: TestClient) -> None:
    """F, then the LIS's W under OBR-25 P: the report is entered-in-error, and the one W at OBR^1^25 says
    why (every result it lists withdrawn) -- not that its results are not taken back."""
    (obs,), report = _final(engine, http, "1")
    ack = post(http, _potassium("SF38-1B", "20261203110000", "S1", "4.1", "W", obr25="P", tube="SF38S1A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "entered-in-error"
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", after
    (warned,) = [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"]
    assert "every result the report lists is, as stored, entered-in-error" in warned and "|W|" in warned, warned
    assert not [e for e in err_lines(ack) if "not taken back" in e], err_lines(ack)


def test_a_withdrawal_beside_a_standing_result_leaves_the_report_final(engine: Engine, http: TestClient) -> None:
    """Control: F of potassium and sodium, then the LIS's W of sodium beside potassium's P restated (kept out
    under its final) under OBR-25 P: potassium stands, so the report stays final (ordfix36/pffix38)."""
    results, report = _final(engine, http, "2", sodium=True)
    message = _potassium("SF38-2B", "20261203110000", "S2", "4.1", "P", tube="SF38S2A")
    ack = post(http, _with_sodium(message, "W"))
    assert b"MSA|AA" in ack, ack
    statuses = sorted(_read(http, f"Observation/{o['id']}")["status"] for o in results)
    assert statuses == ["entered-in-error", "final"], statuses
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert not [e for e in err_lines(ack) if "every result the report lists" in e], err_lines(ack)


def test_a_held_p_over_a_withdrawal_names_the_times_and_tube_it_kept_out(engine: Engine, http: TestClient) -> None:
    """F, W (OBR-25 empty), then the LIS's P 5.0 of a re-drawn tube B under OBR-25 P: the report stays
    entered-in-error, dated and specimened as before, and its W at OBR^1^25 names the P's times and tube as
    not stored."""
    (obs,), report = _final(engine, http, "3")
    assert b"MSA|AA" in post(http, _potassium("SF38-3B", "20261203110000", "S3", "4.1", "W", obr25=""))
    before = _read(http, f"DiagnosticReport/{report['id']}")
    assert before["status"] == "entered-in-error", before
    ack = post(http, _potassium("SF38-3C", "20261203120000", "S3", "5.0", "P", obr25="P", tube="SF38S3B",
                                **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", after
    assert {n: after.get(n) for n in (*_TIMES, "specimen")} == {n: before.get(n) for n in (*_TIMES, "specimen")}
    (warned,) = [e for e in err_lines(ack) if "every result the report lists" in e]
    assert warned.split("|")[2] == "OBR^1^25", warned
    for name in ("issued", "effective", "specimen"):
        assert name in warned.split("and with it", 1)[1], warned


def test_an_older_final_after_a_later_p_gives_the_report_of_msh_order(engine: Engine, http: TestClient) -> None:
    """The LIS's later P of tube B (MSH-7 12:00) first, then its older F of tube A (11:50): the report is the
    one MSH-7 order gives the same two messages (F first, then the P kept out) -- final, the F's times, tube A
    alone, no W of older times -- compared with that order's report field by field."""
    def pair(tag: str, order: tuple[int, int]) -> dict:
        sent = [_potassium(f"SF38-{tag}A", "20261203115000", f"S{tag}", "4.1", "F", tube=f"SF38S{tag}A"),
                _potassium(f"SF38-{tag}B", "20261203120000", f"S{tag}", "5.0", "P", tube=f"SF38S{tag}B",
                           **_REDRAWN)]
        acks = [post(http, sent[i]) for i in order]
        assert all(b"MSA|AA" in a for a in acks), acks
        assert not [e for a in acks for e in err_lines(a) if "not later: older" in e and "OBR^1^" in e]
        (report,) = written(engine, http, f"SF38-{tag}A", "DiagnosticReport")
        (tube,) = written(engine, http, f"SF38-{tag}A", "Specimen")
        return {"status": report["status"], **{n: report.get(n) for n in _TIMES},
                "tube A alone": report["specimen"] == [{"reference": f"Specimen/{tube['id']}"}]}

    in_order, reversed_ = pair("4", (0, 1)), pair("5", (1, 0))
    assert reversed_ == in_order, (reversed_, in_order)
    assert reversed_["status"] == "final" and reversed_["tube A alone"], reversed_
    assert reversed_["effectiveDateTime"].startswith("2026-12-03T08:00"), reversed_


def test_an_older_final_of_one_result_leaves_the_later_p_of_another_its_tube(
        engine: Engine, http: TestClient) -> None:
    """Control: the later P (12:00, tube B) states potassium and sodium; the older F (11:50, tube A) states
    potassium alone. Sodium is the P's still, so its tube, its times and the report's preliminary status
    stay -- as in MSH-7 order, where sodium's P, new to the final report, is stored with its tube."""
    later = _with_sodium(_potassium("SF38-6B", "20261203120000", "S6", "5.0", "P", tube="SF38S6B", **_REDRAWN),
                         "P", seen="20261203113000")
    assert b"MSA|AA" in post(http, later)
    (first,) = written(engine, http, "SF38-6B", "DiagnosticReport")
    ack = post(http, _potassium("SF38-6A", "20261203115000", "S6", "4.1", "F", tube="SF38S6A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{first['id']}")
    assert after["status"] == "preliminary", after
    assert {n: after.get(n) for n in _TIMES} == {n: first.get(n) for n in _TIMES}, after
    assert all(s in after["specimen"] for s in first["specimen"]), (after["specimen"], first["specimen"])
