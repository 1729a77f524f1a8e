"""status37: what ``not_back`` keeps out of a result (a later P after its F or C) is kept, and its warning
says exactly that (review rv36f LOW; ``engine.merge_rules._Kept``):

- what stands (the status, the value and what is dated with it, its time, its components) is neither
  written nor deleted by the P: a P with OBX-5 ``""`` deleted the final value under AA while its W said
  "the stored status, value and observation time stand" and named ``dataAbsentReason`` instead;
- the W names what stood against what the P stated or deleted, and as stored only what the merge wrote
  of the rest (worded after the merge, no longer every element that differed);
- the same sender's older P is held at OBX^n^11 whatever value it states, over a final as over a
  correction -- over a final one restating another value was located at OBX-5 (``_restated_older``),
  over a correction at OBX-11 (``_not_back``): one rule, one location, the step back being the reason.

Real HL7 v2 through ``POST /hl7v2`` (and one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _first(engine: Engine, http: TestClient, tag: str, stamp: str = "20261203100000", status: str = "F",
           value: str = "4.1") -> dict:
    assert b"MSA|AA" in post(http, _result(f"S37K-{tag}A", stamp, f"S37KM{tag}", f"S37KP{tag}", value, status))
    (obs,) = written(engine, http, f"S37K-{tag}A", "Observation")
    return _obs(http, obs["id"])


def _kept_warning(ack: bytes) -> tuple[str, str, str]:
    """The one W of a kept-out step back: (ERR-2, what it says stood, what it says was stored)."""
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e and "|W|" in e]
    stood, _, stored = warned.partition("what else it states is stored")
    return warned.split("|")[2], stood.split(": ", 1)[0].rsplit("|", 1)[-1], stored


def test_a_later_preliminary_deleting_the_value_keeps_the_final_value(engine: Engine, http: TestClient) -> None:
    """F 4.1, then the LIS's P at 12:00 with OBX-5 ``""`` and a note: final 4.1 stays (it was deleted), no
    information issue says the value was deleted; the W at OBX^1^11 names the value among what stood, and
    the note as stored."""
    before = _first(engine, http, "1")
    ack = post(http, _result("S37K-1B", "20261203120000", "S37KM1", "S37KP1", '""', "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]) == ("final", before["valueQuantity"]), after
    assert [n["text"] for n in after.get("note", ())] == ["溶血"], after
    assert not [e for e in err_lines(ack) if "deleted" in e and "value" in e], err_lines(ack)
    at, stood, stored = _kept_warning(ack)
    assert at == "OBX^1^11", (at, stood)
    assert stood.startswith("Observation.status") and "Observation.valueQuantity" in stood, stood
    assert "Observation.note" in stored and "value" not in stored, stored


def test_a_later_preliminary_deleting_the_flag_keeps_the_finals_flag(engine: Engine, http: TestClient) -> None:
    """F 4.1 flagged N, then over MLLP the LIS's P 4.1 at 12:00 with OBX-8 ``""``: the final's flag stays (it
    was deleted) and the W names it as stood -- the value it did not state otherwise is not named."""
    before = _first(engine, http, "2")
    assert before["interpretation"][0]["coding"][0]["code"] == "N", before
    message = _result("S37K-2B", "20261203120000", "S37KM2", "S37KP2", "4.1", "P").replace(
        "|3.5-5.5|N|", '|3.5-5.5|""|')
    (ack,) = mllp(engine, message.encode())
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert (after["status"], after.get("interpretation")) == ("final", before["interpretation"]), after
    assert not [e for e in err_lines(ack) if "deleted" in e], err_lines(ack)
    at, stood, stored = _kept_warning(ack)
    assert (at, stood, stored) == ("OBX^1^11", "Observation.status, Observation.interpretation", ""), ack


def test_the_warning_names_as_stored_only_what_was_written(engine: Engine, http: TestClient) -> None:
    """F 4.1 with the note 溶血 (stored), then the LIS's P 5.0 at 12:00 with the same note: nothing of the rest
    differs, so the W says nothing was stored -- it names the status and the value, no 'what else'."""
    msg = _result("S37K-3A", "20261203100000", "S37KM3", "S37KP3", "4.1", "F", note="溶血")
    assert b"MSA|AA" in post(http, msg)
    (obs,) = written(engine, http, "S37K-3A", "Observation")
    ack = post(http, _result("S37K-3B", "20261203120000", "S37KM3", "S37KP3", "5.0", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert after["meta"]["versionId"] == obs["meta"]["versionId"], after
    at, stood, stored = _kept_warning(ack)
    assert (at, stood, stored) == ("OBX^1^11", "Observation.status, Observation.valueQuantity", ""), ack


def test_an_older_preliminary_with_another_value_is_held_at_its_status_over_a_final(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 at 12:00, then the LIS's P 3.9 of 11:00 with a note: held (nothing written, its note neither), one
    W at OBX^1^11 -- "not later: older", naming the status and the value."""
    before = _first(engine, http, "4", stamp="20261203120000")
    ack = post(http, _result("S37K-4B", "20261203110000", "S37KM4", "S37KP4", "3.9", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"] and "note" not in after, after
    (warned,) = [e for e in err_lines(ack) if "not later" in e and "|OBX^" in e]
    assert warned.split("|")[2] == "OBX^1^11" and "S37K-4A" in warned, warned
    assert "Observation.status, Observation.valueQuantity:" in warned, warned


def test_an_older_preliminary_with_another_value_is_held_at_its_status_over_a_correction(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (12:00), then the LIS's P 3.9 of 11:00: held at the same place as over a final --
    one W at OBX^1^11, "not later: older", naming the status and the value; corrected 4.3 stays."""
    before = _first(engine, http, "5")
    assert b"MSA|AA" in post(http, _result("S37K-5B", "20261203120000", "S37KM5", "S37KP5", "4.3", "C"))
    ack = post(http, _result("S37K-5C", "20261203110000", "S37KM5", "S37KP5", "3.9", "P"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    (warned,) = [e for e in err_lines(ack) if "not later" in e and "|OBX^" in e]
    assert warned.split("|")[2] == "OBX^1^11" and "S37K-5B" in warned, warned
    assert "Observation.status, Observation.valueQuantity:" in warned, warned
