"""rv40b (fortieth round review): probes of sfix39's MSH-7 order of a result (``MergeRules._before_later``,
``_older_over_later``) -- real ORU^R01 over ``POST /hl7v2`` and a FHIR client's PUT over ``/fhir``, into the
real store on each backend (``tests.module_store``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium

__all__ = ["engine", "module_http"]

engine = module_eng


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def test_an_older_tubeless_final_keeps_tube_a_past_a_clients_note(engine: Engine, http: TestClient) -> None:
    """P 4.0 of tube A at 09:00; the later P 5.0 of a re-drawn tube B at 12:00; a nurse station's FHIR client
    adds a note to the result (PUT, the rest as read); then the F 4.1 of 11:50 with no SPM. In MSH-7 order the
    final comes over the 09:00 P (tube A) and the 12:00 P is kept out: the result names tube A, as its report
    does -- the client's version, which states nothing of the tube of its own, does not make tube B 'before'."""
    assert b"MSA|AA" in post(http, _potassium("RV40B-1A", "20261203090000", "V1", "4.0", "P", tube="RV40BS1A"))
    (obs,) = written(engine, http, "RV40B-1A", "Observation")
    (report,) = written(engine, http, "RV40B-1A", "DiagnosticReport")
    later = _potassium("RV40B-1B", "20261203120000", "V1", "5.0", "P", tube="RV40BS1B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    now = _read(http, f"Observation/{obs['id']}")
    assert now["specimen"] != obs["specimen"]  # (the later P's tube B)
    now.setdefault("note", []).append({"text": "护士站：已通知医生"})
    assert http.put(f"/fhir/Observation/{obs['id']}", json=now).status_code == 200
    ack = post(http, _potassium("RV40B-1C", "20261203115000", "V1", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (result["status"], result["valueQuantity"]["value"]) == ("final", 4.1), result
    assert after.get("specimen") == [obs["specimen"]], after
    assert result.get("specimen") == obs["specimen"], (result.get("specimen"), obs["specimen"], err_lines(ack))


def test_an_older_final_keeps_what_a_p_resent_unchanged_stated(engine: Engine, http: TestClient) -> None:
    """P 4.0 of tube A at 09:00 interpreted by 王五; the LIS re-sends that P unchanged at 10:00 (another MSH-10:
    no new version); the P of a re-drawn tube B at 12:00 by 李四; then the F 4.1 of 09:30 without SPM or
    OBR-32. In MSH-7 order the F comes over the 09:00 P (the 10:00 and 12:00 Ps kept out): the result and
    report name tube A and the report 王五 -- as they do without the re-send (sfix39's own test)."""
    first = _potassium("RV40B-2A", "20261203090000", "V2", "4.0", "P", tube="RV40BS2A")
    first = first.replace("|CH|P", "|CH|P|||||||D003&王&五")
    assert b"MSA|AA" in post(http, first)
    (obs,) = written(engine, http, "RV40B-2A", "Observation")
    (report,) = written(engine, http, "RV40B-2A", "DiagnosticReport")
    again = first.replace("|RV40B-2A|", "|RV40B-2A2|").replace("|20261203090000||ORU", "|20261203100000||ORU")
    assert b"MSA|AA" in post(http, again)
    assert _read(http, f"Observation/{obs['id']}")["meta"]["versionId"] == "1"  # (unchanged: no new version)
    later = _potassium("RV40B-2B", "20261203120000", "V2", "5.0", "P", tube="RV40BS2B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later.replace("|CH|P", "|CH|P|||||||D002&李&四"))
    ack = post(http, _potassium("RV40B-2C", "20261203093000", "V2", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (result["status"], after["status"]) == ("final", "final"), (result, after)
    assert result.get("specimen") == obs["specimen"], (result.get("specimen"), err_lines(ack))
    assert after.get("specimen") == [obs["specimen"]], (after.get("specimen"), err_lines(ack))
    assert after.get("resultsInterpreter") == report["resultsInterpreter"], (after, err_lines(ack))
