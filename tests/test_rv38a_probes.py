"""rv38a: review probes of the thirty-seventh round's unreviewed merges -- statfix37 (a status alone over a
withdrawal, an older change of status), notback37 (a later P kept out of a final result whole but its note;
the report's times stand with its status) and codefix37 (the stand-in mark not a FHIR client's; a stand-in
joins no panel; the report follows only its filler's own XX).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
and written over ``/fhir`` (TestClient). Each test uses numbers of its own. A probe that shows a defect is
a strict xfail naming its severity (thirty-eighth round, rv38a).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_codefix36_order_code import _reports
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _nb_result
from tests.test_ordfix36_final_back import _result
from tests.test_srfix35_order_code import orm, oru, send, the_order

__all__ = ["engine", "module_http"]

engine = module_eng


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


# --- statfix37: a withdrawal and an older change of status ----------------------------------------------


def _final_then(engine: Engine, http: TestClient, tag: str, then: tuple[str, str], stamp: str) -> tuple[dict, bytes]:
    """The LIS's F 4.1 (10:00), then its ``then`` (value, OBX-11) at MSH-7 ``stamp``: the result as stored."""
    assert b"MSA|AA" in post(http, _result(f"RV38A-{tag}A", "20261203100000", f"RV38AM{tag}", f"RV38AP{tag}",
                                           "4.1", "F"))
    (obs,) = written(engine, http, f"RV38A-{tag}A", "Observation")
    ack = post(http, _result(f"RV38A-{tag}B", stamp, f"RV38AM{tag}", f"RV38AP{tag}", *then))
    return _read(http, f"Observation/{obs['id']}"), ack


def test_an_older_withdrawal_restating_its_value_is_held_under_a_later_final(engine: Engine, http: TestClient) -> None:
    """The control: F 4.1 (10:00), then the LIS's W 4.1 of 09:30 arriving last. In MSH-7 order the W then
    the F stating its value brings it back: final 4.1 either way."""
    after, ack = _final_then(engine, http, "1", ("4.1", "W"), "20261203093000")
    assert b"MSA|AA" in ack, ack
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), (after, err_lines(ack))


def test_an_older_withdrawal_with_no_value_is_held_under_a_later_final(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), then the LIS's W of 09:30 with OBX-5 empty arriving last: in MSH-7 order the W, then
    the F stating its value (a result: brings it back) -- final 4.1. It must be held as the same W stating
    4.1 is (the control above), not withdraw the later final (``_moves`` asks ``_backward`` the other way
    round with the older message's own values: guarded here)."""
    after, ack = _final_then(engine, http, "2", ("", "W"), "20261203093000")
    assert b"MSA|AA" in ack, ack
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), (after, err_lines(ack))


def test_a_final_with_obx5_null_over_a_withdrawal_is_held(engine: Engine, http: TestClient) -> None:
    """F 4.1, W (11:00), then the LIS's F (12:00) with OBX-5 ``""`` (the explicit null: it deletes, states
    no value): a status alone -- the withdrawal stands, nothing written (no value, no note)."""
    before, ack = _final_then(engine, http, "3", ("4.1", "W"), "20261203110000")
    assert b"MSA|AA" in ack and before["status"] == "entered-in-error", (before, ack)
    ack = post(http, _result("RV38A-3C", "20261203120000", "RV38AM3", "RV38AP3", '""', "F", note="复核"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{before['id']}")
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after.get("note")) == ("entered-in-error", None), after


# --- notback37: a later P kept out of a final result and its report --------------------------------------


def _interpreted(message: str, interpreter: str) -> str:
    """``message`` with OBR-32 (the principal result interpreter, NDL: ID&family&given) stated."""
    lines = message.split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBR|"))
    lines[at] += "|" * 7 + interpreter
    return "\r".join(lines)


def test_a_kept_out_p_does_not_rename_the_final_reports_interpreter(engine: Engine, http: TestClient) -> None:
    """F 4.1 signed by 张三 (OBR-32 D001), then the LIS's later P 5.0 of a re-drawn tube signed by 李四
    (OBR-32 D002): the result is kept out whole, the report stays final with its times -- and the final
    report must still name 张三, who interpreted the final result it lists, not 李四 who signed a preliminary
    that was not stored."""
    tag = "RV38A4"
    first = _interpreted(_nb_result("RV38A-4A", "20261203100000", tag, "4.1", "F", tube="RV38AS4A"), "D001&张&三")
    assert b"MSA|AA" in post(http, first)
    (report,) = written(engine, http, "RV38A-4A", "DiagnosticReport")
    before = _read(http, f"DiagnosticReport/{report['id']}")
    assert [r.get("display") for r in before.get("resultsInterpreter", ())] == ["张三"], before
    later = _interpreted(_nb_result("RV38A-4B", "20261203120000", tag, "5.0", "P", tube="RV38AS4B", **_REDRAWN),
                         "D002&李&四")
    ack = post(http, later)
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final" and after["effectiveDateTime"] == before["effectiveDateTime"], after
    assert after.get("resultsInterpreter") == before.get("resultsInterpreter"), (before, after)


def test_another_applications_final_does_not_bring_back_the_lis_withdrawal(engine: Engine, http: TestClient) -> None:
    """F 4.1, the LIS's W (11:00: posted as wrong, perhaps another patient's), then a POCT analyser's F 4.3
    (12:00) stating a value under the same numbers: not the LIS's word on its withdrawal -- the withdrawal
    stands (refused, AE, as another application's value over a correction is: mixfix36)."""
    before, ack = _final_then(engine, http, "5", ("4.1", "W"), "20261203110000")
    assert b"MSA|AA" in ack and before["status"] == "entered-in-error", (before, ack)
    poct = _result("RV38A-5C", "20261203120000", "RV38AM5", "RV38AP5", "4.3", "F").replace("|LIS|", "|POCT|", 1)
    ack = post(http, poct)
    after = _read(http, f"Observation/{before['id']}")
    assert after["status"] == "entered-in-error", (after, err_lines(ack))


# --- codefix37: the stand-in and a panel ------------------------------------------------------------------


def test_a_stand_in_after_a_coded_report_leaves_its_code(http: TestClient) -> None:
    """The LIS's F naming R38T^凝血^L with its result PT (LOINC); then its message under the same filler number
    with OBR-4 empty (huren's stand-in: its result's code) and another result only (R38H): the report lists
    both results and is still R38T's, coded -- the stand-in names no test (rv37c MED 3's rule), so it neither
    joins a panel text nor replaces the sender's code."""
    placer = "RV38A-PANEL"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="R38T^凝血^L"))
    (report,) = _reports(http, the_order(http, placer))
    second = oru(placer, item="").replace("OBX|1|NM|5902-2^PT^LN||12.5|s|",
                                           "OBX|1|NM|R38H^纤维蛋白原^L||3.1|g/L|")
    ack = send(http, second)
    assert "MSA|AA" in ack, ack
    (after,) = _reports(http, the_order(http, placer))
    assert len(after["result"]) == 2, after
    assert [c["code"] for c in after["code"].get("coding") or ()] == ["R38T"], after["code"]
    assert "extension" not in after["code"], after["code"]


def _xray(control: str, stamp: str, status: str, impression: str) -> str:
    """The PACS's chest film report under RV38A-DR (OBR-25 ``status``), MSH-7 ``stamp``: findings and one
    impression, both at ``status``."""
    return "\r".join([
        f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
        "PID|1||RV38A-DRM^^^FNXRMYY^MR||赵^六||19700305|F",
        "ORC|RE|RV38A-DR^HIS|RV38A-DRF^PACS||CM",
        "OBR|1|RV38A-DR^HIS|RV38A-DRF^PACS|DR001^胸部正位片^L|||20261202090000|||||||||D2001^吴^强||RV38A-DRF"
        f"||||20261202095000||DX|{status}",
        f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。||||||{status}|||20261202093000",
        f"OBX|2|TX|IMP^诊断意见^L||{impression}||||||{status}|||20261202093000"]) + "\r"


def test_a_kept_out_preliminary_leaves_the_final_imaging_conclusion(engine: Engine, http: TestClient) -> None:
    """The PACS's final chest film (impression 心肺膈未见明显异常。), then its later P (a draft re-read,
    impression 右肺上叶结节。): both results kept at final, the report stays final -- its conclusion and
    its text are still the final impression's words alone, not the draft's beside them."""
    assert b"MSA|AA" in post(http, _xray("RV38A-6A", "20261202100000", "F", "心肺膈未见明显异常。"))
    (report,) = written(engine, http, "RV38A-6A", "DiagnosticReport")
    before = _read(http, f"DiagnosticReport/{report['id']}")
    assert before["conclusion"] == "心肺膈未见明显异常。", before
    ack = post(http, _xray("RV38A-6B", "20261202120000", "P", "右肺上叶结节。"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert (after.get("conclusion"), after.get("presentedForm")) == (
        before.get("conclusion"), before.get("presentedForm")), (before, after, err_lines(ack))


def test_an_older_final_stating_its_value_does_not_bring_back_a_later_withdrawal(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), the LIS's W (11:00: posted as wrong, perhaps another patient's), then its F 4.3 of
    09:30 arriving last (a resend from its queue): a message stating its value is a way back only when it
    is later -- in MSH-7 order the W came last, so the withdrawal stands (held, not brought back as final)."""
    before, ack = _final_then(engine, http, "7", ("4.1", "W"), "20261203110000")
    assert b"MSA|AA" in ack and before["status"] == "entered-in-error", (before, ack)
    ack = post(http, _result("RV38A-7C", "20261203093000", "RV38AM7", "RV38AP7", "4.3", "F"))
    after = _read(http, f"Observation/{before['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), (after, err_lines(ack))


def test_an_older_status_alone_does_not_bring_back_a_later_withdrawal(engine: Engine, http: TestClient) -> None:
    """The same with the older message a U (status alone, OBX-5 empty) of 09:30: the withdrawal stands."""
    before, ack = _final_then(engine, http, "8", ("4.1", "W"), "20261203110000")
    assert b"MSA|AA" in ack and before["status"] == "entered-in-error", (before, ack)
    ack = post(http, _result("RV38A-8C", "20261203093000", "RV38AM8", "RV38AP8", "", "U"))
    after = _read(http, f"Observation/{before['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), (after, err_lines(ack))


def test_a_kept_out_p_does_not_erase_the_final_results_note(engine: Engine, http: TestClient) -> None:
    """F 4.1 with the note 危急值已电话通知张医生 (the critical value was phoned), then the LIS's later P 5.0
    of a re-drawn tube with the note 溶血: the P's note is what notback37 merges -- beside the final's, never
    instead of it (the call the lab made about the final value is not erased by a preliminary kept out)."""
    tag = "RV38A9"
    first = _nb_result("RV38A-9A", "20261203100000", tag, "4.1", "F", tube="RV38AS9A", note="危急值已电话通知张医生")
    assert b"MSA|AA" in post(http, first)
    (obs,) = written(engine, http, "RV38A-9A", "Observation")
    ack = post(http, _nb_result("RV38A-9B", "20261203120000", tag, "5.0", "P", tube="RV38AS9B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert "危急值已电话通知张医生" in [n.get("text") for n in after.get("note") or ()], (after, err_lines(ack))
