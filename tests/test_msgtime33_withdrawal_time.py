"""msgtime33: a withdrawn result (OBX-11 W: entered-in-error) stands against a message no later than
the one that withdrew it, by the messages' times (the senders' MSH-7 since msgfix33,
``engine.message_time``: the messages of the Provenances naming a version); a later message combines as
any other (``merge.yaml`` Observation ``status: until_later``). Real HL7 over ``POST /hl7v2`` (one test through one ingest batch), the stored
resources read back over ``/fhir``, on each storage backend."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_rvdocref32_probes import F1, IMP, _doc, _doc_texts, _obx, _oru, _report_texts, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids

LINE = "右肺上叶见结节影。"
ALL = "双肺纹理增粗。\n右肺上叶见结节影。\n慢性支气管炎。"
LEFT = "双肺纹理增粗。\n慢性支气管炎。"


def _withdrawn(engine: Engine, http: TestClient, n: str) -> tuple[str, str, str]:
    """The report (3 lines, MSH-7 10:00), then its second line withdrawn by a message of 11:00:
    (document id, report id, the withdrawn result's id)."""
    assert b"MSA|AA" in post(http, _three(f"MT33-{n}", f"MT33-X{n}"))
    doc_id, report_id = _stored(engine, http, f"MT33-{n}")
    (line,) = [o for o in written(engine, http, f"MT33-{n}", "Observation") if o.get("valueString") == LINE]
    assert b"MSA|AA" in post(http, _oru(f"MT33-{n}W", f"MT33-X{n}", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)
    return doc_id, report_id, line["id"]


def _status(http: TestClient, obs_id: str) -> str:
    return http.get(f"/fhir/Observation/{obs_id}").json()["status"]


def test_an_older_resend_leaves_the_result_withdrawn_and_the_ack_says_so(engine: Engine, http: TestClient) -> None:
    """The 10:00 report resent (another control id) after the 11:00 withdrawal: the result stays
    entered-in-error at the version the withdrawal stored, and the ACK warns (AA: the rest is stored)."""
    doc_id, report_id, obs_id = _withdrawn(engine, http, "1")
    before = http.get(f"/fhir/Observation/{obs_id}").json()
    ack = post(http, _three("MT33-1R", "MT33-X1"))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/Observation/{obs_id}").json()
    assert after["status"] == "entered-in-error", after
    assert after["meta"]["versionId"] == before["meta"]["versionId"], (before, after)
    assert any("entered-in-error" in line and "not later" in line for line in err_lines(ack)), ack
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_a_resend_at_the_withdrawals_own_time_goes_by_arrival(engine: Engine, http: TestClient) -> None:
    """An equal MSH-7 is broken by arrival order (msgfix33, the lead's direction; this test asserted the
    opposite, "the same time is not later", before): the report stamped 11:00 like the withdrawal and
    received after it is the later statement -- the line final again, in the report and its document.
    The withdrawal replayed by the operator then (received before that report, the same MSH-7) is the
    older one: held, the line stays."""
    doc_id, report_id, obs_id = _withdrawn(engine, http, "2")
    assert b"MSA|AA" in post(http, _three("MT33-2R", "MT33-X2", stamp="20261202110000"))
    assert _status(http, obs_id) == "final"
    texts = _report_texts(http, report_id)
    assert len(texts) == 1 and LINE in texts[0].split("\n"), texts
    assert _doc_texts(http, doc_id) == texts
    replayed = engine.ingestor.replay(message_id("FNXRMYY", "MT33-2W"), actor="operator")
    assert replayed is not None and replayed.code == "AA", replayed
    assert any("not later" in line and "|OBX^1^11|" in line for line in err_lines(replayed.ack)), replayed.ack
    assert _status(http, obs_id) == "final"
    assert _report_texts(http, report_id) == texts == _doc_texts(http, doc_id)


def test_a_later_correction_restores_the_line(engine: Engine, http: TestClient) -> None:
    """A correction (OBX-11 C) of 12:00 re-stating the line after the 11:00 withdrawal (with the
    impression, so the message writes a text: one line alone makes none, ``lis``): the result is
    corrected, its words back in the report and its document."""
    doc_id, report_id, obs_id = _withdrawn(engine, http, "3")
    assert b"MSA|AA" in post(http, _oru("MT33-3C", "MT33-X3", _obx(2, F1, "2", "右肺上叶见钙化灶。", "C", "20261202100000"),
                                        _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp="20261202120000"))
    assert _status(http, obs_id) == "corrected"
    texts = _report_texts(http, report_id)
    assert len(texts) == 1 and "右肺上叶见钙化灶。" in texts[0].split("\n"), texts
    assert _doc_texts(http, doc_id) == texts
    assert _doc(http, doc_id)["status"] == "current"


def test_a_later_report_restating_the_line_final_restores_it(engine: Engine, http: TestClient) -> None:
    """The sender's later message (12:00) stating the whole report again, the line final: its word is
    later than the withdrawal's, so the line stands again."""
    doc_id, report_id, obs_id = _withdrawn(engine, http, "4")
    assert b"MSA|AA" in post(http, _three("MT33-4L", "MT33-X4", stamp="20261202120000"))
    assert _status(http, obs_id) == "final"
    texts = _report_texts(http, report_id)
    assert len(texts) == 1 and LINE in texts[0].split("\n"), texts
    assert _doc_texts(http, doc_id) == texts


def test_an_older_resend_after_a_later_correction_of_the_withdrawn_line(engine: Engine, http: TestClient) -> None:
    """Withdrawn at 11:00, corrected at 12:00 (restored), then the 10:00 report resent: the result is
    no longer withdrawn, so ``until_later`` does not hold it -- the old rule (keep-if-absent) applies,
    as it did before this round (an older message over a correction: not this round's rule)."""
    doc_id, report_id, obs_id = _withdrawn(engine, http, "5")
    assert b"MSA|AA" in post(http, _oru("MT33-5C", "MT33-X5", _obx(2, F1, "2", "右肺上叶见钙化灶。", "C", "20261202100000"),
                                        _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp="20261202120000"))
    assert _status(http, obs_id) == "corrected"
    assert b"MSA|AA" in post(http, _three("MT33-5R", "MT33-X5"))
    assert _doc_texts(http, doc_id) == _report_texts(http, report_id)


def test_the_other_lines_of_an_older_resend_still_combine(engine: Engine, http: TestClient) -> None:
    """A thinner message never erases, and an older one is weighed result by result: a resend of 10:00
    whose other lines are unchanged leaves them, and the report keeps every line still standing."""
    doc_id, report_id, _ = _withdrawn(engine, http, "6")
    assert b"MSA|AA" in post(http, _oru("MT33-6R", "MT33-X6", _obx(1, F1, "1", "双肺纹理增粗。", "F"),
                                        _obx(2, F1, "2", LINE, "F")))
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_an_older_impression_resent_leaves_the_conclusion_without_it(engine: Engine, http: TestClient) -> None:
    """The impression line (its words the report's conclusion, ``pacs._conclusion``) withdrawn at 11:00,
    then the 10:00 report resent: the conclusion does not say it again."""
    assert b"MSA|AA" in post(http, _three("MT33-7", "MT33-X7"))
    _, report_id = _stored(engine, http, "MT33-7")
    assert b"MSA|AA" in post(http, _oru("MT33-7W", "MT33-X7", _obx(3, IMP, "", "慢性支气管炎。", "W", "20261202100000"),
                                        stamp="20261202110000"))
    assert "慢性支气管炎" not in (http.get(f"/fhir/DiagnosticReport/{report_id}").json().get("conclusion") or "")
    assert b"MSA|AA" in post(http, _three("MT33-7R", "MT33-X7"))
    report = http.get(f"/fhir/DiagnosticReport/{report_id}").json()
    assert "慢性支气管炎" not in (report.get("conclusion") or ""), report.get("conclusion")
    assert _report_texts(http, report_id) == ["双肺纹理增粗。\n右肺上叶见结节影。"]


def test_an_older_resend_in_the_withdrawals_batch_leaves_it_withdrawn(engine: Engine, http: TestClient) -> None:
    """One ingest batch: the withdrawal (11:00), then the 10:00 report resent. The withdrawal's
    Provenance is written with the batch's, after both merged: its time is not known yet, and an
    unknown time is not later -- the withdrawal stands."""
    assert b"MSA|AA" in post(http, _three("MT33-8", "MT33-X8"))
    doc_id, report_id = _stored(engine, http, "MT33-8")
    withdrawal = _oru("MT33-8W", "MT33-X8", _obx(2, F1, "2", LINE, "W", "20261202100000"), stamp="20261202110000")
    outcomes = engine.ingestor.process([(withdrawal.encode(), "mllp", "test"),
                                        (_three("MT33-8R", "MT33-X8").encode(), "mllp", "test")])
    assert len(outcomes) == 2
    assert _report_texts(http, report_id) == [LEFT] == _doc_texts(http, doc_id)


def test_a_clients_put_of_a_withdrawn_result_is_its_own_word(engine: Engine, http: TestClient) -> None:
    """A FHIR client's PUT states the whole result (api: replace): ``until_later`` is a feed's rule."""
    _, _, obs_id = _withdrawn(engine, http, "9")
    body = http.get(f"/fhir/Observation/{obs_id}").json()
    body["status"] = "final"
    assert http.put(f"/fhir/Observation/{obs_id}", json=body).status_code == 200
    assert _status(http, obs_id) == "final"


def test_a_first_message_of_a_withdrawn_result_then_its_older_final(engine: Engine, http: TestClient) -> None:
    """The withdrawal arrives first (11:00: the result stored entered-in-error), then the original of
    10:00: the result a sender posted as wrong is not made final by its own earlier message."""
    assert b"MSA|AA" in post(http, _oru("MT33-10W", "MT33-X10", _obx(2, F1, "2", LINE, "W", "20261202100000"),
                                        stamp="20261202110000"))
    (obs,) = written(engine, http, "MT33-10W", "Observation")
    assert obs["status"] == "entered-in-error"
    assert b"MSA|AA" in post(http, _three("MT33-10", "MT33-X10"))
    assert _status(http, obs["id"]) == "entered-in-error"
    (report,) = written(engine, http, "MT33-10", "DiagnosticReport")
    assert all(LINE not in t for t in _report_texts(http, report["id"])), _report_texts(http, report["id"])


def test_a_clients_withdrawal_refuses_a_message_restating_the_result(engine: Engine, http: TestClient) -> None:
    """A records office marks a result entered-in-error (PUT: no message stated that version, so it has
    no MSH-7; ``meta.lastUpdated`` is huren's clock and never stands in for one -- msgfix33, the lead's
    direction; this test dated it by lastUpdated before). The report resent, and the sender's correction
    made after the office's withdrawal, cannot be ordered against it: each refused AE at the result's
    OBX-11, the reason naming the client's version, nothing of it written -- never revived, never held
    under AA."""
    assert b"MSA|AA" in post(http, _three("MT33-11", "MT33-X11"))
    (line,) = [o for o in written(engine, http, "MT33-11", "Observation") if o.get("valueString") == LINE]
    body = http.get(f"/fhir/Observation/{line['id']}").json()
    body["status"] = "entered-in-error"
    assert http.put(f"/fhir/Observation/{line['id']}", json=body).status_code == 200
    version = http.get(f"/fhir/Observation/{line['id']}").json()["meta"]["versionId"]
    resend = post(http, _three("MT33-11R", "MT33-X11"))
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=-1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    correction = post(http, _oru("MT33-11C", "MT33-X11", _obx(2, F1, "2", "右肺上叶见钙化灶。", "C", "20261202100000"),
                                 _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp=later.strftime("%Y%m%d%H%M%S+0800")))
    for ack, at in ((resend, "OBX^2^11"), (correction, "OBX^1^11")):
        assert b"MSA|AE" in ack, ack
        (err,) = [e for e in err_lines(ack) if "cannot be told" in e]
        assert f"|{at}|" in err and "FHIR client" in err and "MSH-7" in err, err
    after = http.get(f"/fhir/Observation/{line['id']}").json()
    assert after["status"] == "entered-in-error" and after["meta"]["versionId"] == version, after
