"""tfix35: rvres35's findings fixed -- one sending application's older restatement of a result's value,
flags or range, or of a numbered document's text (MDM T08), is held against its later one (AA, W at
OBX-5/-8 or TXA-12, nothing of that resource written, raw kept); an imaging document is held with its
held report; a Provenance a FHIR client wrote dates nothing.

Every test sends real HL7 through ``POST /hl7v2`` into the real store on each backend
(``tests.module_store``) and reads back over ``/fhir``; the "as before" tests guard what the lead kept:
another application, an unusable MSH-7 and an equal MSH-7 (arrival) take the restatement as before.
"""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by, _correction, _line, _withdrawal
from tests.test_msgtime33_withdrawal_time import _status
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler numbers, record numbers and control ids (TF35-...)


def _glu(control: str, stamp: str, value: str, flag: str, *, app: str = "LIS", order: str = "TF35G",
         status: str = "F", msh7: str | None = None) -> str:
    """FNXRMYY's glucose result of 孙^五 under filler ``order``, sent by ``app`` at ``stamp``."""
    return "\r".join([f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{msh7 if msh7 is not None else stamp}||ORU^R01^ORU_R01|"
                      f"{control}|P|2.5.1",
                      f"PID|1||{order}^^^FNXRMYY^MR||孙^五||19700305|F",
                      f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
                      f"OBR|1|{order}P^HIS|{order}^LIS|GLU^血糖^L|||20261202090000||||||||||||||||HM|{status}",
                      f"OBX|1|NM|GLU^葡萄糖^L||{value}|mmol/L|3.9-6.1|{flag}|||{status}|||20261202093000"]) + "\r"


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _held_at(ack: bytes, at: str) -> str:
    """AA with exactly one "not later" warning, at ``at`` (ERR-2), severity W."""
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    f = err.split("|")
    assert f[2] == at and f[4] == "W", err
    return err


def _targets(engine: Engine, http: TestClient, control: str) -> set[str]:
    (prov,) = written(engine, http, control, "Provenance")
    return {t["reference"].split("/_history/")[0] for t in prov.get("target") or ()}


def _kept_raw(engine: Engine, control: str, sent: str) -> None:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None and doc["status"] == "processed", doc
    raw = doc["raw"]
    kept = base64.b64decode(raw) if isinstance(raw, str) and not raw.startswith("MSH") else raw
    assert (kept if isinstance(kept, bytes) else kept.encode()) == sent.encode()


# --- a result's value, flags, range: the same sender's older final -----------------------------------------


def test_an_older_final_is_held_at_its_obx_5_and_the_later_result_stays_whole(engine: Engine, http: TestClient) -> None:
    """The LIS reports 5.6 N (10:00), re-runs it 6.8 H (12:00, sent F); its 11:00 message (6.1 N) arrives
    last: AA, one W at OBX^1^5 naming the 12:00 message and both MSH-7; 6.8 H stays, no new version;
    the held message is filed with its raw bytes and its Provenance names no version of the result."""
    post(http, _glu("TF35-1A", "20261202100000", "5.6", "N", order="TF35G1"))
    (obs,) = written(engine, http, "TF35-1A", "Observation")
    assert b"MSA|AA" in post(http, _glu("TF35-1C", "20261202120000", "6.8", "H", order="TF35G1"))
    later = _obs(http, obs["id"])
    assert later["valueQuantity"]["value"] == 6.8
    sent = _glu("TF35-1B", "20261202110000", "6.1", "N", order="TF35G1")
    err = _held_at(post(http, sent), "OBX^1^5")
    assert "TF35-1C" in err and "20261202120000" in err and "20261202110000" in err, err
    after = _obs(http, obs["id"])
    assert after == later, after
    _kept_raw(engine, "TF35-1B", sent)
    assert f"Observation/{obs['id']}" not in _targets(engine, http, "TF35-1B")


def test_an_older_flag_alone_is_held_at_its_obx_8(engine: Engine, http: TestClient) -> None:
    """The value unchanged, the flag re-audited: 6.2 H (10:00), 6.2 N (12:00); the 10:00 message resent
    last is held at OBX^1^8 (the flag it restates), the result stays flagged N."""
    post(http, _glu("TF35-2A", "20261202100000", "6.2", "H", order="TF35G2"))
    (obs,) = written(engine, http, "TF35-2A", "Observation")
    assert b"MSA|AA" in post(http, _glu("TF35-2C", "20261202120000", "6.2", "N", order="TF35G2"))
    later = _obs(http, obs["id"])
    _held_at(post(http, _glu("TF35-2R", "20261202100000", "6.2", "H", order="TF35G2")), "OBX^1^8")
    assert _obs(http, obs["id"]) == later


def test_a_later_final_after_the_held_one_is_taken(engine: Engine, http: TestClient) -> None:
    """After an older final was held, the LIS's next re-run (13:00) is later than every statement: taken,
    no warning -- the held message left no trace that dates the result."""
    post(http, _glu("TF35-3A", "20261202100000", "5.6", "N", order="TF35G3"))
    (obs,) = written(engine, http, "TF35-3A", "Observation")
    post(http, _glu("TF35-3C", "20261202120000", "6.8", "H", order="TF35G3"))
    _held_at(post(http, _glu("TF35-3B", "20261202110000", "6.1", "N", order="TF35G3")), "OBX^1^5")
    ack = post(http, _glu("TF35-3D", "20261202130000", "7.2", "H", order="TF35G3"))
    assert b"MSA|AA" in ack and not err_lines(ack), ack
    assert _obs(http, obs["id"])["valueQuantity"]["value"] == 7.2


def test_an_equal_msh7_goes_by_arrival(engine: Engine, http: TestClient) -> None:
    """Two re-runs stamped the very same second: the one received later is later -- taken, no warning."""
    post(http, _glu("TF35-4A", "20261202100000", "5.6", "N", order="TF35G4"))
    (obs,) = written(engine, http, "TF35-4A", "Observation")
    post(http, _glu("TF35-4B", "20261202120000", "6.8", "H", order="TF35G4"))
    ack = post(http, _glu("TF35-4C", "20261202120000", "6.9", "H", order="TF35G4"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _obs(http, obs["id"])["valueQuantity"]["value"] == 6.9


def test_another_applications_older_final_is_taken_as_before(engine: Engine, http: TestClient) -> None:
    """Another application of the institution (a point-of-care analyser, POC) sends the result final with
    another value, its clock an hour behind: two clocks cannot say which is later, and over a final
    that is no refusal (the lead) -- taken, AA, no warning."""
    post(http, _glu("TF35-5A", "20261202100000", "5.6", "N", order="TF35G5"))
    (obs,) = written(engine, http, "TF35-5A", "Observation")
    post(http, _glu("TF35-5C", "20261202120000", "6.8", "H", order="TF35G5"))
    ack = post(http, _glu("TF35-5B", "20261202110000", "6.1", "N", order="TF35G5", app="POC"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _obs(http, obs["id"])["valueQuantity"]["value"] == 6.1


def test_an_unreadable_msh7_restating_a_final_is_taken_as_before(engine: Engine, http: TestClient) -> None:
    """The LIS's re-run with an MSH-7 that is no time: which is later cannot be told, and over a final the
    lead keeps today's answer -- taken (AA), never a new AE, never held."""
    post(http, _glu("TF35-6A", "20261202100000", "5.6", "N", order="TF35G6"))
    (obs,) = written(engine, http, "TF35-6A", "Observation")
    ack = post(http, _glu("TF35-6B", "", "6.4", "N", order="TF35G6", msh7="2026120X"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _obs(http, obs["id"])["valueQuantity"]["value"] == 6.4


# --- an MDM document's text ------------------------------------------------------------------------------


def _mdm(control: str, event: str, text: str, stamp: str, *, app: str = "EMR", number: str = "TF35-DOC") -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|{stamp}\rPID|1||TF35M^^^FNXRMYY^MR||周^八||19700305|F\r"
            f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|||{number}.rtf|AU\r"
            f"OBX|1|TX|18842-5^出院小结^LN||{text}||||||F\r")


def _document(engine: Engine, http: TestClient, control: str) -> dict:
    (doc,) = written(engine, http, control, "DocumentReference")
    return doc


def _texts(doc: dict) -> list[str]:
    return [base64.b64decode(c["attachment"]["data"]).decode() for c in doc.get("content") or ()
            if c["attachment"].get("data")]


def test_an_older_mdm_edit_is_held_at_txa_12_and_a_later_one_taken(engine: Engine, http: TestClient) -> None:
    """The EMR files a discharge summary (T02 09:00) and edits it (T08 12:00); its 11:00 edit arrives last:
    AA, W at TXA^1^12 (the document) beside W at OBX^1^5 (its text result), the 12:00 text stays, no new
    version, and the held edit's Provenance names neither. Its 13:00 edit is later: taken."""
    assert b"MSA|AA" in post(http, _mdm("TF35-M1", "T02", "初稿。", "20261202090000"))
    assert b"MSA|AA" in post(http, _mdm("TF35-M3", "T08", "终稿:出院诊断肺炎。", "20261202120000"))
    doc = _document(engine, http, "TF35-M3")
    (text,) = written(engine, http, "TF35-M3", "Observation")
    ack = post(http, _mdm("TF35-M2", "T08", "二稿:出院诊断支气管炎。", "20261202110000"))
    assert b"MSA|AA" in ack, ack
    held = [e.split("|") for e in err_lines(ack) if "not later" in e]
    assert sorted(f[2] for f in held) == ["OBX^1^5", "TXA^1^12"] and {f[4] for f in held} == {"W"}, held
    now = http.get(f"/fhir/DocumentReference/{doc['id']}").json()
    assert now == http.get(f"/fhir/DocumentReference/{doc['id']}").json() and now["meta"] == doc["meta"], now
    assert _texts(now) == ["终稿:出院诊断肺炎。"]
    assert _obs(http, text["id"])["valueString"] == "终稿:出院诊断肺炎。"
    assert not {f"DocumentReference/{doc['id']}", f"Observation/{text['id']}"} & _targets(engine, http, "TF35-M2")
    ack = post(http, _mdm("TF35-M4", "T08", "三稿:出院诊断肺炎，已好转。", "20261202130000"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    assert _texts(http.get(f"/fhir/DocumentReference/{doc['id']}").json()) == ["三稿:出院诊断肺炎，已好转。"]


def test_another_applications_older_mdm_edit_is_taken_as_before(engine: Engine, http: TestClient) -> None:
    """An edit of the same numbered document by another application (the nursing system, NIS) whose
    clock is behind: not ordered against the EMR's -- taken as before (AA, no warning)."""
    post(http, _mdm("TF35-N1", "T02", "初稿。", "20261202090000", number="TF35-DOC2"))
    post(http, _mdm("TF35-N3", "T08", "终稿。", "20261202120000", number="TF35-DOC2"))
    doc = _document(engine, http, "TF35-N3")
    ack = post(http, _mdm("TF35-N2", "T08", "护理补记。", "20261202110000", app="NIS", number="TF35-DOC2"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _texts(http.get(f"/fhir/DocumentReference/{doc['id']}").json()) == ["护理补记。"]


# --- an imaging report's document, held with its report ------------------------------------------------


def test_the_held_resends_provenance_names_neither_the_report_nor_its_document(
        engine: Engine, http: TestClient) -> None:
    """The RIS cancels its report (OBR-25 X, every line W, 11:00); the 10:00 report resent is held: the
    document's version is unchanged (no version written) and the resend's Provenance names neither the
    report nor the document -- a later message is dated against the cancellation, not the resend."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("TF35-D", "TF35-XD")))
    doc_id, report_id = _stored(engine, http, "TF35-D")
    cancel = _oru("TF35-DX", "TF35-XD", _obx(1, F1, "1", "双肺纹理增粗。", "W"), _obx(2, F1, "2", "右肺上叶见结节影。", "W"),
                  _obx(3, IMP, "", "慢性支气管炎。", "W"), stamp="20261202110000").replace("||DX|F\r", "||DX|X\r", 1)
    assert b"MSA|AA" in post(http, _by("RIS", cancel))
    before = http.get(f"/fhir/DocumentReference/{doc_id}").json()
    assert before["status"] == "entered-in-error"
    ack = post(http, _by("RIS", _three("TF35-DR", "TF35-XD")))
    assert b"MSA|AA" in ack and [e for e in err_lines(ack) if "not later" in e and "|OBR^1^25|" in e], ack
    assert http.get(f"/fhir/DocumentReference/{doc_id}").json()["meta"] == before["meta"]
    assert not {f"DocumentReference/{doc_id}", f"DiagnosticReport/{report_id}"} & _targets(engine, http, "TF35-DR")


# --- a FHIR client's Provenance dates nothing ------------------------------------------------------------


def test_a_later_messages_provenance_retargeted_by_a_client_does_not_hold_the_senders_correction(
        engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00), withdraws the second line (11:00) and, at 18:00, reports another patient's
    study. A client PUTs the 18:00 message's own Provenance with the withdrawn version as its target:
    its current version is the client's, not the feed's, and dates nothing -- the withdrawn version is
    the 11:00 message's, so the RIS's correction at 12:00 is later: taken (before, "older than 18:00":
    held under AA and the result stayed withdrawn)."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("TF35-P", "TF35-XP")))
    obs_id = _line(engine, http, "TF35-P")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("TF35-PW", "TF35-XP", "20261202110000")))
    withdrawn = _obs(http, obs_id)
    assert withdrawn["status"] == "entered-in-error"
    assert b"MSA|AA" in post(http, _by("RIS", _three("TF35-PO", "TF35-XPO", mrn="TF35PO", name="吕^二",
                                                     stamp="20261202180000")))
    (prov,) = written(engine, http, "TF35-PO", "Provenance")
    prov["target"] = [{"reference": f"Observation/{obs_id}/_history/{withdrawn['meta']['versionId']}"}]
    r = http.put(f"/fhir/Provenance/{prov['id']}", json=prov)
    assert r.status_code == 200, r.text
    ack = post(http, _by("RIS", _correction("TF35-PC", "TF35-XP", "20261202120000")))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e or "cannot be told" in e], ack
    assert _status(http, obs_id) == "corrected"
