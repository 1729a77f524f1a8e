"""rv39e (thirty-ninth round review): probes of stat39 (9d19110f) and stfix39 (ed62455e) on result and report
status -- real ORU^R01 over ``POST /hl7v2`` into the real store on each backend, read back over ``/fhir``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.conftest import running_mllp
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_hooks11_policy_edges import flag_of, flags, repeat, result
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, ts
from tests.test_stfix38_report_follows import _with_sodium

__all__ = ["engine", "module_http"]

engine = module_eng


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _final(engine: Engine, http: TestClient, tag: str, *, tube: bool = True, sodium: bool = False,
           stamp: str = "20261203100000") -> tuple[list[dict], dict]:
    message = _potassium(f"RV39E-{tag}A", stamp, f"E{tag}", "4.1", "F", tube=f"RV39ES{tag}A" if tube else "")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F") if sodium else message)
    results = written(engine, http, f"RV39E-{tag}A", "Observation")
    (report,) = written(engine, http, f"RV39E-{tag}A", "DiagnosticReport")
    return results, report


def test_an_older_x_after_the_final_does_not_take_its_value(engine: Engine, http: TestClient) -> None:
    """F 4.1 at 10:00, then the LIS's X with OBX-5 empty stamped 09:00 (older, delivered late): in MSH-7
    order the final is the later statement, so its value (and status) stand."""
    (obs,), report = _final(engine, http, "1")
    ack = post(http, _potassium("RV39E-1B", "20261203090000", "E1", "", "X", tube="RV39ES1A"))
    assert b"MSA|A" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after.get("valueQuantity", {}).get("value") == 4.1, (after, err_lines(ack))
    assert after["status"] == "final", after


def test_an_older_correction_under_f_does_not_make_the_report_corrected(engine: Engine, http: TestClient) -> None:
    """F 4.1 at 10:00, then the LIS's C 4.3 under OBR-25 F stamped 09:00 (older): the result is held as
    older (final 4.1), so its report has no corrected result and stays final."""
    (obs,), report = _final(engine, http, "2")
    ack = post(http, _potassium("RV39E-2B", "20261203090000", "E2", "4.3", "C", obr25="F", tube="RV39ES2A"))
    assert b"MSA|A" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (result["status"], after["status"]) == ("final", "final"), (result, after, err_lines(ack))


def test_a_tubeless_withdrawal_beside_a_kept_out_p_takes_no_redrawn_tube(engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium with no SPM, then the LIS's W of sodium beside potassium's P of a re-drawn
    tube B (kept out of its final): the withdrawn sodium was never measured in tube B."""
    results, report = _final(engine, http, "3", tube=False, sodium=True)
    message = _potassium("RV39E-3B", "20261203120000", "E3", "5.0", "P", tube="RV39ES3B", **_REDRAWN)
    ack = post(http, _with_sodium(message, "W"))
    assert b"MSA|AA" in ack, ack
    after = {o["id"]: _read(http, f"Observation/{o['id']}") for o in results}
    assert sorted(a["status"] for a in after.values()) == ["entered-in-error", "final"]
    assert {a["status"]: a.get("specimen") for a in after.values()} == {"entered-in-error": None, "final": None}


def test_an_x_after_a_final_voids_the_report_and_keeps_a_trend_free_of_a_value(
        engine: Engine, http: TestClient) -> None:
    """F 4.1, then X under OBR-25 F (the LIS states its report final while the result cannot be obtained):
    the result is cancelled with no value, the report -- its one result not obtained -- cancelled, and the
    patient's $everything still answers 200."""
    (obs,), report = _final(engine, http, "4")
    ack = post(http, _potassium("RV39E-4B", "20261203110000", "E4", "", "X", obr25="F", tube="RV39ES4A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after["status"] == "cancelled" and "valueQuantity" not in after, after
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "cancelled"
    patient = obs["subject"]["reference"]
    assert http.get(f"/fhir/{patient}/$everything").status_code == 200


def test_a_partly_held_message_adds_no_tube_to_the_withdrawn_report(engine: Engine, http: TestClient) -> None:
    """stat39's own MED, confirmed: F of potassium and sodium (tube A), W of potassium, then potassium's P of
    a re-drawn tube B (held whole over its withdrawal) beside sodium's W (stored): every result withdrawn,
    the report entered-in-error -- its specimen list as before, not naming tube B that no result of it has."""
    results, report = _final(engine, http, "5", sodium=True)
    withdraw = _potassium("RV39E-5B", "20261203110000", "E5", "4.1", "W", obr25="", tube="RV39ES5A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "F"))
    before = _read(http, f"DiagnosticReport/{report['id']}")
    message = _potassium("RV39E-5C", "20261203120000", "E5", "5.0", "P", obr25="", tube="RV39ES5B", **_REDRAWN)
    assert b"MSA|AA" in post(http, _with_sodium(message, "W"))
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", after
    tubes = {s["reference"] for o in results for s in [_read(http, f"Observation/{o['id']}").get("specimen")] if s}
    assert {s["reference"] for s in after.get("specimen") or ()} <= tubes, (before.get("specimen"), after)


@pytest.fixture
def community(tmp_path: Path) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC; QC passed) on its own store."""
    yield from community_engine(tmp_path)


def _hospa_report(community: Engine) -> dict:
    doc = community.ingestor.messages.get(message_id("HOSPA", "HOSPA-ORU-A1-F"))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith("DiagnosticReport/")]
    return community.repository.read("DiagnosticReport", ref.split("/")[1])


def _later(status: str, obr25: str, value: str, hours: int, control: str) -> str:
    """HOSPA's blood count again at OBX-11 ``status`` (OBX-5 ``value``) under OBR-25 ``obr25``, MSH-7 ``hours``
    after its final's day start (the final: 10)."""
    when = ts(5, 10)
    sent = result("HOSPA", "A1", CBC, when, status=status, control=control)
    obr = {"W": "X"}.get(status, status)
    sent = sent.replace(f"|||{obr}\n", f"|||{obr25}\n").replace(f"|C1|{when}|", f"|C1|{ts(5, hours)}|")
    return sent.replace("||6.1|10*9/L|", f"||{value}|10*9/L|")


@pytest.mark.parametrize("obr25", ["C", "F"])
def test_an_x_after_the_final_voids_the_flag(community: Engine, obr25: str) -> None:
    """HOSPA's final flags HOSPB's repeat; HOSPA then states X (no value: cannot be obtained) under OBR-25
    ``obr25``: its report is cancelled and no recognisable prior -- the flag goes void (no "not payable"
    against a result the lab says was never obtained)."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        repeat(hl7, prior_days=5, repeat_days=1)
        assert flag_of(community) == "flagged", flags(community)
        ack = hl7.send(_later("X", obr25, "", 12, "x"))
        assert "MSA|AA" in ack, ack
        assert _hospa_report(community)["status"] == "cancelled", ack
        assert flag_of(community) == "void", flags(community)


@pytest.mark.parametrize(("status", "value", "control", "report", "flag"), [
    # a correction: the result back corrected and its report with it (stat39 ``_revived``) -- a recognisable
    # prior again, so the flag its withdrawal voided comes back (``recognition.prior_changes``)
    pytest.param("C", "6.3", "c", "corrected", "flagged", id="a_correction_restores_the_flag"),
    # a re-issue F under P: the lab says the report is preliminary -- no recognisable prior, no flag back
    pytest.param("F", "6.2", "p", "preliminary", "void", id="a_reissue_restores_no_flag"),
])
def test_a_p_after_a_withdrawal_of_the_prior(community: Engine, status: str, value: str, control: str, report: str,
                                            flag: str) -> None:
    """HOSPA's final flags HOSPB's repeat; HOSPA's W (OBR-25 C) voids it; HOSPA's ``status`` ``value`` under
    OBR-25 P: its report ``report``, the flag ``flag``."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        repeat(hl7, prior_days=5, repeat_days=1)
        assert flag_of(community) == "flagged", flags(community)
        assert "MSA|AA" in hl7.send(_later("W", "C", "6.1", 12, "w"))
        assert flag_of(community) == "void", flags(community)
        ack = hl7.send(_later(status, "P", value, 13, control))
        assert "MSA|AA" in ack, ack
        assert _hospa_report(community)["status"] == report, (_hospa_report(community)["status"], ack)
        assert flag_of(community) == flag, (_hospa_report(community)["status"], flags(community))


def test_an_x_after_a_final_leaves_no_interpretation_of_the_value_taken(engine: Engine, http: TestClient) -> None:
    """F 6.1 flagged H (OBX-8), then the LIS's X with OBX-5, OBX-6, OBX-7 and OBX-8 empty: the value is taken
    away (stat39), so nothing should still call it high beside "cannot be obtained"."""
    high = _potassium("RV39E-6A", "20261203100000", "E6", "6.1", "F", tube="RV39ES6A").replace(
        "|6.1|mmol/L|3.5-5.5|N|", "|6.1|mmol/L|3.5-5.5|H|")
    assert b"MSA|AA" in post(http, high)
    (obs,) = written(engine, http, "RV39E-6A", "Observation")
    assert obs["interpretation"][0]["coding"][0]["code"] == "H", obs
    x = _potassium("RV39E-6B", "20261203110000", "E6", "", "X", tube="RV39ES6A").replace("||mmol/L|3.5-5.5|N|", "|||||")
    assert "|||||||X|" in x, x
    ack = post(http, x)
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after["status"] == "cancelled" and "valueQuantity" not in after, after
    assert "interpretation" not in after and "referenceRange" not in after, after


def test_a_fresh_report_under_p_with_its_result_final_is_preliminary(
        engine: Engine, http: TestClient) -> None:
    """Control for the path ``_revived`` leaves alone: a first report under OBR-25 P whose one result is F
    (table 0123 P: "a verified early result is available, final results not yet obtained") is
    preliminary -- the sender's word, as every report of a P is."""
    ack = post(http, _potassium("RV39E-7A", "20261203100000", "E7", "4.1", "F", obr25="P", tube="RV39ES7A"))
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, "RV39E-7A", "DiagnosticReport")
    assert report["status"] == "preliminary", report


def test_a_withdrawn_report_reissued_under_p_stays_preliminary(engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium, W of both (OBR-25 empty: entered-in-error), then the LIS re-issues
    potassium F 4.2 under OBR-25 P (sodium not yet re-measured): the lab says the report is preliminary,
    and sodium is still withdrawn -- the report is not final."""
    results, report = _final(engine, http, "8", sodium=True)
    withdraw = _potassium("RV39E-8B", "20261203110000", "E8", "4.1", "W", obr25="", tube="RV39ES8A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "W"))
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "entered-in-error"
    ack = post(http, _potassium("RV39E-8C", "20261203120000", "E8", "4.2", "F", obr25="P", tube="RV39ES8A"))
    assert b"MSA|AA" in ack, ack
    statuses = sorted(_read(http, f"Observation/{o['id']}")["status"] for o in results)
    assert statuses == ["entered-in-error", "final"], statuses
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] not in ("final", "corrected", "amended"), (after["status"], err_lines(ack))


@pytest.mark.parametrize("obr25", ["F", "C"])
def test_a_report_first_met_withdrawn_is_no_final_report(engine: Engine, http: TestClient, obr25: str) -> None:
    """stfix39's own LOW, probed: the first message huren meets of a report (its final was never received --
    quarantined, or sent before the interface went live) is the LIS's W of its one result under OBR-25
    ``obr25``: the report lists only a withdrawn result, so it is no final (or corrected) report -- a
    recognisable prior (``recognition.decision.FINAL_STATUSES``) of a result the lab says was wrong."""
    ack = post(http, _potassium(f"RV39E-9{obr25}", "20261203110000", f"E9{obr25}", "4.1", "W", obr25=obr25,
                                tube=f"RV39ES9{obr25}"))
    assert b"MSA|A" in ack, ack
    (obs,) = written(engine, http, f"RV39E-9{obr25}", "Observation")
    (report,) = written(engine, http, f"RV39E-9{obr25}", "DiagnosticReport")
    assert obs["status"] == "entered-in-error", obs
    assert report["status"] not in ("final", "corrected", "amended", "appended"), report


def test_a_prior_first_met_withdrawn_flags_no_repeat(community: Engine) -> None:
    """The same through recognition: HOSPA's order, then its first result message the W of its blood count
    under OBR-25 C (the final never received); HOSPB's repeat must not be flagged against it."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        ack = hl7.send(_later("W", "C", "6.1", 12, "w"))
        assert "MSA|AA" in ack, ack
        hl7.send(order("HOSPB", "B1", CBC, ts(1)))
        hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
        assert flag_of(community) in (None, "void"), (flags(community), ack)


def test_an_older_final_keeps_what_an_even_older_p_stated(engine: Engine, http: TestClient) -> None:
    """The LIS's P at 09:00 naming an interpreter (OBR-32 王五), its P of a re-drawn tube at 12:00 naming none,
    then its final at 11:50 naming none (delivered late). In MSH-7 order: P 09:00, F 11:50, P 12:00 (kept out)
    -- the 09:00 P's interpreter was stated before the final and the final says nothing of it, so it stays
    (a thinner message erases nothing). stat39's ``_as_in_order`` takes out every stored element the final
    does not state, as if only the later P had stated it."""
    first = _potassium("RV39E-10A", "20261203090000", "E10", "4.0", "P", tube="RV39ES10A")
    first = first.replace("|CH|P", "|CH|P|||||||D003&王&五")
    assert b"MSA|AA" in post(http, first)
    (report,) = written(engine, http, "RV39E-10A", "DiagnosticReport")
    assert report.get("resultsInterpreter"), report
    later = _potassium("RV39E-10B", "20261203120000", "E10", "5.0", "P", tube="RV39ES10B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    assert _read(http, f"DiagnosticReport/{report['id']}").get("resultsInterpreter"), "the later P erased it"
    ack = post(http, _potassium("RV39E-10C", "20261203115000", "E10", "4.1", "F", tube="RV39ES10A"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert after.get("resultsInterpreter") == report["resultsInterpreter"], (after, err_lines(ack))
