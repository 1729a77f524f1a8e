"""rvmsgtime33's probes of msgtime33's change: a withdrawn result (OBX-11 W: entered-in-error) stands
against a message no later than the one that withdrew it (``merge.yaml`` Observation ``status:
until_later``; the messages' times read from ``Provenance.recorded``). Real HL7 over ``POST /hl7v2``
(a batch through ``Ingestor.process``, an operator's replay through ``Ingestor.replay``), the stored
resources read back over ``/fhir``, on each storage backend. Since msgfix33/msgfix34 the times are the
senders' MSH-7 (``engine.message_time``); probes 2, 7 and 8 asked for a correction after a withdrawal
whose time cannot be told to restore the result, and now assert the lead's direction instead: the
withdrawal is taken, the correction refused AE at its OBX-11 with the reason (never held under AA)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post
from tests.module_store import module_eng
from tests.test_msgtime33_withdrawal_time import LEFT, LINE, _status, _withdrawn
from tests.test_rvdocref32_probes import F1, IMP, _doc, _doc_texts, _obx, _oru, _report_texts, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (MT33-RVn...)

FIXED = "右肺上叶见钙化灶。"


def _correction(control: str, filler: str, stamp: str) -> str:
    """The sender's correction (OBX-11 C) of the withdrawn second line, with the impression (so the
    message writes a report text: ``lis``, one line alone makes none)."""
    return _oru(control, filler, _obx(2, F1, "2", FIXED, "C", "20261202100000"),
                _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp=stamp)


def _ris(message: str) -> str:
    """``message`` (the imaging ORU, MSH-3 PACS) as sent by the reading centre's RIS: another application
    of the same institution, whose withdrawal of the PACS's final result is taken whatever its MSH-7 (its
    clock is not compared across senders) -- the PACS's own withdrawal with an unusable MSH-7 over its
    own final is refused AE at MSH-7 since the thirty-fourth round (tfix34, the lead's decision)."""
    assert message.startswith("MSH|^~\\&|PACS|")
    return message.replace("MSH|^~\\&|PACS|", "MSH|^~\\&|RIS|", 1)


def _corrected_everywhere(http: TestClient, obs_id: str, report_id: str, doc_id: str) -> None:
    assert _status(http, obs_id) == "corrected"
    texts = _report_texts(http, report_id)
    assert len(texts) == 1 and FIXED in texts[0].split("\n"), texts
    assert _doc_texts(http, doc_id) == texts
    assert _doc(http, doc_id)["status"] == "current"


# --- the message's time -------------------------------------------------------------------------------


def test_an_old_resend_with_an_unreadable_msh7_does_not_revive_the_withdrawn_result(
        engine: Engine, http: TestClient) -> None:
    doc_id, report_id, obs_id = _withdrawn(engine, http, "RV1")
    ack = post(http, _three("MT33-RV1R", "MT33-XRV1", stamp="2026120210OOOO"))  # letters O for zeros
    assert any("MSH-7" in line or "MSH^1^7" in line for line in err_lines(ack)) or b"MSA|AA" not in ack, ack
    assert _status(http, obs_id) == "entered-in-error", ack
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_a_correction_after_a_withdrawal_with_an_unreadable_msh7_is_refused_not_held(
        engine: Engine, http: TestClient) -> None:
    """The withdrawal's MSH-7 unreadable (the RIS's, of the PACS's final result): over the final result it
    is taken (another application's withdrawal over a plain value: msgfix34; the PACS's own would be
    refused AE at MSH-7 since tfix34). The sender's correction sent
    afterwards cannot be ordered against a withdrawal with no time: refused AE at its OBX-11, the reason
    naming the withdrawal's MSH-7, nothing written, the message kept for the operator -- never held under
    AA (rvmsgtime33's probe asked for the correction restored; the lead's direction: refuse, thirty-third
    round)."""
    assert b"MSA|AA" in post(http, _three("MT33-RV2", "MT33-XRV2"))
    (doc,) = [d for d in _written(engine, http, "MT33-RV2", "DocumentReference")]
    (report,) = _written(engine, http, "MT33-RV2", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV2", "Observation") if o.get("valueString") == LINE]
    post(http, _ris(_oru("MT33-RV2W", "MT33-XRV2", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                         stamp="2026120211OOOO")))
    assert _status(http, line["id"]) == "entered-in-error"
    # the sender's clock one minute behind huren's: its correction, sent after the withdrawal was received
    sent = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    ack = post(http, _correction("MT33-RV2C", "MT33-XRV2", sent.strftime("%Y%m%d%H%M%S")))
    _refused_at_obx_11(engine, ack, "MT33-RV2C", "2026120211OOOO")
    assert _status(http, line["id"]) == "entered-in-error"
    assert _report_texts(http, report["id"]) == [LEFT] == _doc_texts(http, doc["id"])


def _refused_at_obx_11(engine: Engine, ack: bytes, control: str, named: str) -> None:
    """The ACK refuses the message (AE) at the withdrawn result's OBX-11 (the correction's OBX 1 of its
    two), its reason naming MSH-7 ``named``; the message is quarantined with its raw kept (replay)."""
    assert b"MSA|AE" in ack, ack
    (err,) = [line for line in err_lines(ack) if "cannot be told" in line]
    assert "|OBX^1^11|" in err and "MSH-7" in err and named in err, err
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None and doc["status"] == "quarantined", doc


def _written(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return [http.get(f"/fhir/{r}").json() for r in doc.get("resources") or [] if r.startswith(rtype + "/")]


def test_offsets_are_compared_as_instants(engine: Engine, http: TestClient) -> None:
    """A withdrawal stamped in UTC (03:00+0000 = 11:00 in Beijing); the 10:00 report (no offset: the
    site's +08:00) resent is older and held; a correction of 03:30+0000 (11:30 +08:00) is later."""
    assert b"MSA|AA" in post(http, _three("MT33-RV3", "MT33-XRV3"))
    (doc,) = _written(engine, http, "MT33-RV3", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV3", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV3", "Observation") if o.get("valueString") == LINE]
    assert b"MSA|AA" in post(http, _oru("MT33-RV3W", "MT33-XRV3", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                        stamp="20261202030000+0000"))
    assert b"MSA|AA" in post(http, _three("MT33-RV3R", "MT33-XRV3", stamp="20261202105959"))
    assert _status(http, line["id"]) == "entered-in-error"
    assert _report_texts(http, report["id"]) == [LEFT] == _doc_texts(http, doc["id"])
    assert b"MSA|AA" in post(http, _correction("MT33-RV3C", "MT33-XRV3", "20261202033000+0000"))
    _corrected_everywhere(http, line["id"], report["id"], doc["id"])


def test_a_held_result_is_named_in_the_ack_at_its_obx_11(engine: Engine, http: TestClient) -> None:
    """The older resend's ACK: AA (its other results are stored) with a warning at the held result's
    OBX-11 -- the sender is told which statement was not taken."""
    _, _, obs_id = _withdrawn(engine, http, "RV4")
    ack = post(http, _three("MT33-RV4R", "MT33-XRV4"))
    assert b"MSA|AA" in ack, ack
    (err,) = [line for line in err_lines(ack) if "not later" in line]
    assert "|OBX^2^11" in err, err
    assert "|W|" in err, err


# --- ties and ordering ------------------------------------------------------------------------------


def test_a_correction_a_fraction_of_a_second_after_the_withdrawal_restores(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("MT33-RV5", "MT33-XRV5"))
    (doc,) = _written(engine, http, "MT33-RV5", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV5", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV5", "Observation") if o.get("valueString") == LINE]
    assert b"MSA|AA" in post(http, _oru("MT33-RV5W", "MT33-XRV5", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                        stamp="20261202110000.1"))
    assert b"MSA|AA" in post(http, _correction("MT33-RV5C", "MT33-XRV5", "20261202110000.9"))
    _corrected_everywhere(http, line["id"], report["id"], doc["id"])


def test_a_correction_of_the_same_minute_arriving_after_the_withdrawal_restores(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("MT33-RV6", "MT33-XRV6"))
    (doc,) = _written(engine, http, "MT33-RV6", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV6", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV6", "Observation") if o.get("valueString") == LINE]
    assert b"MSA|AA" in post(http, _oru("MT33-RV6W", "MT33-XRV6", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                        stamp="202612021100"))
    assert b"MSA|AA" in post(http, _correction("MT33-RV6C", "MT33-XRV6", "202612021100"))
    _corrected_everywhere(http, line["id"], report["id"], doc["id"])


def test_a_withdrawal_and_its_later_correction_in_one_batch(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _three("MT33-RV7", "MT33-XRV7"))
    (doc,) = _written(engine, http, "MT33-RV7", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV7", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV7", "Observation") if o.get("valueString") == LINE]
    withdrawal = _oru("MT33-RV7W", "MT33-XRV7", _obx(2, F1, "2", LINE, "W", "20261202100000"), stamp="20261202110000")
    outcomes = engine.ingestor.process([(withdrawal.encode(), "mllp", "test"),
                                        (_correction("MT33-RV7C", "MT33-XRV7", "20261202120000").encode(), "mllp", "test")])
    assert len(outcomes) == 2
    _corrected_everywhere(http, line["id"], report["id"], doc["id"])


def test_an_operators_replay_of_the_old_withdrawal_leaves_the_later_correction(
        engine: Engine, http: TestClient) -> None:
    doc_id, report_id, obs_id = _withdrawn(engine, http, "RV8")
    assert b"MSA|AA" in post(http, _correction("MT33-RV8C", "MT33-XRV8", "20261202120000"))
    _corrected_everywhere(http, obs_id, report_id, doc_id)
    engine.ingestor.replay(message_id("FNXRMYY", "MT33-RV8W"), actor="operator")
    _corrected_everywhere(http, obs_id, report_id, doc_id)


def test_a_withdrawal_stamped_in_the_future_is_taken_and_a_correction_after_it_refused(
        engine: Engine, http: TestClient) -> None:
    """A withdrawal stamped a year ahead of its receipt (the RIS's clock wrong) is taken over the PACS's
    final result (another application's: its clock not compared; tfix34), but its time is not trusted (``message_time.AHEAD``):
    it holds no later correction back under AA for a year -- the correction is refused AE at its OBX-11,
    the reason naming the withdrawal's MSH-7 (rvmsgtime33's probe asked for it restored; the lead's
    direction: refuse what cannot be told)."""
    assert b"MSA|AA" in post(http, _three("MT33-RV9", "MT33-XRV9"))
    (doc,) = _written(engine, http, "MT33-RV9", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV9", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV9", "Observation") if o.get("valueString") == LINE]
    ahead = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=365)
    assert b"MSA|AA" in post(http, _ris(_oru("MT33-RV9W", "MT33-XRV9", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                             stamp=ahead.strftime("%Y%m%d%H%M%S"))))
    assert _status(http, line["id"]) == "entered-in-error"
    now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(minutes=1)
    ack = post(http, _correction("MT33-RV9C", "MT33-XRV9", now.strftime("%Y%m%d%H%M%S")))
    _refused_at_obx_11(engine, ack, "MT33-RV9C", ahead.strftime("%Y%m%d%H%M%S"))
    assert "ahead of its receipt" in ack.decode(), ack
    assert _status(http, line["id"]) == "entered-in-error"
    assert _report_texts(http, report["id"]) == [LEFT] == _doc_texts(http, doc["id"])


def test_a_fast_clocked_withdrawal_by_another_application_is_taken_and_the_correction_refused(
        engine: Engine, http: TestClient) -> None:
    """The reading centre's RIS (same MSH-4, same filler: the same Observation) withdraws the PACS's final
    result with its clock 10 min fast: taken (over a plain value only the same sender's MSH-7 could show a
    withdrawal older). The PACS's correction sent after it cannot be ordered against another
    application's withdrawal: refused AE at OBX-11, the reason naming the RIS and its MSH-7, nothing
    written -- not held under AA (rvmsgtime33's probe asked for it restored; the lead's direction)."""
    assert b"MSA|AA" in post(http, _three("MT33-RV10", "MT33-XRV10"))
    (doc,) = _written(engine, http, "MT33-RV10", "DocumentReference")
    (report,) = _written(engine, http, "MT33-RV10", "DiagnosticReport")
    (line,) = [o for o in _written(engine, http, "MT33-RV10", "Observation") if o.get("valueString") == LINE]
    beijing = dt.timezone(dt.timedelta(hours=8))
    fast = dt.datetime.now(dt.UTC).astimezone(beijing) + dt.timedelta(minutes=10)
    withdrawal = _oru("MT33-RV10W", "MT33-XRV10", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                      stamp=fast.strftime("%Y%m%d%H%M%S")).replace("MSH|^~\\&|PACS|", "MSH|^~\\&|RIS|", 1)
    assert b"MSA|AA" in post(http, withdrawal)
    assert _status(http, line["id"]) == "entered-in-error"
    right = dt.datetime.now(dt.UTC).astimezone(beijing)
    ack = post(http, _correction("MT33-RV10C", "MT33-XRV10", right.strftime("%Y%m%d%H%M%S")))
    _refused_at_obx_11(engine, ack, "MT33-RV10C", fast.strftime("%Y%m%d%H%M%S"))
    assert "RIS" in [line for line in err_lines(ack) if "cannot be told" in line][0], ack
    assert _status(http, line["id"]) == "entered-in-error"
    assert _report_texts(http, report["id"]) == [LEFT] == _doc_texts(http, doc["id"])


def test_the_held_messages_provenance_does_not_name_a_version_it_did_not_state(
        engine: Engine, http: TestClient) -> None:
    """The older resend is held: its Provenance (recorded 10:00) must not name the withdrawal's version
    as one it stored -- the record of who stated ``entered-in-error`` stays the withdrawal's alone."""
    _, _, obs_id = _withdrawn(engine, http, "RV11")
    version = http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]
    assert b"MSA|AA" in post(http, _three("MT33-RV11R", "MT33-XRV11"))
    target = f"Observation/{obs_id}/_history/{version}"
    bundle = http.get("/fhir/Provenance", params={"target": f"Observation/{obs_id}", "_count": "50"}).json()
    naming = [e["resource"]["recorded"] for e in bundle.get("entry") or ()
              if any(t.get("reference") == target for t in e["resource"].get("target") or ())]
    assert naming == ["2026-12-02T11:00:00+08:00"], naming


def test_a_deleted_lab_result_stands_against_the_older_resend(engine: Engine, http: TestClient) -> None:
    """OBX-11 D (delete: entered-in-error too) on a lab result (no report text): the older resend of
    the panel leaves it withdrawn, its other result stored as sent."""
    def lab(control: str, stamp: str, *obx: str) -> str:
        return "\r".join([f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
                          "PID|1||RV33L^^^FNXRMYY^MR||钱^七||19700305|F", "ORC|RE|RVL1P^HIS|RVL1^LIS||CM",
                          "OBR|1|RVL1P^HIS|RVL1^LIS|CBC^血常规^L|||20261202090000||||||||||||||||HM|F", *obx]) + "\r"
    wbc = "OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{}|||20261202093000"
    hgb = "OBX|2|NM|HGB^血红蛋白^L||{}|g/L|||||{}|||20261202093000"
    assert b"MSA|AA" in post(http, lab("MT33-RV12", "20261202100000", wbc.format("F"), hgb.format("131", "F")))
    (obs,) = [o for o in _written(engine, http, "MT33-RV12", "Observation") if o["code"]["coding"][0]["code"] == "WBC"]
    assert b"MSA|AA" in post(http, lab("MT33-RV12D", "20261202110000", wbc.format("D")))
    assert _status(http, obs["id"]) == "entered-in-error"
    ack = post(http, lab("MT33-RV12R", "20261202100000", wbc.format("F"), hgb.format("132", "F")))
    assert b"MSA|AA" in ack, ack
    assert _status(http, obs["id"]) == "entered-in-error"
    (hgb_obs,) = [o for o in _written(engine, http, "MT33-RV12R", "Observation")
                  if o["code"]["coding"][0]["code"] == "HGB"]
    assert hgb_obs["valueQuantity"]["value"] == 132, hgb_obs


def test_an_older_resend_after_the_correction_leaves_the_corrected_result(engine: Engine, http: TestClient) -> None:
    doc_id, report_id, obs_id = _withdrawn(engine, http, "RV13")
    assert b"MSA|AA" in post(http, _correction("MT33-RV13C", "MT33-XRV13", "20261202120000"))
    _corrected_everywhere(http, obs_id, report_id, doc_id)
    post(http, _three("MT33-RV13R", "MT33-XRV13"))
    assert http.get(f"/fhir/Observation/{obs_id}").json().get("valueString") == FIXED
    _corrected_everywhere(http, obs_id, report_id, doc_id)
