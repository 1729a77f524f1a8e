"""sfix39 (thirty-ninth round): report and result status after review rv39e -- real ORU^R01 over
``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over ``/fhir``.

rv39e's own probes (``tests/test_rv39e_probes.py``) and rv39a's finding 5 pin the defects; these tests pin
what the fixes say beyond them: the W a first report withdrawn gets at OBR-25, and that an older final
takes the version as of the message before the later P (``MergeRules._before_later``) -- an element the
later P changed goes back to what the older P stated, not out.
"""

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


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def test_a_first_report_withdrawn_under_f_says_why_at_obr25(engine: Engine, http: TestClient) -> None:
    """The first message of a report is the LIS's W of its one result under OBR-25 F: the report is
    entered-in-error (``all_results``, asked of the first version: ``_withdrawn_first``), and the ACK's W
    at OBR^1^25 says the F was not stored and why."""
    ack = post(http, _potassium("SFX39-1A", "20261203110000", "X1", "4.1", "W", obr25="F", tube="SFX39S1A"))
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, "SFX39-1A", "DiagnosticReport")
    assert report["status"] == "entered-in-error", report
    (warned,) = [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"]
    assert '"final" was not stored' in warned and "entered-in-error" in warned, warned


def test_a_first_report_with_a_result_standing_beside_a_withdrawn_one_is_final(
        engine: Engine, http: TestClient) -> None:
    """Control: the first message lists potassium withdrawn and sodium final under OBR-25 F -- a result
    stands, so the report is the lab's final, unwarned at OBR-25."""
    message = _potassium("SFX39-2A", "20261203110000", "X2", "4.1", "W", obr25="F", tube="SFX39S2A")
    ack = post(http, _with_sodium(message, "F"))
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, "SFX39-2A", "DiagnosticReport")
    assert report["status"] == "final", report
    assert not [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"], err_lines(ack)


def test_an_older_final_gives_back_the_interpreter_the_later_p_replaced(engine: Engine, http: TestClient) -> None:
    """P at 09:00 interpreted by 王五 (OBR-32), the later P of a re-drawn tube at 12:00 by 李四, then the F of
    11:50 naming none (delivered late). In MSH-7 order (P 09:00, F 11:50, the later P kept out) the final
    report is interpreted by 王五: the 12:00 P's 李四 goes, and the 09:00 P's name comes back -- not none."""
    first = _potassium("SFX39-3A", "20261203090000", "X3", "4.0", "P", tube="SFX39S3A")
    assert b"MSA|AA" in post(http, first.replace("|CH|P", "|CH|P|||||||D003&王&五"))
    (report,) = written(engine, http, "SFX39-3A", "DiagnosticReport")
    later = _potassium("SFX39-3B", "20261203120000", "X3", "5.0", "P", tube="SFX39S3B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later.replace("|CH|P", "|CH|P|||||||D002&李&四"))
    replaced = _read(http, f"DiagnosticReport/{report['id']}")["resultsInterpreter"]
    assert replaced != report["resultsInterpreter"], replaced
    ack = post(http, _potassium("SFX39-3C", "20261203115000", "X3", "4.1", "F", tube="SFX39S3A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert after.get("resultsInterpreter") == report["resultsInterpreter"], (after, err_lines(ack))


def test_an_older_tubeless_final_keeps_the_tube_an_even_older_p_named(engine: Engine, http: TestClient) -> None:
    """P 4.0 of tube A at 09:00, the later P 5.0 of a re-drawn tube B at 12:00, then the F 4.1 of 11:50 with
    no SPM. In MSH-7 order the F comes over the 09:00 P (tube A, kept: the F states none) and the 12:00 P is
    kept out: result and report name tube A -- neither tube B (the later P's) nor none."""
    assert b"MSA|AA" in post(http, _potassium("SFX39-4A", "20261203090000", "X4", "4.0", "P", tube="SFX39S4A"))
    (obs,) = written(engine, http, "SFX39-4A", "Observation")
    (report,) = written(engine, http, "SFX39-4A", "DiagnosticReport")
    assert obs.get("specimen") and report.get("specimen") == [obs["specimen"]], (obs, report)
    later = _potassium("SFX39-4B", "20261203120000", "X4", "5.0", "P", tube="SFX39S4B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    assert _read(http, f"Observation/{obs['id']}")["specimen"] != obs["specimen"]  # (the later P's tube B)
    ack = post(http, _potassium("SFX39-4C", "20261203115000", "X4", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (result["status"], result["valueQuantity"]["value"]) == ("final", 4.1), result
    assert result.get("specimen") == obs["specimen"], (result, err_lines(ack))
    assert (after["status"], after.get("specimen")) == ("final", [obs["specimen"]]), (after, err_lines(ack))


def test_a_partly_held_message_names_the_tube_it_did_not_add(engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium (tube A), W of potassium, then potassium's P of a re-drawn tube B (held
    over its withdrawal) beside sodium's W, OBR-25 empty: the report is entered-in-error with tube A alone, and
    its W names the specimen it did not add, stated by the held result alone."""
    message = _potassium("SFX39-5A", "20261203100000", "X5", "4.1", "F", tube="SFX39S5A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F"))
    (report,) = written(engine, http, "SFX39-5A", "DiagnosticReport")
    withdraw = _potassium("SFX39-5B", "20261203110000", "X5", "4.1", "W", obr25="", tube="SFX39S5A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "F"))
    held = _potassium("SFX39-5C", "20261203120000", "X5", "5.0", "P", obr25="", tube="SFX39S5B", **_REDRAWN)
    ack = post(http, _with_sodium(held, "W"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (after["status"], after.get("specimen")) == ("entered-in-error", report["specimen"]), after
    (warned,) = [e for e in err_lines(ack) if "every result the report lists" in e]
    assert "nor specimen" in warned and "kept out alone" in warned, warned
