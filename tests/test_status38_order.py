"""status38: a result is the same whichever order the LIS's messages arrive in, and a kept-out P adds no tube.

- The LIS's P 5.0 (MSH-7 10:00) stored, then its F 4.1 of 09:30 arriving last left "preliminary 5.0"
  (tfix35's hold of an older restatement). F is the lab's final word on the observation, and in MSH-7
  order the 10:00 P would have been kept out of it (``not_back``: a final value changes only by C) -- so
  the F is the result either way: final 4.1, observed 09:30. The same for an older C or W over a later P
  (dated as changes of a status in ``stands``, they were held), and the report follows its results.
  Still held: an older P over a later F, an older F of another value over a later F (controls).
- The final report's specimen list (a union) gained a kept-out P's re-drawn tube (SPM), though none of
  its results as stored was measured in it: ``specimen`` stands with the report's status
  (``stands_with``), named in the W at OBR^1^25. A correction's new tube is still listed (control).
- The fixtures send OBR-25 where HL7 v2.5 puts it (OBR-24 the diagnostic service section).

Real HL7 v2 through ``POST /hl7v2`` (one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result
from tests.test_rv36a_probes import _potassium

__all__ = ["engine", "module_http"]

engine = module_eng


def _get(http: TestClient, rtype: str, rid: str) -> dict:
    return http.get(f"/fhir/{rtype}/{rid}").json()


def _at(message: str, observed: str) -> str:
    """``message`` with its result observed (OBX-14) at ``observed``."""
    return message.replace("|20261203083000", f"|{observed}")


def _state(http: TestClient, obs_id: str, report_id: str) -> tuple:
    obs = _get(http, "Observation", obs_id)
    return (obs["status"], obs["valueQuantity"]["value"], obs.get("effectiveDateTime"),
            _get(http, "DiagnosticReport", report_id)["status"])


def _two_orders(engine: Engine, http: TestClient, tag: str, first: tuple[str, str, str],
                second: tuple[str, str, str]) -> tuple[tuple, bytes]:
    """Two messages of the LIS for one result: (MSH-7, value, OBX-11) each, the first sent first (its
    OBX-14 its MSH-7); the state read back and the second's ACK."""
    stamp, value, status = first
    assert b"MSA|AA" in post(http, _at(_result(f"S38O-{tag}A", stamp, f"S38OM{tag}", f"S38OP{tag}", value, status), stamp))
    (obs,) = written(engine, http, f"S38O-{tag}A", "Observation")
    (report,) = written(engine, http, f"S38O-{tag}A", "DiagnosticReport")
    stamp, value, status = second
    ack = post(http, _at(_result(f"S38O-{tag}B", stamp, f"S38OM{tag}", f"S38OP{tag}", value, status), stamp))
    assert b"MSA|AA" in ack, ack
    return _state(http, obs["id"], report["id"]), ack


def test_the_labs_older_final_over_its_later_preliminary_is_the_result(engine: Engine, http: TestClient) -> None:
    """P 5.0 (10:00) then, arriving last, F 4.1 (09:30): final 4.1 observed 09:30, the report final, no
    'not later' W -- exactly what the two give in MSH-7 order (F, then the P kept out)."""
    late, ack = _two_orders(engine, http, "1", ("20261203100000", "5.0", "P"), ("20261203093000", "4.1", "F"))
    assert not [e for e in err_lines(ack) if "not later" in e], ack
    in_order, _ = _two_orders(engine, http, "2", ("20261203093000", "4.1", "F"), ("20261203100000", "5.0", "P"))
    assert late == in_order == ("final", 4.1, "2026-12-03T09:30:00+08:00", "final"), (late, in_order)


def test_an_older_correction_or_withdrawal_over_a_later_preliminary_is_taken(
        engine: Engine, http: TestClient) -> None:
    """P 5.0 (10:00) then, arriving last, C 4.1 or W 4.1 of 09:30 (over MLLP): corrected 4.1 / withdrawn --
    and the report with it (it was held as older, preliminary beside its corrected or withdrawn result)."""
    late, _ = _two_orders(engine, http, "3", ("20261203100000", "5.0", "P"), ("20261203093000", "4.1", "C"))
    in_order, _ = _two_orders(engine, http, "4", ("20261203093000", "4.1", "C"), ("20261203100000", "5.0", "P"))
    assert late == in_order == ("corrected", 4.1, "2026-12-03T09:30:00+08:00", "corrected"), (late, in_order)
    assert b"MSA|AA" in post(http, _at(_result("S38O-5A", "20261203100000", "S38OM5", "S38OP5", "5.0", "P"),
                                       "20261203100000"))
    (obs,) = written(engine, http, "S38O-5A", "Observation")
    (report,) = written(engine, http, "S38O-5A", "DiagnosticReport")
    (ack,) = mllp(engine, _at(_result("S38O-5B", "20261203093000", "S38OM5", "S38OP5", "4.1", "W"),
                              "20261203093000").encode())
    assert b"MSA|AA" in ack, ack
    assert _state(http, obs["id"], report["id"]) == ("entered-in-error", 4.1, "2026-12-03T09:30:00+08:00",
                                                     "entered-in-error")


def test_an_older_preliminary_or_final_of_another_value_is_still_held(engine: Engine, http: TestClient) -> None:
    """The controls: F 4.1 (10:00) then the older P 5.0 (09:30) -- held at OBX^1^11 (status37); F 6.8 (12:00)
    then the older F 6.1 (11:00) -- held at OBX^1^5 (tfix35)."""
    state, ack = _two_orders(engine, http, "6", ("20261203100000", "4.1", "F"), ("20261203093000", "5.0", "P"))
    assert state[:2] == ("final", 4.1), state
    assert [e.split("|")[2] for e in err_lines(ack) if "not later" in e and "|OBX^" in e] == ["OBX^1^11"], ack
    state, ack = _two_orders(engine, http, "7", ("20261203120000", "6.8", "F"), ("20261203110000", "6.1", "F"))
    assert state[:2] == ("final", 6.8), state
    assert [e.split("|")[2] for e in err_lines(ack) if "not later" in e and "|OBX^" in e] == ["OBX^1^5"], ack


def _tube(message: str, tube: str) -> str:
    """``message`` with its order's specimen: SPM-2 ``tube``."""
    return message + f"SPM|1|{tube}^LIS||BLD^全血^L\r"


def _specimens(http: TestClient, report_id: str) -> list[str]:
    return sorted(_get(http, "Specimen", r["reference"].split("/")[1])["identifier"][0]["value"]
                  for r in _get(http, "DiagnosticReport", report_id).get("specimen") or ())


def test_a_kept_out_preliminary_adds_no_tube_to_the_final_report(engine: Engine, http: TestClient) -> None:
    """F 4.1 of tube S38T-A, then the LIS's later P 5.0 of a re-drawn tube S38T-B: the P is kept out of the
    final result (notback37), and the final report still lists tube A alone -- the W at OBR^1^25 names its
    specimen as not stored."""
    assert b"MSA|AA" in post(http, _tube(_result("S38O-8A", "20261203100000", "S38OM8", "S38OP8", "4.1", "F"),
                                         "S38T-A8"))
    (report,) = written(engine, http, "S38O-8A", "DiagnosticReport")
    assert _specimens(http, report["id"]) == ["S38T-A8"]
    ack = post(http, _tube(_result("S38O-8B", "20261203120000", "S38OM8", "S38OP8", "5.0", "P"), "S38T-B8"))
    assert b"MSA|AA" in ack, ack
    assert _specimens(http, report["id"]) == ["S38T-A8"]
    assert _get(http, "DiagnosticReport", report["id"])["status"] == "final"
    (warned,) = [e for e in err_lines(ack) if "|OBR^1^25|" in e]
    assert "specimen" in warned.split("and with it", 1)[1].split("as stored", 1)[0], warned


def test_a_corrections_new_tube_is_still_listed(engine: Engine, http: TestClient) -> None:
    """The control: F 4.1 of tube A, then the LIS's C 4.3 of tube B at 12:00 -- taken, and the corrected
    report lists both tubes (the union, as before)."""
    assert b"MSA|AA" in post(http, _tube(_result("S38O-9A", "20261203100000", "S38OM9", "S38OP9", "4.1", "F"),
                                         "S38T-A9"))
    (report,) = written(engine, http, "S38O-9A", "DiagnosticReport")
    ack = post(http, _tube(_result("S38O-9B", "20261203120000", "S38OM9", "S38OP9", "4.3", "C"), "S38T-B9"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "|OBR^1^25|" in e], ack
    assert _specimens(http, report["id"]) == ["S38T-A9", "S38T-B9"]
    assert _get(http, "DiagnosticReport", report["id"])["status"] == "corrected"


def test_the_status_fixtures_send_obr25_where_hl7_puts_it() -> None:
    """OBR-24 is the diagnostic service section (CH), OBR-25 the result status -- beside OBX-11 as a lab
    sends it (F, C, P, X alike; empty beside a withdrawn, amended or empty one)."""
    for status, obr25 in (("F", "F"), ("C", "C"), ("P", "P"), ("X", "X"), ("W", ""), ("A", ""), ("", "")):
        for message in (_result("S38O-F", "20261203100000", "S38OMF", "S38OPF", "4.1", status),
                        _potassium("S38O-F", "20261203100000", "S38OMF", "S38OPF", "4.1", "N", status)):
            (obr,) = [s.split("|") for s in message.split("\r") if s.startswith("OBR|")]
            assert (obr[24], obr[25]) == ("CH", obr25), (status, obr)


def test_an_older_withdrawal_stating_no_value_under_a_later_final_is_held(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), then the LIS's W of 09:30 with OBX-5 empty arriving last: in MSH-7 order the W, then the
    F stating its value (a result, which brings a withdrawal back) -- so final 4.1. The step forward is asked
    of the stored statement (its value), not the W's (none): the W is dated and held, not taken."""
    state, ack = _two_orders(engine, http, "10", ("20261203100000", "4.1", "F"), ("20261203093000", "", "W"))
    assert state[:2] == ("final", 4.1), (state, err_lines(ack))
