"""status37: a withdrawn result (OBX-11 W "post original as wrong, e.g. transmitted for the wrong patient";
HL7 v2.5 table 0085) comes back only by a message stating its result (C or F). ``not_back`` in ``merge.yaml``
is a list of steps, so it says what one pair of sets could not: an X (cancelled: "no results obtained")
after F, C or A is a lab's cancel, taken (hooks10, hl7fix17, rvpages31); over W it is not, nor a P -- that
step is ``whole``: nothing of the result is written (AA, W at OBX^n^11), as a placeholder over a
withdrawal (status36). rv36f MED 2: the later X made the withdrawn result ``cancelled`` carrying 5.0.

Real HL7 v2 through ``POST /hl7v2`` (and one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result
from tests.test_status36_backward import _by, _obs

__all__ = ["engine", "module_http"]

engine = module_eng


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> dict:
    """The LIS's F 4.1 (10:00), then its W (11:00): the withdrawn Observation as stored."""
    assert b"MSA|AA" in post(http, _result(f"S37W-{tag}A", "20261203100000", f"S37WM{tag}", f"S37WP{tag}", "4.1", "F"))
    (obs,) = written(engine, http, f"S37W-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _result(f"S37W-{tag}B", "20261203110000", f"S37WM{tag}", f"S37WP{tag}", "4.1", "W"))
    stored = _obs(http, obs["id"])
    assert stored["status"] == "entered-in-error", stored
    return stored


def _warned(ack: bytes, words: str) -> list[str]:
    return [e for e in err_lines(ack) if words in e and "|W|" in e and "|OBX^" in e]


def test_a_later_cancel_over_a_withdrawal_writes_nothing(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then over MLLP the LIS's X 5.0 at 12:00 with a note: AA, the withdrawn version whole
    (entered-in-error 4.1, no note, no new version), one W at OBX^1^11 naming the status and the value and
    saying a withdrawn result comes back only by C or F; then the LIS's C 4.3 at 13:00 brings it back."""
    before = _withdrawn(engine, http, "1")
    (ack,) = mllp(engine, _result("S37W-1C", "20261203120000", "S37WM1", "S37WP1", "5.0", "X",
                                  note="标本不足").encode())
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert "note" not in after, after
    (warned,) = _warned(ack, "comes back only")
    assert warned.split("|")[2] == "OBX^1^11", warned
    assert "Observation.status" in warned and "valueQuantity" in warned and '"cancelled"' in warned, warned
    assert "nothing of the Observation is written" in warned, warned
    ack = post(http, _result("S37W-1D", "20261203130000", "S37WM1", "S37WP1", "4.3", "C"))
    assert b"MSA|AA" in ack and not _warned(ack, "comes back only"), ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after


def test_a_later_preliminary_over_a_withdrawal_stores_not_its_note(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's P 5.0 at 12:00 with a note: the whole step holds (as a placeholder over a
    withdrawal does) -- entered-in-error 4.1, the note of a value not stored is not filed on it."""
    before = _withdrawn(engine, http, "2")
    ack = post(http, _result("S37W-2C", "20261203120000", "S37WM2", "S37WP2", "5.0", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"], after.get("note")) == ("entered-in-error", 4.1, None)
    assert [e.split("|")[2] for e in _warned(ack, "comes back only")] == ["OBX^1^11"], ack


def test_another_senders_cancel_over_a_withdrawal_is_held_not_refused(engine: Engine, http: TestClient) -> None:
    """F 4.1, the LIS's W, then the POCT's X at 12:00 (its order against the LIS's cannot be told): not
    dated -- nothing of it is written whichever is later: AA (no 206), W at OBX^1^11."""
    before = _withdrawn(engine, http, "3")
    ack = post(http, _by("POCT", _result("S37W-3C", "20261203120000", "S37WM3", "S37WP3", "5.0", "X")))
    assert b"MSA|AA" in ack and b"|206^" not in ack, err_lines(ack)
    assert [e.split("|")[2] for e in _warned(ack, "comes back only")] == ["OBX^1^11"], ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after


def test_an_older_cancel_over_a_withdrawal_is_held_as_older(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), W (11:00), then the LIS's X of 10:30 arriving last: the same sender's older statement
    -- held, the W at OBX^1^11 says so ("not later: older", naming the withdrawal's message)."""
    before = _withdrawn(engine, http, "4")
    ack = post(http, _result("S37W-4C", "20261203103000", "S37WM4", "S37WP4", "5.0", "X"))
    assert b"MSA|AA" in ack, ack
    (warned,) = _warned(ack, "not later")
    assert warned.split("|")[2] == "OBX^1^11" and "S37W-4B" in warned, warned
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after


def test_a_cancel_after_a_final_is_still_the_labs_cancel(engine: Engine, http: TestClient) -> None:
    """The control of the other step: F 4.1, then the LIS's X at 12:00 -- a lab's cancel, taken as the older
    tests decided (hooks10, hl7fix17, rvpages31): cancelled, AA, no W at OBX-11."""
    assert b"MSA|AA" in post(http, _result("S37W-5A", "20261203100000", "S37WM5", "S37WP5", "4.1", "F"))
    (obs,) = written(engine, http, "S37W-5A", "Observation")
    ack = post(http, _result("S37W-5B", "20261203120000", "S37WM5", "S37WP5", "4.1", "X"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "|OBX^1^11|" in e], ack
    assert _obs(http, obs["id"])["status"] == "cancelled"
