"""stfix40 (fortieth round): what rv40b and st40 left of result and report status -- real HL7 over real MLLP
into the policy community (HOSPA's prior, HOSPB's repeat: the recognition row, "flagged" = not payable) on each
backend, and real ORU^R01 over ``POST /hl7v2`` (``tests.module_store``). The community is one a module and backend
(``shared_worlds44.community_eng``, suite44c), each test sending as a person of its own (``OwnSender``) and reading
her reports and her flag; ``community`` (a store a test) stays for the modules that import it.

1. a version is dated only by the message that made it (``merge_rules._made_by``, ``Stamp.unchanged``): a P
   re-sent unchanged no longer makes the even older P's version "later" than an older final (rv40b HIGH 1);
2. OBR-25 empty, one result corrected beside one withdrawn: corrected -- decided, and pinned (st40's LOW);
3. the W at ORC-5 is not said where the order stands completed already (``convert.settle_completion``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, flag_status, own
from tests.test_hooks11_policy_edges import flags, result
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, order, ts
from tests.test_st40_status_leftovers import _hospa, _order_of, _report_of
from tests.test_stfix38_report_follows import _with_sodium

__all__ = ["community_eng", "community_mllp", "engine", "module_http"]

engine = module_eng


@pytest.fixture(params=_BACKENDS)
def community(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC; QC passed) on its own store, on each backend."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as eng:
        yield eng


def _interpreted(message: str, who: str) -> str:
    """``message`` (``_hospa``'s) with OBR-32 (the principal result interpreter) ``who``."""
    lines = message.rstrip("\n").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBR|"))
    lines[at] += f"|||||||{who}"
    return "\n".join(lines) + "\n"


def _repeat(hl7: Sender) -> None:
    """HOSPB's order and final of the same blood count, a day ago: flagged against a recognisable prior."""
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))


# --- 1. a version dated by the message that made it -----------------------------------------------------------


def test_a_p_resent_unchanged_leaves_the_older_final_its_interpreter_and_the_flag(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """HOSPA's P of its blood count at 08:00 interpreted by 王五; the LIS re-sends it unchanged at 10:00 (another
    MSH-10: no new version, its Provenance names the 08:00 P's); the P of 12:00 by 李四; then the F of 09:00
    (delivered late, no OBR-32). In MSH-7 order the F comes over the 08:00 P (the 10:00 and 12:00 kept out): the
    final report names 王五. Dated by the 10:00 re-send, the 08:00 version read "later" than the F and the final
    report lost its interpreter, unwarned. The re-send's message document keeps what it left unchanged, the
    08:00 P's nothing; HOSPB's repeat is flagged against the final (not payable)."""
    run = own(request, "SF40-1")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    assert "MSA|AA" in hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    first = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Pp1")
    assert first["resultsInterpreter"], first
    assert "MSA|AA" in hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    again = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Pp2")
    assert again["meta"]["versionId"] == first["meta"]["versionId"], again  # (unchanged: no new version)
    resent = community_eng.ingestor.messages.get(message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp2"))
    made = community_eng.ingestor.messages.get(message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp1"))
    assert resent is not None and made is not None
    assert f"DiagnosticReport/{first['id']}" in resent.get("unchanged", ()), resent.get("unchanged")
    assert f"DiagnosticReport/{first['id']}" not in made.get("unchanged", ()), made.get("unchanged")
    ack = hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    assert "MSA|AA" in ack, ack
    assert _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Pp3")["resultsInterpreter"] != first["resultsInterpreter"]
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    assert "MSA|AA" in ack, ack
    final = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ff")
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)
    _repeat(hl7)
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)


def test_a_resent_p_over_post_is_no_maker_either(engine: Engine, http: TestClient) -> None:
    """The same over ``POST /hl7v2``, both backends, potassium with its tube: P 4.0 of tube A at 09:00 by 王五,
    the same P re-sent at 10:00, the P of re-drawn tube B at 12:00 by 李四, the F 4.1 of 09:30 without SPM or
    OBR-32: the result and its report name tube A, the report 王五 -- and the re-sent P's message document
    lists the result and report it left unchanged."""
    first = _potassium("SX40-1A", "20261203090000", "X1", "4.0", "P", tube="SX40S1A").replace(
        "|CH|P", "|CH|P|||||||D003&王&五")
    assert b"MSA|AA" in post(http, first)
    (obs,) = written(engine, http, "SX40-1A", "Observation")
    (report,) = written(engine, http, "SX40-1A", "DiagnosticReport")
    again = first.replace("|SX40-1A|", "|SX40-1A2|").replace("|20261203090000||ORU", "|20261203100000||ORU")
    assert b"MSA|AA" in post(http, again)
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "SX40-1A2"))
    assert doc is not None
    assert {f"Observation/{obs['id']}", f"DiagnosticReport/{report['id']}"} <= set(doc.get("unchanged") or ()), doc
    later = _potassium("SX40-1B", "20261203120000", "X1", "5.0", "P", tube="SX40S1B", drawn="20261203110000",
                       issued="20261203114500", seen="20261203113000", observer="D002^李^四")
    assert b"MSA|AA" in post(http, later.replace("|CH|P", "|CH|P|||||||D002&李&四"))
    ack = post(http, _potassium("SX40-1C", "20261203093000", "X1", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    now = http.get(f"/fhir/Observation/{obs['id']}").json()
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert (now["status"], now["valueQuantity"]["value"]) == ("final", 4.1), now
    assert now.get("specimen") == obs["specimen"], (now.get("specimen"), err_lines(ack))
    assert after.get("specimen") == [obs["specimen"]], (after.get("specimen"), err_lines(ack))
    assert after.get("resultsInterpreter") == report["resultsInterpreter"], (after, err_lines(ack))


def test_a_resent_p_earlier_in_the_batch_is_no_maker_either(engine: Engine, http: TestClient) -> None:
    """The four messages in one batch (BHS ... BTS, one ``POST /hl7v2``): the F dates the versions the batch's
    earlier messages wrote by them (``Dates.pending``, their Provenances not written yet) -- the re-sent P among
    them made nothing (``Stamp.unchanged`` read from its processing): tube A and 王五."""
    first = _potassium("SX40-5A", "20261203090000", "X5", "4.0", "P", tube="SX40S5A").replace(
        "|CH|P", "|CH|P|||||||D003&王&五")
    again = first.replace("|SX40-5A|", "|SX40-5A2|").replace("|20261203090000||ORU", "|20261203100000||ORU")
    later = _potassium("SX40-5B", "20261203120000", "X5", "5.0", "P", tube="SX40S5B", drawn="20261203110000",
                       issued="20261203114500", seen="20261203113000", observer="D002^李^四")
    final = _potassium("SX40-5C", "20261203093000", "X5", "4.1", "F")
    body = ("BHS|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261203123000||||SX40B5\r" + first + again
            + later.replace("|CH|P", "|CH|P|||||||D002&李&四") + final + "BTS|4\r")
    answer = post(http, body)
    assert answer.count(b"MSA|AA") == 4, answer
    (obs,) = written(engine, http, "SX40-5A", "Observation")
    (report,) = written(engine, http, "SX40-5A", "DiagnosticReport")
    assert (obs["status"], obs["valueQuantity"]["value"]) == ("final", 4.1), obs
    tube = http.get(f"/fhir/{obs['specimen']['reference']}").json()["identifier"][0]["value"]
    assert tube == "SX40S5A", (tube, answer)
    assert [r.get("display") or r.get("reference") for r in report.get("resultsInterpreter", ())], report
    interpreter = http.get(f"/fhir/{report['resultsInterpreter'][0]['reference']}").json()
    assert "王" in str(interpreter.get("name")), (interpreter, answer)


# --- 2. OBR-25 empty: a correction beside a withdrawal ---------------------------------------------------------


def test_obr25_empty_a_correction_beside_a_withdrawal_is_corrected_and_flags(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Decided (st40's LOW): HOSPA's final blood count (WBC, HGB) flags HOSPB's repeat; then, under OBR-25 empty,
    WBC's C 6.3 beside HGB's W. The lab states no report status; its results say the released report was
    modified to correct errors in results it references -- R4's corrected ("subsequent to being final, the
    report has been modified to correct an error in the report or referenced results"), which a W is as much
    as a C. Not preliminary: that would take a report back from final on no word of the lab's (st40's P was the
    lab's own). The report is corrected, as under OBR-25 F or C with a result standing (stfix39), and stays a
    recognisable prior: the flag stays (not payable). Whether a panel one of whose results is withdrawn should
    count as a prior is the recognition rules' (rv40b LOW 5), the same under F, C and empty."""
    run = own(request, "SF40-2")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    assert "MSA|AA" in hl7.send(_hospa("F", "F", 10, "f"))
    _repeat(hl7)
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)
    ack = hl7.send(_hospa("C", "", 12, "c", wbc="6.3", hgb_status="W"))
    assert "MSA|AA" in ack, ack
    report = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Cc")
    assert report["status"] == "corrected", (report, ack)
    assert "OBR^1^25" not in ack, ack
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)


def test_obr25_empty_a_correction_beside_a_withdrawal_over_post(engine: Engine, http: TestClient) -> None:
    """The same on both backends over ``POST /hl7v2``: F of potassium and sodium, then under OBR-25 empty
    potassium's C 4.3 beside sodium's W -- corrected, sodium withdrawn."""
    message = _potassium("SX40-2A", "20261203100000", "X2", "4.1", "F", tube="SX40S2A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F"))
    (report,) = written(engine, http, "SX40-2A", "DiagnosticReport")
    ack = post(http, _with_sodium(_potassium("SX40-2B", "20261203120000", "X2", "4.3", "C", obr25="",
                                             tube="SX40S2A"), "W"))
    assert b"MSA|AA" in ack, ack
    assert http.get(f"/fhir/DiagnosticReport/{report['id']}").json()["status"] == "corrected", err_lines(ack)


# --- 3. the W at ORC-5 where the order stays completed ---------------------------------------------------------


@pytest.mark.parametrize("obr25", ["C", ""])
def test_a_withdrawal_after_the_final_says_nothing_of_orc5(
        community_eng: Engine, community_mllp: int, obr25: str, request: pytest.FixtureRequest) -> None:
    """HOSPA's final (ORC-5 CM) completes its order and flags HOSPB's repeat; HOSPA's W of both results (ORC-5 CM
    again, OBR-25 ``obr25``): the report is withdrawn, the flag void (payable), the order stays completed -- and
    the ACK says nothing at ORC-5: the CM would have changed nothing (st40's W read as the order taken back).
    The first-met W still says it (st40's test): there the order is not what ORC-5 said."""
    run = own(request, "SF40-3")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    assert "MSA|AA" in hl7.send(_hospa("F", "F", 10, "f"))
    _repeat(hl7)
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)
    ack = hl7.send(_hospa("W", obr25, 12, "w"))
    assert "MSA|AA" in ack, ack
    report = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ww")
    assert report["status"] == "entered-in-error", report
    assert _order_of(community_eng, report)["status"] == "completed", ack
    assert "ORC^1^5" not in ack, ack
    assert flag_status(community_eng, run) == "void", flags(community_eng)


def test_a_withdrawal_after_the_final_over_post_says_nothing_of_orc5(engine: Engine, http: TestClient) -> None:
    """Both backends: the LIS's F (ORC-5 CM) then its W of the one result (ORC-5 CM, OBR-25 F): the order stays
    completed, no W at ORC-5; the W first met (another order, no final before) still says it."""
    assert b"MSA|AA" in post(http, _potassium("SX40-3A", "20261203100000", "X3", "4.1", "F"))
    (request,) = written(engine, http, "SX40-3A", "ServiceRequest")
    assert request["status"] == "completed", request
    ack = post(http, _potassium("SX40-3B", "20261203110000", "X3", "4.1", "W", obr25="F"))
    assert b"MSA|AA" in ack, ack
    assert http.get(f"/fhir/ServiceRequest/{request['id']}").json()["status"] == "completed"
    assert not [e for e in err_lines(ack) if e.split("|")[2] == "ORC^1^5"], err_lines(ack)
    first = post(http, _potassium("SX40-4A", "20261203110000", "X4", "4.1", "W", obr25="F"))
    assert b"MSA|AA" in first, first
    (said,) = [e for e in err_lines(first) if e.split("|")[2] == "ORC^1^5"]
    assert "the order stays as it stands" in said, said
