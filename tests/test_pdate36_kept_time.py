"""pdate36: what ``not_back`` keeps out of a result (a P after its F, C or A) is the kept-out observation's
value AND its time (OBX-14, ``effective[x]``: merge.yaml ``not_back.with``) -- a later P of a specimen observed
at 11:30 stored its time beside the stored value, so the record said 4.1 (or the corrected 4.3) was observed
at 11:30 (review rv36f MED 3). Its note (NTE) is still merged and named in the W (ordfix36's test takes it).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _later_p(control: str, mrn: str, order: str) -> str:
    """The LIS's 12:00 P 5.0 of a specimen observed at 11:30 (OBX-14), with a note."""
    return _result(control, "20261203120000", mrn, order, "5.0", "P", note="溶血").replace(
        "|20261203083000", "|20261203113000")


def test_a_kept_out_preliminary_after_a_final_keeps_the_finals_time(engine: Engine, http: TestClient) -> None:
    """F 4.1 observed 08:30, then a later P 5.0 observed 11:30: final 4.1 stays observed at 08:30; the W at
    OBX^1^11 names the time kept out with the value; the P's note is stored and named as stored."""
    assert b"MSA|AA" in post(http, _result("PD36-1A", "20261203100000", "PD36M1", "PD36P1", "4.1", "F"))
    (obs,) = written(engine, http, "PD36-1A", "Observation")
    before = _obs(http, obs["id"])
    assert before["effectiveDateTime"].startswith("2026-12-03T08:30:00"), before
    ack = post(http, _later_p("PD36-1B", "PD36M1", "PD36P1"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert after["effectiveDateTime"] == before["effectiveDateTime"], after
    assert [n["text"] for n in after.get("note", ())] == ["溶血"], after
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e and "|W|" in e]
    assert warned.split("|")[2] == "OBX^1^11", warned
    kept, _, stored = warned.partition("what else it states is stored")
    assert "Observation.effectiveDateTime" in kept and "Observation.effectiveDateTime" not in stored, warned
    assert "Observation.note" in stored, warned


def test_a_preliminary_of_the_same_time_names_no_time(engine: Engine, http: TestClient) -> None:
    """F 4.1, then a later P 5.0 of the same specimen (OBX-14 08:30 again): nothing of the time differs, so
    the W names the status and the value only -- the time is not said to be kept out when it was not."""
    assert b"MSA|AA" in post(http, _result("PD36-2A", "20261203100000", "PD36M2", "PD36P2", "4.1", "F"))
    (obs,) = written(engine, http, "PD36-2A", "Observation")
    ack = post(http, _result("PD36-2B", "20261203120000", "PD36M2", "PD36P2", "5.0", "P"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e and "|W|" in e]
    assert "valueQuantity" in warned and "effective" not in warned, warned


def test_a_later_correction_takes_its_value_not_a_time_of_its_own(engine: Engine, http: TestClient) -> None:
    """F 4.1 observed 08:30, then a later C 4.3 stating 11:30 (OBX-14): a correction is not kept out, so its value
    is stored -- ``with`` keeps out only what ``not_back`` keeps out -- but it states the result again, not another
    observation: the time stays 08:30 and the ACK warns of the 11:30 at OBX-14 (merge.yaml ``exam_time``; this
    test took the correction's time until the forty-second round, when a LIS restamping its corrections with their
    send time dated a 2024 result 210 days later: rv41k MED 6, prior42)."""
    assert b"MSA|AA" in post(http, _result("PD36-3A", "20261203100000", "PD36M3", "PD36P3", "4.1", "F"))
    (obs,) = written(engine, http, "PD36-3A", "Observation")
    ack = post(http, _result("PD36-3B", "20261203120000", "PD36M3", "PD36P3", "4.3", "C").replace(
        "|20261203083000", "|20261203113000"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    assert after["effectiveDateTime"].startswith("2026-12-03T08:30:00"), after
    (warned,) = [e for e in err_lines(ack) if "Observation.effectiveDateTime" in e and "|W|" in e]
    assert warned.split("|")[2] == "OBX^1^14" and "the time the result was made" in warned, warned
