"""rvmsgfix34's probes of msgfix34's change (results ordered by the sender's MSH-7, ``engine.message_time``
``settle``; ``merge.yaml`` Observation ``status: until_later`` with corrected/amended in ``stands``).

A result's status must end where its senders meant: a withdrawal never silently revived, a correction
never silently lost, AE (nothing written, raw kept, ERR at OBX-n-11 or MSH-7) when the order cannot be
told. Real HL7 through ``POST /hl7v2``, a batch through ``Ingestor.process`` (as the MLLP listener hands
queued messages over), an operator's replay through ``Ingestor.replay``, a FHIR client's PUT; the stored
resources read back over ``/fhir``, on each storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine import merge_rules
from engine.engine import Engine
from engine.messages import MessageStore, message_id
from tests.conftest import running_mllp
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_hooks11_policy_edges import flag_of, flags, repeat, result
from tests.test_msgfix34_cross_sender import _panel
from tests.test_msgtime33_withdrawal_time import LINE, _status
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, ts
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (RF34-n...)

FIRST_FIX = "右肺上叶见钙化灶。"
SECOND_FIX = "右肺上叶见陈旧性钙化灶，建议随访。"


def _by(application: str, message: str) -> str:
    """``message`` (the imaging ORU, MSH-3 PACS) as sent by ``application`` of the same institution."""
    assert message.startswith("MSH|^~\\&|PACS|")
    return message.replace("MSH|^~\\&|PACS|", f"MSH|^~\\&|{application}|", 1)


def _withdrawal(control: str, filler: str, stamp: str) -> str:
    return _oru(control, filler, _obx(2, F1, "2", LINE, "W", "20261202100000"), stamp=stamp)


def _correction(control: str, filler: str, stamp: str, text: str) -> str:
    """The second line corrected (OBX-11 C) to ``text``, with the impression."""
    return _oru(control, filler, _obx(2, F1, "2", text, "C", "20261202100000"),
                _obx(3, IMP, "", "慢性支气管炎。", "F"), stamp=stamp)


def _line(engine: Engine, http: TestClient, control: str) -> str:
    (obs,) = [o for o in written(engine, http, control, "Observation") if o.get("valueString") == LINE]
    return obs["id"]


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _batch(engine: Engine, *messages: str) -> list:
    outcomes = engine.ingestor.process([(m.encode(), "mllp", "test") for m in messages])
    assert len(outcomes) == len(messages)
    return outcomes


# --- a correction over a correction -----------------------------------------------------------------------


def test_an_older_correction_arriving_after_the_later_one_does_not_take_its_value_back(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00), corrects the line at 12:00; its first correction of 11:00 (a queue) arrives
    after it. The stored value is the 12:00 correction's; the 11:00 one is an older statement: held (AA,
    ERR W at OBX^1^11) -- as an older final resend after the correction is."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-1", "RF34-X1")))
    obs_id = _line(engine, http, "RF34-1")
    assert b"MSA|AA" in post(http, _by("RIS", _correction("RF34-1B", "RF34-X1", "20261202120000", SECOND_FIX)))
    assert _obs(http, obs_id)["valueString"] == SECOND_FIX
    version = _obs(http, obs_id)["meta"]["versionId"]
    ack = post(http, _by("RIS", _correction("RF34-1A", "RF34-X1", "20261202110000", FIRST_FIX)))
    after = _obs(http, obs_id)
    assert after["valueString"] == SECOND_FIX and after["status"] == "corrected", after
    assert after["meta"]["versionId"] == version, after
    assert b"MSA|AA" in ack and any("|OBX^1^11|" in e for e in err_lines(ack)), ack


def test_another_applications_correction_of_a_corrected_result_is_refused(engine: Engine, http: TestClient) -> None:
    """The RIS reports and corrects the line (12:00); the PACS then sends its own correction (its clock says
    12:30). Two applications' clocks cannot order them -- exactly as for a withdrawal of a corrected result
    (msgfix34's test): AE at OBX^1^11, nothing written, the RIS's correction kept."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-2", "RF34-X2")))
    obs_id = _line(engine, http, "RF34-2")
    assert b"MSA|AA" in post(http, _by("RIS", _correction("RF34-2C", "RF34-X2", "20261202120000", FIRST_FIX)))
    version = _obs(http, obs_id)["meta"]["versionId"]
    ack = post(http, _correction("RF34-2P", "RF34-X2", "20261202123000", SECOND_FIX))
    after = _obs(http, obs_id)
    assert after["valueString"] == FIRST_FIX and after["meta"]["versionId"] == version, after
    assert b"MSA|AE" in ack and any("|OBX^1^11|" in e for e in err_lines(ack)), ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RF34-2P"))
    assert doc is not None and doc["status"] == "quarantined" and doc.get("raw"), doc


def _mchc(message: str, value: str) -> str:
    """``message`` (msgfix34's 12-result panel) with its seventh result (MCHC, 335) reading ``value``."""
    assert "|MCHC^平均红细胞血红蛋白浓度^L||335|" in message
    return message.replace("|MCHC^平均红细胞血红蛋白浓度^L||335|", f"|MCHC^平均红细胞血红蛋白浓度^L||{value}|", 1)


def test_an_operators_replay_of_a_panels_first_correction_leaves_its_second(engine: Engine, http: TestClient) -> None:
    """The LIS's blood count (10:00); MCHC corrected to 330 (12:00, the panel resent, one line C); corrected
    again to 328 (12:30). The operator replays the 12:00 message (a routine replay of the day's messages):
    it is older than the correction that stored 328 -- held at OBX^7^11, MCHC stays 328."""
    assert b"MSA|AA" in post(http, _panel("RF34-13", "RF34P13", "20261202100000"))
    (mchc,) = [o for o in written(engine, http, "RF34-13", "Observation") if o["code"]["coding"][0]["code"] == "MCHC"]
    assert b"MSA|AA" in post(http, _mchc(_panel("RF34-13C", "RF34P13", "20261202120000", {7: "C"}), "330"))
    assert b"MSA|AA" in post(http, _mchc(_panel("RF34-13D", "RF34P13", "20261202123000", {7: "C"}), "328"))
    assert _obs(http, mchc["id"])["valueQuantity"]["value"] == 328
    outcome = engine.ingestor.replay(message_id("FNXRMYY", "RF34-13C"), actor="operator")
    assert outcome is not None
    after = _obs(http, mchc["id"])
    assert after["valueQuantity"]["value"] == 328 and after["status"] == "corrected", after
    assert any("|OBX^7^11|" in e for e in err_lines(outcome.ack)), outcome.ack


def test_a_panels_twelve_corrections_read_the_message_that_stated_them_once(
        engine: Engine, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {"search": 0, "filed": 0}
    every, filed = merge_rules._every, MessageStore.filed

    def counted_every(*a: object, **k: object) -> object:
        counts["search"] += 1
        return every(*a, **k)

    def counted_filed(self: MessageStore, *a: object, **k: object) -> object:
        counts["filed"] += 1
        return filed(self, *a, **k)

    assert b"MSA|AA" in post(http, _panel("RF34-14", "RF34P14", "20261202100000"))
    monkeypatch.setattr(merge_rules, "_every", counted_every)
    monkeypatch.setattr(MessageStore, "filed", counted_filed)
    ack = post(http, _panel("RF34-14C", "RF34P14", "20261202120000", {n: "C" for n in range(1, 13)}))
    assert b"MSA|AA" in ack, ack
    assert {o["status"] for o in written(engine, http, "RF34-14C", "Observation")} == {"corrected"}
    assert counts["filed"] <= 1, counts  # (the one stored message that stated all twelve, read once)


# --- a batch: the messages of it that stated a version ---------------------------------------------------


def test_outside_a_batch_an_older_final_after_the_withdrawals_resend_is_held(engine: Engine, http: TestClient) -> None:
    """(The control of the next probe.) The RIS withdraws the line (11:00), resends the withdrawal (12:30);
    its final of 12:00 then arrives: older than the resend that stated the withdrawal again -- held."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-3", "RF34-X3")))
    obs_id = _line(engine, http, "RF34-3")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-3W", "RF34-X3", "20261202110000")))
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-3V", "RF34-X3", "20261202123000")))
    ack = post(http, _by("RIS", _three("RF34-3F", "RF34-X3", stamp="20261202120000")))
    assert b"MSA|AA" in ack and any("|OBX^2^11|" in e for e in err_lines(ack)), ack
    assert _status(http, obs_id) == "entered-in-error"


def test_in_a_batch_an_older_final_after_the_withdrawals_resend_does_not_revive_it(
        engine: Engine, http: TestClient) -> None:
    """As the control above, the resend of the withdrawal and the older final queued together (one batch, as
    an MLLP listener drains a backlog): the outcome must not depend on the batching -- held, withdrawn."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-4", "RF34-X4")))
    obs_id = _line(engine, http, "RF34-4")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-4W", "RF34-X4", "20261202110000")))
    _batch(engine, _by("RIS", _withdrawal("RF34-4V", "RF34-X4", "20261202123000")),
           _by("RIS", _three("RF34-4F", "RF34-X4", stamp="20261202120000")))
    assert _status(http, obs_id) == "entered-in-error"


def test_in_a_batch_the_same_senders_older_withdrawal_after_its_later_report_is_held(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-5", "RF34-X5")))
    obs_id = _line(engine, http, "RF34-5")
    _batch(engine, _by("RIS", _three("RF34-5L", "RF34-X5", stamp="20261202120000")),
           _by("RIS", _withdrawal("RF34-5W", "RF34-X5", "20261202110000")))
    assert _status(http, obs_id) == "final"


def test_in_a_batch_a_correction_after_another_applications_withdrawal_is_refused(
        engine: Engine, http: TestClient) -> None:
    """The PACS's withdrawal and the RIS's correction queued together: the correction meets the pending
    withdrawal (its Provenance not yet written): AE, the result stays withdrawn, the message kept."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-6", "RF34-X6")))
    obs_id = _line(engine, http, "RF34-6")
    outcomes = _batch(engine, _withdrawal("RF34-6W", "RF34-X6", "20261202110000"),
                      _by("RIS", _correction("RF34-6C", "RF34-X6", "20261202120000", FIRST_FIX)))
    assert _status(http, obs_id) == "entered-in-error"
    assert b"MSA|AA" in outcomes[0].ack, outcomes[0].ack
    ack = outcomes[1].ack
    assert b"MSA|AE" in ack and any("|OBX^1^11|" in e and "PACS" in e for e in err_lines(ack)), ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RF34-6C"))
    assert doc is not None and doc["status"] == "quarantined" and doc.get("raw"), doc


# --- a FHIR client's word, then a message ----------------------------------------------------------------


def test_an_operators_replay_of_the_withdrawal_does_not_undo_a_clients_restoring_put(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-7", "RF34-X7")))
    obs_id = _line(engine, http, "RF34-7")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-7W", "RF34-X7", "20261202110000")))
    body = _obs(http, obs_id)
    body["status"] = "final"
    assert http.put(f"/fhir/Observation/{obs_id}", json=body).status_code == 200
    version = _obs(http, obs_id)["meta"]["versionId"]
    engine.ingestor.replay(message_id("FNXRMYY", "RF34-7W"), actor="operator")
    after = _obs(http, obs_id)
    assert after["status"] == "final" and after["meta"]["versionId"] == version, after


# --- the sender's own clock --------------------------------------------------------------------------------


def test_the_same_senders_unreadable_withdrawal_after_its_later_report_is_refused(
        engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-8", "RF34-X8")))
    obs_id = _line(engine, http, "RF34-8")
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-8L", "RF34-X8", stamp="20261202120000")))
    ack = post(http, _by("RIS", _withdrawal("RF34-8W", "RF34-X8", "2026120211OOOO")))
    assert _status(http, obs_id) == "final"
    assert b"MSA|AE" in ack and any("|MSH^1^7|" in e for e in err_lines(ack)), ack


def test_offsets_are_compared_as_instants(engine: Engine, http: TestClient) -> None:
    """The RIS's withdrawal stamped in UTC (03:00+0000 = 11:00 Beijing), then its resend of the 10:00+0800
    report: older -- held; and a report of 03:30+0000 (11:30 Beijing) after it is later -- restores."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-9", "RF34-X9", stamp="20261202100000+0800")))
    obs_id = _line(engine, http, "RF34-9")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-9W", "RF34-X9", "20261202030000+0000")))
    ack = post(http, _by("RIS", _three("RF34-9R", "RF34-X9", stamp="20261202100000+0800")))
    assert b"MSA|AA" in ack and any("|OBX^2^11|" in e for e in err_lines(ack)), ack
    assert _status(http, obs_id) == "entered-in-error"
    ack = post(http, _by("RIS", _three("RF34-9L", "RF34-X9", stamp="20261202033000+0000")))
    assert b"MSA|AA" in ack, ack
    assert _status(http, obs_id) == "final"


def test_an_equal_msh7_from_two_applications_is_refused_not_ordered_by_arrival(
        engine: Engine, http: TestClient) -> None:
    """The PACS withdraws (11:00), the RIS's correction carries the very same MSH-7: arrival order breaks
    ties only between one sender's messages -- AE at OBX^1^11."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-10", "RF34-X10")))
    obs_id = _line(engine, http, "RF34-10")
    assert b"MSA|AA" in post(http, _withdrawal("RF34-10W", "RF34-X10", "20261202110000"))
    ack = post(http, _by("RIS", _correction("RF34-10C", "RF34-X10", "20261202110000", FIRST_FIX)))
    assert b"MSA|AE" in ack and any("|OBX^1^11|" in e for e in err_lines(ack)), ack
    assert _status(http, obs_id) == "entered-in-error"


def test_a_coarse_msh7_is_not_ordered_against_a_time_inside_it(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-11", "RF34-X11")))
    obs_id = _line(engine, http, "RF34-11")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("RF34-11W", "RF34-X11", "2026120211")))
    ack = post(http, _by("RIS", _three("RF34-11R", "RF34-X11", stamp="20261202113000")))
    assert _status(http, obs_id) == "entered-in-error"
    assert b"MSA|AE" in ack, ack


def test_a_refusal_for_an_untold_order_is_not_coded_an_internal_error(engine: Engine, http: TestClient) -> None:
    assert b"MSA|AA" in post(http, _by("RIS", _three("RF34-12", "RF34-X12")))
    assert b"MSA|AA" in post(http, _withdrawal("RF34-12W", "RF34-X12", "20261202110000"))
    ack = post(http, _by("RIS", _correction("RF34-12C", "RF34-X12", "20261202120000", FIRST_FIX)))
    (err,) = [e for e in err_lines(ack) if "cannot be told" in e]
    assert err.split("|")[2] == "OBX^1^11", err
    assert not err.split("|")[3].startswith("207^"), err


# --- recognition after a withdrawal --------------------------------------------------------------------


@pytest.fixture
def community(tmp_path: Path) -> Iterator[tuple[Engine, Sender]]:
    """The policy tests' community (HOSPA/HOSPB/HOSPC, QC passed) with a real MLLP listener."""
    for eng in community_engine(tmp_path):
        with running_mllp(eng) as port:
            yield eng, Sender(port)


def _report_statuses(engine: Engine, doc: dict) -> list[str]:
    return [engine.repository.read("DiagnosticReport", r.split("/")[1])["status"]
            for r in doc["resources"] if r.startswith("DiagnosticReport/")]


def _restamped(message: str, when: str, stamp: str) -> str:
    """``message`` (``test_hooks11_policy_edges.result``) with MSH-7 ``stamp`` instead of ``when``."""
    assert f"|C1|{when}|" in message
    return message.replace(f"|C1|{when}|", f"|C1|{stamp}|", 1)


def test_a_withdrawn_prior_held_against_its_older_resend_is_no_recognisable_prior(
        community: tuple[Engine, Sender]) -> None:
    """HOSPA's blood count (5 days ago, 10:00) flags HOSPB's repeat; HOSPA withdraws it (MSH-7 12:00): the
    flag is void. HOSPA's report of 10:00 then arrives again (a resend, another control id): older than the
    withdrawal -- held (AA, W at OBX^1^11) -- and the withdrawn result must stay no recognisable prior:
    the flag stays void, the report (OBR-25 X) stays cancelled."""
    engine, hl7 = community
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged", flags(engine)
    doc = engine.ingestor.messages.get(message_id("HOSPA", "HOSPA-ORU-A1-F"))
    assert doc is not None
    (obs_ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    when = ts(5, 10)
    hl7.send(_restamped(result("HOSPA", "A1", CBC, when, status="W"), when, ts(5, 12)))
    assert flag_of(engine) == "void", flags(engine)
    assert _report_statuses(engine, doc) == ["cancelled"]
    ack = hl7.send(result("HOSPA", "A1", CBC, when, status="F", control="R"))
    assert "|OBX^1^11|" in ack and "not later" in ack, ack
    assert engine.repository.read("Observation", obs_ref.split("/")[1])["status"] == "entered-in-error"
    assert _report_statuses(engine, doc) == ["cancelled"]  # (OBR-25 X: the resend's F is as old as its OBX)
    assert flag_of(engine) == "void", flags(engine)


def test_a_corrected_reports_older_resend_leaves_the_report_corrected(community: tuple[Engine, Sender]) -> None:
    engine, hl7 = community
    when = ts(5, 10)
    hl7.send(result("HOSPA", "A2", CBC, when))
    doc = engine.ingestor.messages.get(message_id("HOSPA", "HOSPA-ORU-A2-F"))
    assert doc is not None
    (obs_ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    hl7.send(_restamped(result("HOSPA", "A2", CBC, when, status="C"), when, ts(5, 12)))
    assert _report_statuses(engine, doc) == ["corrected"]
    ack = hl7.send(result("HOSPA", "A2", CBC, when, status="F", control="R"))
    assert "|OBX^1^11|" in ack and "not later" in ack, ack
    assert engine.repository.read("Observation", obs_ref.split("/")[1])["status"] == "corrected"
    assert _report_statuses(engine, doc) == ["corrected"]
