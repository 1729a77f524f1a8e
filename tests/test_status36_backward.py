"""status36: one rule for a result's status taken back, whichever path compares it (review rv36c).

- A P (R, S, I) after a correction (C) goes exactly as after a final: a later or another sender's P keeps
  ``corrected`` and the corrected value (AA, W at OBX^n^11 saying a result is taken back only by C, A/B,
  W/D); the same sender's older P is held. ``corrected`` is in ``stands`` and was dated instead, so a
  later P took the correction back, status and value (HIGH 1), and another sender's was refused (AE).
- A value with OBX-11 empty (the placeholder: no status stated) over a withdrawn result is not written
  into it, whatever its time: AA, W at its OBX^n^5 naming the value; a later C brings the result back
  (MED 4). It was stored under entered-in-error, hidden from clinicians.
- The refusal of a placeholder value, and the operator's decision of it, name the value (LOW 6).
- A later P's note (NTE), merged beside the final, is named in the W (rv36c's note).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read
back over ``/fhir``; the operator's decision through ``POST /admin/quarantine/{id}/replay?as=later``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_order35_as_later import _operator
from tests.test_ordfix36_final_back import _result
from tests.test_rv36a_probes import _potassium

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _by(app: str, message: str) -> str:
    return message.replace("MSH|^~\\&|LIS|", f"MSH|^~\\&|{app}|", 1)


def _corrected(engine: Engine, http: TestClient, tag: str) -> str:
    """The LIS's F 4.1 (10:00) and its C 4.3 (11:00): the Observation's id."""
    assert b"MSA|AA" in post(http, _result(f"ST36-{tag}A", "20261203100000", f"ST36M{tag}", f"ST36P{tag}", "4.1", "F"))
    (obs,) = written(engine, http, f"ST36-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _result(f"ST36-{tag}B", "20261203110000", f"ST36M{tag}", f"ST36P{tag}", "4.3", "C"))
    assert _obs(http, obs["id"])["status"] == "corrected"
    return obs["id"]


def _warned(ack: bytes, words: str) -> list[str]:
    return [e for e in err_lines(ack) if words in e and "|W|" in e]


def test_a_later_preliminary_over_a_correction_warns_at_its_status(engine: Engine, http: TestClient) -> None:
    """F, C 4.3, then the LIS's P 5.0 at 12:00 with a note: corrected 4.3 stands, AA, one W at OBX^1^11
    naming the status and the value not stored -- and the note it did store."""
    obs_id = _corrected(engine, http, "1")
    ack = post(http, _result("ST36-1C", "20261203120000", "ST36M1", "ST36P1", "5.0", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored
    (warned,) = _warned(ack, "taken back only")
    assert warned.split("|")[2] == "OBX^1^11", warned
    assert "valueQuantity" in warned and "corrected" in warned and "Observation.note" in warned, warned


def test_another_senders_preliminary_over_a_correction_is_kept_not_refused(engine: Engine, http: TestClient) -> None:
    """F, C 4.3, then the POCT's P 5.0 (its order cannot be told against the LIS's): as over a final --
    AA, corrected 4.3 kept, W at OBX^1^11; it was refused (AE) as a status change to be dated."""
    obs_id = _corrected(engine, http, "2")
    (report,) = written(engine, http, "ST36-2B", "DiagnosticReport")
    assert report["status"] == "corrected", report
    ack = post(http, _by("POCT", _result("ST36-2C", "20261203120000", "ST36M2", "ST36P2", "5.0", "P")))
    assert b"MSA|AA" in ack and b"|206^" not in ack, err_lines(ack)
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored
    # the report's P (OBR-25) is as far as its results, which stay corrected: the report too
    assert http.get(f"/fhir/DiagnosticReport/{report['id']}").json()["status"] == "corrected"
    (warned,) = _warned(ack, "taken back only")
    assert warned.split("|")[2] == "OBX^1^11", warned


def test_an_older_preliminary_over_a_correction_is_held(engine: Engine, http: TestClient) -> None:
    """F (10:00), C 4.3 (11:00), then the LIS's P 4.3 of 10:30 arriving last: the same sender's older
    statement -- held (AA, "not later" W at OBX^1^11), its note not stored."""
    obs_id = _corrected(engine, http, "3")
    ack = post(http, _result("ST36-3C", "20261203103000", "ST36M3", "ST36P3", "4.3", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3) and "note" not in stored, stored
    (warned,) = [e for e in _warned(ack, "not later") if "|OBX^" in e]  # (the report's own at OBR-25 aside)
    assert warned.split("|")[2] == "OBX^1^11" and "ST36-3B" in warned, warned


def test_a_correction_after_a_correction_goes_as_before(engine: Engine, http: TestClient) -> None:
    """The control: F, C 4.3, then the LIS's C 4.5 at 12:00 corrects again, with no warning at OBX-11."""
    obs_id = _corrected(engine, http, "4")
    ack = post(http, _result("ST36-4C", "20261203120000", "ST36M4", "ST36P4", "4.5", "C"))
    assert b"MSA|AA" in ack and not _warned(ack, "OBX^1^"), ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.5), stored


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> str:
    """The LIS's F 4.1 (10:00) and its W (11:00): the Observation's id."""
    post(http, _potassium(f"ST36-{tag}A", "20261203100000", f"ST36M{tag}", f"ST36P{tag}", "4.1", "N", "F"))
    (obs,) = written(engine, http, f"ST36-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _potassium(f"ST36-{tag}B", "20261203110000", f"ST36M{tag}", f"ST36P{tag}",
                                              "4.1", "N", "W"))
    assert _obs(http, obs["id"])["status"] == "entered-in-error"
    return obs["id"]


def test_a_placeholder_value_is_not_written_into_a_withdrawn_result(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's 13:00 4.4 with OBX-11 empty: AA, W at OBX^1^5 naming valueQuantity and 4.4,
    the withdrawn version whole (4.1, entered-in-error); the LIS's C 4.4 at 14:00 then brings it back."""
    obs_id = _withdrawn(engine, http, "6")
    before = _obs(http, obs_id)
    ack = post(http, _potassium("ST36-6C", "20261203130000", "ST36M6", "ST36P6", "4.4", "N", ""))
    assert b"MSA|AA" in ack, ack
    (warned,) = _warned(ack, "withdrawn")
    assert warned.split("|")[2] == "OBX^1^5" and "valueQuantity" in warned and "4.4" in warned, warned
    after = _obs(http, obs_id)
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    ack = post(http, _potassium("ST36-6D", "20261203140000", "ST36M6", "ST36P6", "4.4", "N", "C"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.4), after


def test_another_senders_placeholder_over_a_withdrawal_is_not_written_either(engine: Engine, http: TestClient) -> None:
    """F 4.1, the LIS's W, then the POCT's 4.4 with OBX-11 empty: not dated (nothing of it is written
    whichever is later) -- AA, W at OBX^1^5, no refusal to decide."""
    obs_id = _withdrawn(engine, http, "7")
    ack = post(http, _by("POCT", _potassium("ST36-7C", "20261203130000", "ST36M7", "ST36P7", "4.4", "N", "")))
    assert b"MSA|AA" in ack and b"|206^" not in ack, err_lines(ack)
    assert [e.split("|")[2] for e in _warned(ack, "withdrawn")] == ["OBX^1^5"], ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after


def test_the_refusal_and_decision_of_a_placeholder_name_the_value(engine: Engine, http: TestClient) -> None:
    """F 4.1, the LIS's C 5.6 (12:00), the POCT's 13:00 4.4 with OBX-11 empty: AE, ERR 206 at OBX^1^5 naming
    valueQuantity 4.4 over 5.6 and saying no status was stated; the operator's decision's note names them too."""
    post(http, _potassium("ST36-8A", "20261203100000", "ST36M8", "ST36P8", "4.1", "N", "F"))
    (obs,) = written(engine, http, "ST36-8A", "Observation")
    assert b"MSA|AA" in post(http, _potassium("ST36-8B", "20261203120000", "ST36M8", "ST36P8", "5.6", "H", "C"))
    ack = post(http, _by("POCT", _potassium("ST36-8C", "20261203130000", "ST36M8", "ST36P8", "4.4", "N", "")))
    assert b"MSA|AE" in ack, ack
    (refused,) = [e for e in err_lines(ack) if "|206^" in e]
    assert refused.split("|")[2] == "OBX^1^5", refused
    assert "valueQuantity" in refused and "4.4" in refused and "5.6" in refused and "no status" in refused, refused
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'ST36-8C')}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    (note,) = [e for e in r.json()["errors"] if "operator's decision" in e["message"]]
    assert "valueQuantity" in note["message"] and "4.4" in note["message"], note
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.4), after
