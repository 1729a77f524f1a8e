"""rvres35: review probes of the thirty-fourth round's merged changes -- results ordered by the sender's
MSH-7 (msgfix34, tfix34: ``engine.message_time``, ``merge_rules._dated``, ingest's ``Untimely``), the
registrations table and the Provenance-trail marks (registry34, regfix34), and ingest34's cuts.

Every probe sends real HL7 (``POST /hl7v2``, an FHS/BHS batch in one body, MLLP) or real FHIR through
TestClient into the real store, on each backend (``tests.module_store``), and reads back over ``/fhir``.
A probe that shows a defect is a strict xfail naming its severity; the others guard what was found sound.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

import adapters.convert.persons as persons
from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import HL7V2_MESSAGE_SYSTEM, message_id
from engine.settings import Settings
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by, _correction, _line, _withdrawal
from tests.test_msgtime33_withdrawal_time import LINE, _status
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru, _report_texts, _stored, _three
from tests.test_rvidentity32_probes import MRN, adt, patients

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler numbers, record numbers and control ids (RR35-...)


def _ok(ack: bytes) -> bytes:
    assert b"MSA|AA" in ack, ack
    return ack


def _held(ack: bytes, at: str) -> str:
    """AA with a warning "not later" at ``at`` (the report's own, when it is held too, beside it)."""
    _ok(ack)
    (err,) = [e for e in err_lines(ack) if "not later" in e and f"|{at}|" in e]
    assert "|W|" in err, err
    return err


# --- MSH-7: offsets, fractions --------------------------------------------------------------------------


def test_an_msh7_with_the_institutions_offset_is_the_same_time_as_one_without(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00) and restates at 12:00 sent without an offset (the institution's zone,
    +0800); its withdrawal stamped 03:59:59+0000 (11:59:59 in Beijing) is older: held. The same withdrawal
    stamped 04:00:00+0000 (= 12:00 +0800, the restatement's very time) received after it is later by
    arrival: taken. Offsets are instants, the zone of an offset-less MSH-7 the institution's."""
    _ok(post(http, _by("RIS", _three("RR35-1", "RR35-X1"))))
    obs_id = _line(engine, http, "RR35-1")
    _ok(post(http, _by("RIS", _three("RR35-1L", "RR35-X1", stamp="20261202120000"))))
    _held(post(http, _by("RIS", _withdrawal("RR35-1W", "RR35-X1", "20261202035959+0000"))), "OBX^1^11")
    assert _status(http, obs_id) == "final"
    ack = _ok(post(http, _by("RIS", _withdrawal("RR35-1V", "RR35-X1", "20261202040000+0000"))))
    assert not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _status(http, obs_id) == "entered-in-error"


def test_a_fraction_of_a_second_orders_one_senders_messages(engine: Engine, http: TestClient) -> None:
    """MSH-7 to a fraction of a second (DTM's .S to .SSSS): the RIS restates at 12:00:00.5; its withdrawal
    of 12:00:00.25 is older (held), its withdrawal of 12:00:00.75 later (taken) -- the fraction is not
    dropped (rvmsgtime33), and a fraction is a point in time, not a span."""
    _ok(post(http, _by("RIS", _three("RR35-2", "RR35-X2"))))
    obs_id = _line(engine, http, "RR35-2")
    _ok(post(http, _by("RIS", _three("RR35-2L", "RR35-X2", stamp="20261202120000.5"))))
    _held(post(http, _by("RIS", _withdrawal("RR35-2W", "RR35-X2", "20261202120000.25"))), "OBX^1^11")
    assert _status(http, obs_id) == "final"
    ack = _ok(post(http, _by("RIS", _withdrawal("RR35-2V", "RR35-X2", "20261202120000.75"))))
    assert not [e for e in err_lines(ack) if "not later" in e], ack
    assert _status(http, obs_id) == "entered-in-error"


def test_a_minute_precision_msh7_with_an_offset_is_a_span(engine: Engine, http: TestClient) -> None:
    """``202612021200+0800`` names the minute 12:00-12:01 (its offset does not make it a point): the same
    sender's restatement at 12:00:30 lies inside it -- which is later cannot be told: AE at its OBX-11 (a
    withdrawal over a version the RIS stated), nothing written, raw kept."""
    _ok(post(http, _by("RIS", _three("RR35-3", "RR35-X3"))))
    obs_id = _line(engine, http, "RR35-3")
    _ok(post(http, _by("RIS", _three("RR35-3L", "RR35-X3", stamp="20261202120030"))))
    ack = post(http, _by("RIS", _withdrawal("RR35-3W", "RR35-X3", "202612021200+0800")))
    assert b"MSA|AE" in ack, ack
    (err,) = [e for e in err_lines(ack) if "cannot be told" in e]
    assert "|OBX^1^11|" in err, err
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RR35-3W"))
    assert doc is not None and doc["status"] == "quarantined" and doc.get("raw"), doc
    assert _status(http, obs_id) == "final"


# --- the ACK of a refusal, and the raw kept for replay ---------------------------------------------------


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def test_the_refusal_names_its_field_code_and_severity_and_its_replay_is_refused_alike(
        engine: Engine, http: TestClient) -> None:
    """The PACS withdraws the RIS's line; the RIS's correction after it cannot be ordered: the ACK is AE,
    one ERR: ERR-2 ``OBX^1^11`` (the OBX's occurrence), ERR-3 ``206^...^HL70357`` (record locked, not 207
    internal error), ERR-4 ``E``; the raw bytes kept exactly as sent; the operator's replay of the kept
    message answers the same (nothing silently revived) and keeps the raw."""
    _ok(post(http, _by("RIS", _three("RR35-4", "RR35-X4"))))
    obs_id = _line(engine, http, "RR35-4")
    _ok(post(http, _withdrawal("RR35-4W", "RR35-X4", "20261202110000")))
    version = http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]
    sent = _by("RIS", _correction("RR35-4C", "RR35-X4", "20261202120000"))
    ack = post(http, sent)
    assert b"MSA|AE" in ack, ack
    (err,) = err_lines(ack)
    f = err.split("|")
    assert f[2] == "OBX^1^11" and f[3].startswith("206^") and f[3].endswith("^HL70357") and f[4] == "E", err
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RR35-4C"))
    assert doc is not None and doc["status"] == "quarantined"
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RR35-4C')}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    after = http.get(f"/fhir/Observation/{obs_id}").json()
    assert after["status"] == "entered-in-error" and after["meta"]["versionId"] == version, after
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RR35-4C"))
    assert doc is not None and doc["status"] == "quarantined"
    raw = doc["raw"]
    kept = base64.b64decode(raw) if isinstance(raw, str) and not raw.startswith("MSH") else raw
    assert (kept if isinstance(kept, bytes) else kept.encode()) == sent.encode(), (kept, sent)


# --- DiagnosticReport status (OBR-25) beside OBX-11 ------------------------------------------------------


def _report_status(http: TestClient, report_id: str) -> str:
    return http.get(f"/fhir/DiagnosticReport/{report_id}").json()["status"]


def test_another_applications_final_over_a_corrected_report_is_refused_at_obr_25(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports (OBR-25 F, 10:00) and corrects its second line (OBR-25 C, OBX-11 C, 12:00); the PACS
    (13:00 by its clock) then sends the report final again with the original line: the corrected result
    and the corrected report both stand (two clocks cannot say which is later) -- AE, the ERR naming a
    field the sender can fix, nothing of it written."""
    _ok(post(http, _by("RIS", _three("RR35-5", "RR35-X5"))))
    _, report_id = _stored(engine, http, "RR35-5")
    obs_id = _line(engine, http, "RR35-5")
    corrected = _by("RIS", _correction("RR35-5C", "RR35-X5", "20261202120000")).replace("||DX|F\r", "||DX|C\r", 1)
    _ok(post(http, corrected))
    assert _report_status(http, report_id) == "corrected" and _status(http, obs_id) == "corrected"
    texts = _report_texts(http, report_id)
    ack = post(http, _three("RR35-5F", "RR35-X5", stamp="20261202130000"))
    assert b"MSA|AE" in ack, ack
    errs = [e for e in err_lines(ack) if "cannot be told" in e]
    assert errs and all(e.split("|")[2] in ("OBX^2^11", "OBR^1^25") for e in errs), errs
    assert _report_status(http, report_id) == "corrected" and _status(http, obs_id) == "corrected"
    assert _report_texts(http, report_id) == texts


def test_the_same_senders_older_report_final_is_held_against_its_cancelled_report(
        engine: Engine, http: TestClient) -> None:
    """The RIS cancels its report (OBR-25 X, every line W, 11:00); its 10:00 report resent afterwards (a
    queue) is older: the report stays cancelled and every result withdrawn (AA with warnings)."""
    _ok(post(http, _by("RIS", _three("RR35-6", "RR35-X6"))))
    _, report_id = _stored(engine, http, "RR35-6")
    obs = [o["id"] for o in written(engine, http, "RR35-6", "Observation")]
    cancel = _oru("RR35-6X", "RR35-X6", _obx(1, F1, "1", "双肺纹理增粗。", "W"), _obx(2, F1, "2", LINE, "W"),
                  _obx(3, IMP, "", "慢性支气管炎。", "W"), stamp="20261202110000").replace("||DX|F\r", "||DX|X\r", 1)
    _ok(post(http, _by("RIS", cancel)))
    assert _report_status(http, report_id) == "cancelled"
    ack = _ok(post(http, _by("RIS", _three("RR35-6R", "RR35-X6"))))
    assert [e for e in err_lines(ack) if "not later" in e], ack
    assert _report_status(http, report_id) == "cancelled"
    assert {_status(http, o) for o in obs} == {"entered-in-error"}


def test_an_older_resend_held_against_a_correction_leaves_the_corrected_report_whole(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00, issued 09:50) and corrects at 12:00 (OBR-25 C, issued 11:50, its second line
    and its impression OBX-11 C); its 10:00 report resent afterwards (a queue) is older: held. Not only
    the results' status and value stand -- the report keeps what the 12:00 correction said of it: status
    corrected, issued 11:50, the corrected impression as its conclusion, the corrected line in its text
    and its document. An older message held must not write its other fields back over the later one's."""
    _ok(post(http, _by("RIS", _three("RR35-9", "RR35-X9"))))
    doc_id, report_id = _stored(engine, http, "RR35-9")
    obs_id = _line(engine, http, "RR35-9")
    fixed = _oru("RR35-9C", "RR35-X9", _obx(2, F1, "2", "右肺上叶见钙化灶。", "C", "20261202100000"),
                 _obx(3, IMP, "", "慢性支气管炎，较前好转。", "C"), stamp="20261202120000"
                 ).replace("||20261202095000||DX|F\r", "||20261202115000||DX|C\r", 1)
    _ok(post(http, _by("RIS", fixed)))
    before = http.get(f"/fhir/DiagnosticReport/{report_id}").json()
    document = http.get(f"/fhir/DocumentReference/{doc_id}").json()
    assert before["status"] == "corrected" and _status(http, obs_id) == "corrected"
    assert before["conclusion"] == "慢性支气管炎，较前好转。" and before["issued"].startswith("2026-12-02T11:50"), before
    ack = _ok(post(http, _by("RIS", _three("RR35-9R", "RR35-X9"))))
    assert [e for e in err_lines(ack) if "not later" in e], ack
    after = http.get(f"/fhir/DiagnosticReport/{report_id}").json()
    assert after["status"] == "corrected" and _status(http, obs_id) == "corrected"
    assert (after.get("issued"), after.get("conclusion")) == (before["issued"], before["conclusion"]), after
    assert after.get("presentedForm") == before.get("presentedForm")
    kept = http.get(f"/fhir/DocumentReference/{doc_id}").json()
    assert (kept.get("content"), kept.get("docStatus"), kept.get("status")) == (
        document.get("content"), document.get("docStatus"), document.get("status"))


def test_an_older_resend_held_against_a_cancelled_report_leaves_its_document_alone(
        engine: Engine, http: TestClient) -> None:
    """As the cancelled report above, read through its DocumentReference: the RIS cancels (OBR-25 X, every
    line W, 11:00), its 10:00 report is resent (held): the document keeps the status and text the
    cancellation left it (no line of the withdrawn report comes back, the document is not final again)."""
    _ok(post(http, _by("RIS", _three("RR35-10", "RR35-X10"))))
    doc_id, report_id = _stored(engine, http, "RR35-10")
    cancel = _oru("RR35-10X", "RR35-X10", _obx(1, F1, "1", "双肺纹理增粗。", "W"), _obx(2, F1, "2", LINE, "W"),
                  _obx(3, IMP, "", "慢性支气管炎。", "W"), stamp="20261202110000").replace("||DX|F\r", "||DX|X\r", 1)
    _ok(post(http, _by("RIS", cancel)))
    document = http.get(f"/fhir/DocumentReference/{doc_id}").json()
    assert _report_status(http, report_id) == "cancelled"
    _ok(post(http, _by("RIS", _three("RR35-10R", "RR35-X10"))))
    assert _report_status(http, report_id) == "cancelled"
    kept = http.get(f"/fhir/DocumentReference/{doc_id}").json()
    assert (kept.get("content"), kept.get("docStatus"), kept.get("status")) == (
        document.get("content"), document.get("docStatus"), document.get("status")), (document, kept)


def _glucose(control: str, stamp: str, value: str, flag: str, status: str, unit: str = "mmol/L",
             low_high: str = "3.9-6.1") -> str:
    return "\r".join([f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
                       "PID|1||RR35G^^^FNXRMYY^MR||金^十||19700305|F",
                       "ORC|RE|RR35GP^HIS|RR35G^LIS||CM",
                       "OBR|1|RR35GP^HIS|RR35G^LIS|GLU^血糖^L|||20261202090000||||||||||||||||HM|F",
                       f"OBX|1|NM|GLU^葡萄糖^L||{value}|{unit}|{low_high}|{flag}|||{status}|||20261202093000"]) + "\r"


def test_an_older_resend_held_against_a_correction_keeps_the_corrections_flag_and_range(
        engine: Engine, http: TestClient) -> None:
    """The LIS reports glucose 5.6 (N, 10:00) and corrects it to 15.6 (H, 12:00, OBX-11 C); its 10:00 report
    resent afterwards is older: held at OBX^1^11 -- and the stored result is the correction's whole
    statement: 15.6 flagged high, never 15.6 flagged normal (the value held, the flag of the older
    message written beside it)."""
    _ok(post(http, _glucose("RR35-G1", "20261202100000", "5.6", "N", "F")))
    (obs,) = written(engine, http, "RR35-G1", "Observation")
    _ok(post(http, _glucose("RR35-G2", "20261202120000", "15.6", "H", "C")))
    fixed = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert fixed["status"] == "corrected" and fixed["valueQuantity"]["value"] == 15.6, fixed
    assert "H" in str(fixed.get("interpretation")), fixed.get("interpretation")
    _held(post(http, _glucose("RR35-G1R", "20261202100000", "5.6", "N", "F")), "OBX^1^11")
    after = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert after["status"] == "corrected" and after["valueQuantity"] == fixed["valueQuantity"], after
    assert after.get("interpretation") == fixed.get("interpretation"), after.get("interpretation")
    assert after.get("referenceRange") == fixed.get("referenceRange"), after.get("referenceRange")


def test_an_older_final_arriving_after_the_senders_later_final_does_not_take_its_value_back(
        engine: Engine, http: TestClient) -> None:
    """The LIS reports glucose 5.6 at 10:00 and restates it final as 6.8 at 12:00 (a re-run, sent F, not C:
    HL7 wants C, but huren takes the restatement); the 11:00 message (6.1, F) arrives last. The stored
    value becomes 6.1 under AA, no warning: dating covers only a stored status in ``stands``, so the
    sender's own older statement replaces its later one. Should: held (AA, W at OBX^1^11), 6.8 kept --
    or refused, but never silently older-wins."""
    _ok(post(http, _glucose("RR35-H1", "20261202100000", "5.6", "N", "F").replace("RR35G", "RR35H")))
    (obs,) = written(engine, http, "RR35-H1", "Observation")
    _ok(post(http, _glucose("RR35-H3", "20261202120000", "6.8", "H", "F").replace("RR35G", "RR35H")))
    assert http.get(f"/fhir/Observation/{obs['id']}").json()["valueQuantity"]["value"] == 6.8
    ack = _ok(post(http, _glucose("RR35-H2", "20261202110000", "6.1", "N", "F").replace("RR35G", "RR35H")))
    assert http.get(f"/fhir/Observation/{obs['id']}").json()["valueQuantity"]["value"] == 6.8, ack


# --- a batch mixing them ---------------------------------------------------------------------------------


def _batch(*messages: str) -> bytes:
    body = "".join(messages).encode()
    head = b"BHS|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261202130000||||RR35B\r"
    return (b"FHS|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261202130000||||RR35F\r" + head + body
            + b"BTS|%d\rFTS|1\r" % len(messages))


def _acks(answer: bytes) -> list[str]:
    return [s.split("|")[1] for s in answer.decode().split("\r") if s.startswith("MSA|")]


def test_one_fhs_batch_mixing_a_withdrawal_an_older_resend_and_a_refused_correction(
        engine: Engine, http: TestClient) -> None:
    """One ``POST /hl7v2`` of an FHS/BHS batch: the RIS's report (10:00), the PACS's withdrawal of its
    second line (11:00), the RIS's 10:00 report resent (a queue), the RIS's correction (12:00). The batch
    answers as the messages would one by one: AA, AA, then AE twice (another application's withdrawal cannot
    be ordered against the RIS's clock: its resend and its correction alike) -- the result stays withdrawn,
    the two refused messages' raw kept, the others filed."""
    r = http.post("/hl7v2", content=_batch(
        _by("RIS", _three("RR35-7", "RR35-X7")), _withdrawal("RR35-7W", "RR35-X7", "20261202110000"),
        _by("RIS", _three("RR35-7R", "RR35-X7")), _by("RIS", _correction("RR35-7C", "RR35-X7", "20261202120000"))),
        headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    assert _acks(r.content) == ["AA", "AA", "AE", "AE"], r.content
    obs_id = _line(engine, http, "RR35-7")
    assert _status(http, obs_id) == "entered-in-error"
    states = {c: (engine.ingestor.messages.get(message_id("FNXRMYY", c)) or {}).get("status")
              for c in ("RR35-7", "RR35-7W", "RR35-7R", "RR35-7C")}
    assert states == {"RR35-7": "processed", "RR35-7W": "processed", "RR35-7R": "quarantined",
                      "RR35-7C": "quarantined"}, states


def test_in_one_batch_an_equal_msh7_goes_by_the_batchs_order(engine: Engine, http: TestClient) -> None:
    """One FHS/BHS batch: the RIS's report (10:00) and its withdrawal of the second line stamped the very
    same second, after it in the batch: the batch's order is the arrival order -- the withdrawal is
    later, taken (as two POSTs in that order are: msgfix34's test 4)."""
    r = http.post("/hl7v2", content=_batch(_by("RIS", _three("RR35-11", "RR35-X11")),
                                           _by("RIS", _withdrawal("RR35-11W", "RR35-X11", "20261202100000"))),
                  headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200 and _acks(r.content) == ["AA", "AA"], r.content
    assert b"not later" not in r.content and b"cannot be told" not in r.content, r.content
    assert _status(http, _line(engine, http, "RR35-11")) == "entered-in-error"


# --- an FHIR client's Provenance naming a message ---------------------------------------------------------


def test_a_clients_provenance_naming_a_message_does_not_lock_the_senders_own_correction(
        engine: Engine, http: TestClient) -> None:
    """rvmsgfix34 noted, not probed: a client with Provenance write POSTs a Provenance naming the withdrawn
    version (``Observation/x/_history/n``) and, as its entity, an HL7 message identifier (the system
    ``urn:huren:hl7v2:message:FNXRMYY`` the feed writes). ``_Dates.of`` finds no filed message listing that
    Provenance and dates the version by "a message no longer kept" (unusable): the RIS's own correction
    (12:00) of its own withdrawal (11:00) -- plainly later by its one clock -- is refused AE, and every
    later message about the result is, until someone deletes the client's Provenance. A Provenance no
    filed message wrote should not date a version (the client's own PUT is dated as a client's; a
    client's Provenance beside a message's version says nothing of when the message was sent)."""
    _ok(post(http, _by("RIS", _three("RR35-8", "RR35-X8"))))
    obs_id = _line(engine, http, "RR35-8")
    _ok(post(http, _by("RIS", _withdrawal("RR35-8W", "RR35-X8", "20261202110000"))))
    withdrawn = http.get(f"/fhir/Observation/{obs_id}").json()
    assert withdrawn["status"] == "entered-in-error"
    target = f"Observation/{obs_id}/_history/{withdrawn['meta']['versionId']}"
    prov = {"resourceType": "Provenance", "recorded": "2026-12-02T11:30:00+08:00", "target": [{"reference": target}],
            "agent": [{"who": {"display": "ward clerk"}}],
            "entity": [{"role": "source", "what": {"identifier": {"system": f"{HL7V2_MESSAGE_SYSTEM}:FNXRMYY",
                                                                  "value": "RR35-8W"}}}]}
    r = http.post("/fhir/Provenance", json=prov)
    assert r.status_code == 201, r.text
    ack = post(http, _by("RIS", _correction("RR35-8C", "RR35-X8", "20261202120000")))
    assert b"MSA|AA" in ack, ack
    assert _status(http, obs_id) == "corrected"


def test_a_retargeted_provenance_does_not_date_a_version_its_message_never_stated(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports RR35-X12 (10:00) and, at 18:00, another patient's study. A client with Provenance
    write PUTs the 18:00 message's own Provenance with RR35-X12's line (its current version) as target --
    the filed 18:00 message lists that Provenance, so ``_Dates.of`` takes its MSH-7 as the time the line
    was stated. The RIS's withdrawal of the line at 13:00 (before 18:00 by its clock) is then held as
    "not later" (AA, W): the withdrawn result stays final. A Provenance a FHIR client wrote (any version
    whose writer is not the feed) should not date a version."""
    _ok(post(http, _by("RIS", _three("RR35-12", "RR35-X12"))))
    obs_id = _line(engine, http, "RR35-12")
    _ok(post(http, _by("RIS", _three("RR35-12O", "RR35-X12O", mrn="RR35O", name="戚^一", stamp="20261202180000"))))
    (prov,) = written(engine, http, "RR35-12O", "Provenance")
    current = http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]
    prov["target"] = [{"reference": f"Observation/{obs_id}/_history/{current}"}]
    r = http.put(f"/fhir/Provenance/{prov['id']}", json=prov)
    assert r.status_code == 200, r.text
    ack = post(http, _by("RIS", _withdrawal("RR35-12W", "RR35-X12", "20261202130000")))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    assert _status(http, obs_id) == "entered-in-error"


# --- MDM documents: an older edit arriving late ----------------------------------------------------------


def _mdm(control: str, event: str, text: str, stamp: str) -> str:
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|{stamp}||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|{stamp}\rPID|1||RR35M^^^FNXRMYY^MR||钱^九||19700305|F\r"
            f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||RR35-DOC|||rr35.rtf|AU\r"
            f"OBX|1|TX|18842-5^出院小结^LN||{text}||||||F\r")


def _document_text(http: TestClient) -> list[str]:
    found = http.get("/fhir/DocumentReference", params={"identifier": "rr35.rtf"}).json().get("entry") or []
    if not found:
        found = [e for e in http.get("/fhir/DocumentReference").json().get("entry") or []
                 if any(i.get("value") in ("RR35-DOC", "rr35.rtf") for i in e["resource"].get("identifier") or ())
                 or (e["resource"].get("masterIdentifier") or {}).get("value") == "RR35-DOC"]
    (doc,) = [e["resource"] for e in found]
    return [base64.b64decode(c["attachment"]["data"]).decode() for c in doc.get("content") or ()
            if c["attachment"].get("data")]


def test_an_older_mdm_edit_arriving_after_a_later_one_does_not_take_the_document_back(
        engine: Engine, http: TestClient) -> None:
    """The EMR files a discharge summary (T02, 09:00) and edits it twice (T08, 11:00 then 12:00); the 11:00
    edit arrives last (a queue). The document's text is the 11:00 edit's: the 12:00 text is gone, AA, no
    warning. Results are now ordered by the sender's MSH-7 (msgfix34/tfix34), a document's edits are
    not: the same sender's older statement silently replaces its later one. Should: held (AA, ERR W
    naming the text's OBX-5 or TXA), the 12:00 text kept."""
    _ok(post(http, _mdm("RR35-M1", "T02", "初稿。", "20261202090000")))
    _ok(post(http, _mdm("RR35-M3", "T08", "终稿:出院诊断肺炎。", "20261202120000")))
    assert any("终稿" in t for t in _document_text(http)), _document_text(http)
    ack = post(http, _mdm("RR35-M2", "T08", "二稿:出院诊断支气管炎。", "20261202110000"))
    assert b"MSA|AA" in ack, ack
    texts = _document_text(http)
    assert any("终稿" in t for t in texts) and not any("二稿" in t for t in texts), texts


# --- the registrations table: merges, both backends, a restart -------------------------------------------


def _pid(http: TestClient, number: str) -> str:
    (p,) = patients(http, f"{MRN}|{number}")
    return f"Patient/{p['id']}"


def _answers(engine: Engine, ref: str) -> tuple[str | None, str | None]:
    repo, messages = engine.ingestor.repository, engine.ingestor.messages
    return persons._registered(ref, repo.search, messages, ()), persons._walked(ref, repo.search, messages, (), repo)


def test_a_clients_patient_put_and_a_foreign_based_provenance_answer_as_the_walk(
        engine: Engine, http: TestClient) -> None:
    """The HIS registers RRP and RRQ. A FHIR client PUTs RRP (a telecom added: a version no message wrote);
    another POSTs a Provenance naming RRQ by an absolute reference of another server's base
    (``https://elsewhere.example/fhir/Patient/<id>``). For each the table answers what the walk does."""
    assert ack_code_of(post(http, adt("RRP1", "RRP^^^FNXRMYY^MR", "秦^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RRQ1", "RRQ^^^FNXRMYY^MR", "尤^一", "19610101", "M"))) == "AA"
    rrp, rrq = _pid(http, "RRP"), _pid(http, "RRQ")
    body = http.get(f"/fhir/{rrp}").json()
    body["telecom"] = [{"system": "phone", "value": "13800000000"}]
    r = http.put(f"/fhir/{rrp}", json=body)
    assert r.status_code == 200, r.text
    prov = {"resourceType": "Provenance", "recorded": "2026-12-01T10:00:00+08:00",
            "target": [{"reference": f"https://elsewhere.example/fhir/{rrq}"}], "agent": [{"who": {"display": "x"}}]}
    r = http.post("/fhir/Provenance", json=prov)
    assert r.status_code == 201, r.text  # (accepted: another base is no reference of this server)
    for ref in (rrp, rrq):
        table, walk = _answers(engine, ref)
        assert table == walk, (ref, table, walk)


_STRUCTURE = {"A40": "ADT_A39", "A18": "ADT_A18"}


def _merge(control: str, pid3: str, name: str, mrg1: str, event: str = "A40", app: str = "HIS") -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^{event}^{_STRUCTURE[event]}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201121500\rPID|1||{pid3}||{name}||19610101|M\rMRG|{mrg1}\r")


def test_merges_move_registrations_as_the_walk_does(engine: Engine, http: TestClient) -> None:
    """The LIS registers RRB, the HIS RRA; the HIS's A40 merges RRB into RRA; the LIS's A18 merges RRC (the
    LIS's) into RRA too. For the survivor and each merged record the table answers what the walk answers;
    the LIS restating the HIS's survivor as another person is refused, the HIS's own restatement taken."""
    assert ack_code_of(post(http, adt("RRM1", "RRB^^^FNXRMYY^MR", "陆^一", "19610101", "M", app="LIS"))) == "AA"
    assert ack_code_of(post(http, adt("RRM2", "RRA^^^FNXRMYY^MR", "陆^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RRM3", "RRC^^^FNXRMYY^MR", "陆^一", "19610101", "M", app="LIS"))) == "AA"
    rra, rrb, rrc = _pid(http, "RRA"), _pid(http, "RRB"), _pid(http, "RRC")
    assert ack_code_of(post(http, _merge("RRM4", "RRA^^^FNXRMYY^MR", "陆^一", "RRB^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, _merge("RRM5", "RRA^^^FNXRMYY^MR", "陆^一", "RRC^^^FNXRMYY^MR",
                                         event="A18", app="LIS"))) in ("AA", "AE")
    for ref in (rra, rrb, rrc):
        table, walk = _answers(engine, ref)
        assert table == walk, (ref, table, walk)
    assert _answers(engine, rra)[0] == "HIS"
    ack = post(http, adt("RRM6", "RRA^^^FNXRMYY^MR", "吴^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


def test_the_registrations_answer_the_same_after_a_restart(tmp_path: Path) -> None:
    """SQLite, the engine closed and opened again on its folder: the LIS's A04 after the HIS's leaves the
    HIS the registrar, by the table and by the walk, before and after the restart; the epoch is not moved
    by a restart of a store this release filed (its records keep the one-read answer), and the LIS's
    restatement is refused after it as before."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
    with Engine(settings) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rr35", "system/*.cruds")
        assert ack_code_of(post(http, adt("RRS1", "RRS^^^FNXRMYY^MR", "冯^一", "19610101", "M"))) == "AA"
        assert ack_code_of(post(http, adt("RRS2", "RRS^^^FNXRMYY^MR", "冯^一", "19610101", "M", app="LIS"))) == "AA"
        ref = _pid(http, "RRS")
        before = _answers(eng, ref)
        epoch = eng.store.collection("hl7_census").get("registrations")
    assert before == ("HIS", "HIS"), before
    with Engine(settings) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rr35", "system/*.cruds")
        assert _answers(eng, ref) == before
        assert eng.store.collection("hl7_census").get("registrations") == epoch
        ack = post(http, adt("RRS3", "RRS^^^FNXRMYY^MR", "褚^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack


# --- ingest34: sort keys written directly by orjson ------------------------------------------------------


def test_sort_by_quantity_and_date_after_an_update_follows_the_stored_values(engine: Engine, http: TestClient) -> None:
    """ingest34 writes ``sortkeys`` by orjson on both the insert and the update path: three Observations
    POSTed, one PUT with a new value and time; ``_sort`` by value-quantity and by date follows the values
    as stored (a decimal, an exponent, a negative), both directions."""
    made = {}
    r = http.put("/fhir/Patient/rr35q", json={"resourceType": "Patient", "id": "rr35q",
                                               "identifier": [{"system": MRN, "value": "RR35Q"}],
                                               "name": [{"family": "钱", "given": ["十"]}]})
    assert r.status_code in (200, 201), r.text
    for name, value, when in (("a", 5.5, "2026-12-01T08:00:00+08:00"), ("b", -1.25, "2026-12-01T09:00:00+08:00"),
                              ("c", 1e-3, "2026-12-01T10:00:00+08:00")):
        body = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "urn:rr35", "code": "RR35Q"}]}, "effectiveDateTime": when,
                "subject": {"reference": "Patient/rr35q"}, "performer": [{"reference": "Organization/FNXRMYY"}],
                "valueQuantity": {"value": value, "unit": "mmol/L"}}
        r = http.post("/fhir/Observation", json=body)
        assert r.status_code == 201, r.text
        made[name] = r.json()
    changed = dict(made["c"], valueQuantity={"value": 120.0, "unit": "mmol/L"}, effectiveDateTime="2026-11-30T08:00:00+08:00")
    r = http.put(f"/fhir/Observation/{changed['id']}", json=changed)
    assert r.status_code == 200, r.text

    def order(sort: str) -> list[str]:
        got = http.get("/fhir/Observation", params={"code": "urn:rr35|RR35Q", "_sort": sort}).json()
        ids = {v["id"]: k for k, v in made.items()}
        return [ids[e["resource"]["id"]] for e in got.get("entry") or ()]

    assert order("value-quantity") == ["b", "a", "c"]
    assert order("-value-quantity") == ["c", "a", "b"]
    assert order("date") == ["c", "a", "b"]
    assert order("-date") == ["b", "a", "c"]
