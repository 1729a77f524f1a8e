"""msgfix34: which statement of a result's status is later when two applications of one institution state
it (``engine.message_time.settle``, ``merge.yaml`` Observation ``status: until_later``), and the ACK
naming the result's OBX-11 when its status is held or refused.

The rule (msgfix33's report, option (a)): over a stored *final* result a withdrawal (OBX-11 W) or a
correction is later unless the same sender's MSH-7 shows it strictly older -- the reading centre's
PACS withdrawing the result its RIS reported is taken, whatever the two clocks say. Against a stored
withdrawal or correction the message must be shown later: two applications' clocks cannot show it, so
the message is refused AE at the result's OBX-11 with the reason (never revived, never held under AA).

Real HL7 through ``POST /hl7v2`` and over a real MLLP socket (``tests.hl7_calls``), stored resources
read back over ``/fhir``, on each storage backend; one test converts a panel twice to see the
converter's planned path locate OBX-11 as its ordinary path does."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgtime33_withdrawal_time import LEFT, LINE, _status
from tests.test_rvdocref32_probes import F1, IMP, _doc_texts, _obx, _oru, _report_texts, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (MF34-n...)

FIXED = "右肺上叶见钙化灶。"


def _by(application: str, message: str) -> str:
    """``message`` (FNXRMYY's imaging ORU, MSH-3 PACS) as sent by ``application`` of the same
    institution: the same filler number names the same result."""
    assert message.startswith("MSH|^~\\&|PACS|")
    return message.replace("MSH|^~\\&|PACS|", f"MSH|^~\\&|{application}|", 1)


def _withdrawal(control: str, filler: str, stamp: str) -> str:
    return _oru(control, filler, _obx(2, F1, "2", LINE, "W", "20261202100000"), stamp=stamp)


def _correction(control: str, filler: str, stamp: str) -> str:
    """The second line corrected (OBX-11 C), with the impression (so the message writes a report text)."""
    return _oru(control, filler, _obx(2, F1, "2", FIXED, "C", "20261202100000"),
                _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp=stamp)


def _line(engine: Engine, http: TestClient, control: str) -> str:
    (obs,) = [o for o in written(engine, http, control, "Observation") if o.get("valueString") == LINE]
    return obs["id"]


def _refused(engine: Engine, ack: bytes, control: str, at: str, *named: str) -> str:
    """AE at ``at`` (ERR-2), the reason naming each of ``named``; the message quarantined, raw kept."""
    assert b"MSA|AE" in ack, ack
    # (the one at ``at``: a report's status stated over a stored one is another such ERR since stat39 stores a
    # report beside a corrected result as corrected)
    (err,) = [e for e in err_lines(ack) if "cannot be told" in e and f"|{at}|" in e]
    for word in named:
        assert word in err, (word, err)
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None and doc["status"] == "quarantined" and doc.get("raw"), doc
    return err


def test_the_pacs_withdraws_the_ris_result_and_the_ris_correction_after_it_is_refused(
        engine: Engine, http: TestClient) -> None:
    """Over MLLP: the RIS reports three lines (10:00); the PACS withdraws the second (11:00): taken -- the
    result withdrawn, its line gone from the report and its document. The RIS's correction (12:00 by its
    own clock) cannot be ordered against the PACS's withdrawal: AE at its OBX-11, the reason naming the
    PACS and both MSH-7; nothing of it written."""
    (ack,) = mllp(engine, _by("RIS", _three("MF34-1", "MF34-X1")).encode())
    assert b"MSA|AA" in ack, ack
    doc_id, report_id = _stored(engine, http, "MF34-1")
    obs_id = _line(engine, http, "MF34-1")
    (ack,) = mllp(engine, _withdrawal("MF34-1W", "MF34-X1", "20261202110000").encode())
    assert b"MSA|AA" in ack and not err_lines(ack), ack
    assert _status(http, obs_id) == "entered-in-error"
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)
    version = http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]
    (ack,) = mllp(engine, _by("RIS", _correction("MF34-1C", "MF34-X1", "20261202120000")).encode())
    _refused(engine, ack, "MF34-1C", "OBX^1^11", "PACS", "MSH-7 20261202110000", "MSH-7 20261202120000")
    after = http.get(f"/fhir/Observation/{obs_id}").json()
    assert after["status"] == "entered-in-error" and after["meta"]["versionId"] == version, after
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_another_applications_withdrawal_is_taken_whatever_its_clock_says(engine: Engine, http: TestClient) -> None:
    """The PACS's clock an hour behind the RIS's: its withdrawal (MSH-7 09:00) of the RIS's 10:00 result is
    still taken -- two senders' clocks are not compared against a final result."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-2", "MF34-X2")))
    doc_id, report_id = _stored(engine, http, "MF34-2")
    obs_id = _line(engine, http, "MF34-2")
    ack = post(http, _withdrawal("MF34-2W", "MF34-X2", "20261202090000"))
    assert b"MSA|AA" in ack and not err_lines(ack), ack
    assert _status(http, obs_id) == "entered-in-error"
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_the_same_senders_older_withdrawal_over_its_later_report_is_held(engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00) and reports again, unchanged, at 12:00; its withdrawal of 11:00 then arrives
    late (a queue): the same sender's MSH-7 shows it older than the report it would take back -- held:
    AA, a warning at its OBX-11, the result final, every line in the report; its Provenance names no
    version of the held result."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-3", "MF34-X3")))
    doc_id, report_id = _stored(engine, http, "MF34-3")
    obs_id = _line(engine, http, "MF34-3")
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-3L", "MF34-X3", stamp="20261202120000")))
    texts = _report_texts(http, report_id)
    ack = post(http, _by("RIS", _withdrawal("MF34-3W", "MF34-X3", "20261202110000")))
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    assert "|OBX^1^11|" in err and "|W|" in err and "20261202120000" in err, err
    assert _status(http, obs_id) == "final"
    assert _report_texts(http, report_id) == texts == _doc_texts(http, doc_id)
    assert LINE in texts[0].split("\n"), texts
    (prov,) = written(engine, http, "MF34-3W", "Provenance")
    assert not any(t["reference"].startswith(f"Observation/{obs_id}") for t in prov["target"]), prov


def test_the_same_senders_withdrawal_of_the_reports_own_time_arriving_after_it_is_taken(
        engine: Engine, http: TestClient) -> None:
    """An equal MSH-7 goes by arrival: the RIS's withdrawal stamped like its report, received after it."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-4", "MF34-X4")))
    obs_id = _line(engine, http, "MF34-4")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("MF34-4W", "MF34-X4", "20261202100000")))
    assert _status(http, obs_id) == "entered-in-error"


def test_another_applications_correction_of_a_final_result_is_taken(engine: Engine, http: TestClient) -> None:
    """The PACS corrects (OBX-11 C) the result the RIS reported final: taken, the corrected words in the
    report and its document."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-5", "MF34-X5")))
    doc_id, report_id = _stored(engine, http, "MF34-5")
    obs_id = _line(engine, http, "MF34-5")
    ack = post(http, _correction("MF34-5C", "MF34-X5", "20261202090000"))
    # (its OBX-14 restamps the line 10:00, the RIS's 09:30: a correction keeps the exam's time, W -- prior42)
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "the time the result was made" not in e], ack
    assert _status(http, obs_id) == "corrected"
    texts = _report_texts(http, report_id)
    assert len(texts) == 1 and FIXED in texts[0].split("\n"), texts
    assert _doc_texts(http, doc_id) == texts


def test_another_applications_withdrawal_of_a_corrected_result_is_refused(engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00) and corrects (12:00); the PACS's withdrawal (13:00 by its clock) of the
    corrected result cannot be ordered against the RIS's correction: AE at its OBX-11 naming the RIS;
    the correction stands."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-6", "MF34-X6")))
    doc_id, report_id = _stored(engine, http, "MF34-6")
    obs_id = _line(engine, http, "MF34-6")
    assert b"MSA|AA" in post(http, _by("RIS", _correction("MF34-6C", "MF34-X6", "20261202120000")))
    texts = _report_texts(http, report_id)
    ack = post(http, _withdrawal("MF34-6W", "MF34-X6", "20261202130000"))
    _refused(engine, ack, "MF34-6W", "OBX^1^11", "RIS", "MSH-7 20261202120000")
    assert _status(http, obs_id) == "corrected"
    assert _report_texts(http, report_id) == texts == _doc_texts(http, doc_id)


def test_an_unreadable_msh7_withdrawal_over_the_same_senders_final_is_refused(
        engine: Engine, http: TestClient) -> None:
    """A withdrawal whose MSH-7 is no readable time, over a final result its own sender stated: the order
    cannot be told even within one sender -- refused AE at MSH^1^7 (ERR-3 102: the sender's field, not
    huren's fault), nothing written, the raw kept (the lead's decision, thirty-fourth round, over
    msgfix34's "taken": a wrongly hidden final result is as silent an error as a wrongly shown one)."""
    assert b"MSA|AA" in post(http, _three("MF34-7", "MF34-X7"))
    obs_id = _line(engine, http, "MF34-7")
    ack = post(http, _withdrawal("MF34-7W", "MF34-X7", "2026120211OOOO"))
    err = _refused(engine, ack, "MF34-7W", "MSH^1^7", "2026120211OOOO")
    assert err.split("|")[3].startswith("102^"), err
    assert _status(http, obs_id) == "final"


def test_an_unreadable_msh7_withdrawal_by_another_application_over_a_final_is_taken(
        engine: Engine, http: TestClient) -> None:
    """Another application's withdrawal of a final result is taken whatever its clock says (its MSH-7 is
    not compared across senders over a plain value) -- an unreadable one too, with the MSH-7 warning."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("MF34-7B", "MF34-X7B")))
    obs_id = _line(engine, http, "MF34-7B")
    ack = post(http, _withdrawal("MF34-7BW", "MF34-X7B", "2026120211OOOO"))
    assert b"MSA|AA" in ack, ack
    assert any("|MSH^1^7|" in e for e in err_lines(ack)), ack
    assert _status(http, obs_id) == "entered-in-error"


# --- a lab panel: the held result named by its own OBX ------------------------------------------------

_PANEL = [("WBC", "白细胞计数", "6.2", "10*9/L"), ("RBC", "红细胞计数", "4.8", "10*12/L"), ("HGB", "血红蛋白", "145", "g/L"),
          ("HCT", "红细胞压积", "0.43", "L/L"), ("MCV", "平均红细胞体积", "90", "fL"), ("MCH", "平均红细胞血红蛋白量", "30", "pg"),
          ("MCHC", "平均红细胞血红蛋白浓度", "335", "g/L"), ("PLT", "血小板计数", "210", "10*9/L"),
          ("NEUT%", "中性粒细胞百分比", "60.1", "%"), ("LYMPH%", "淋巴细胞百分比", "30.2", "%"),
          ("MONO%", "单核细胞百分比", "6.1", "%"), ("ALT", "丙氨酸氨基转移酶", "25", "U/L")]


def _panel(control: str, order: str, stamp: str, status: dict[int, str] | None = None,
           only: tuple[int, ...] = ()) -> str:
    """FNXRMYY's LIS blood count of 12 results (OBX 1..12), or only the ones ``only`` numbers; each F but
    where ``status`` says otherwise."""
    obx = [f"OBX|{n}|NM|{code}^{name}^L||{value}|{unit}|||||{(status or {}).get(n, 'F')}|||20261202093000"
           for n, (code, name, value, unit) in enumerate(_PANEL, 1) if not only or n in only]
    return "\r".join([f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
                      f"PID|1||MF34{order}^^^FNXRMYY^MR||孙^八||19700305|F",
                      f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
                      f"OBR|1|{order}P^HIS|{order}^LIS|CBC^血常规^L|||20261202090000||||||||||||||||HM|F", *obx]) + "\r"


def test_the_older_panel_resent_names_its_held_result_at_its_own_obx(engine: Engine, http: TestClient) -> None:
    """Over MLLP: a 12-result panel (10:00; the same panel of another order first, so this one's results
    are built from the converter's compiled plans), the seventh result withdrawn (11:00), then the 10:00
    panel resent: AA, one warning, at OBX^7^11 -- the sender can tell which of its twelve results was
    not taken; the seventh stays withdrawn."""
    acks = mllp(engine, _panel("MF34-8A", "MF34P8A", "20261202100000").encode(),
                _panel("MF34-8", "MF34P8", "20261202100000").encode())
    assert all(b"MSA|AA" in a for a in acks), acks
    (mchc,) = [o for o in written(engine, http, "MF34-8", "Observation") if o["code"]["coding"][0]["code"] == "MCHC"]
    (ack,) = mllp(engine, _panel("MF34-8W", "MF34P8", "20261202110000", {7: "W"}, only=(7,)).encode())
    assert b"MSA|AA" in ack, ack
    assert _status(http, mchc["id"]) == "entered-in-error"
    (ack,) = mllp(engine, _panel("MF34-8R", "MF34P8", "20261202100000").encode())
    assert b"MSA|AA" in ack, ack
    (err,) = err_lines(ack)
    assert "|OBX^7^11|" in err and "not later" in err and "entered-in-error" in err, err
    assert _status(http, mchc["id"]) == "entered-in-error"


def test_the_planned_and_the_ordinary_path_both_locate_the_status_at_obx_11(engine: Engine) -> None:
    """The converter records OBX-11 as the field that stated each result's status (``Said.fields``), on
    its ordinary path and on the compiled plans that build the same panel's results the next times."""
    site = engine.ingestor.site
    for n in range(3):
        conversion = convert(parse(_panel(f"MF34-9{n}", f"MF34P9{n}", "20261202100000")), site)
        observations = [r for r in conversion.by_reference.values() if r["resourceType"] == "Observation"]
        assert len(observations) == 12
        located = {ref: dict(said.fields).get("status") for ref, said in conversion.said.items()}
        by_code = {o["code"]["coding"][0]["code"]: located.get(f"Observation/{o['id']}") for o in observations}
        assert by_code == {code: f"OBX[{i}]-11" for i, (code, *_) in enumerate(_PANEL, 1)}, (n, by_code)
    assert conversion.planned, "the third conversion's results came from compiled plans"
