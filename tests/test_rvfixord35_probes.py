"""rvfixord35's probes of tfix35 (the same sender's older restatement held), rerun35 (one batched
Provenance search per write, ``MergeRules._provenances``; OBX-5/7/8 located lazily, ``Said.later``) and
ordfix35 (the operator's decision bound to the refused version).

Every test sends real HL7 through ``POST /hl7v2`` into the real store on each backend
(``tests.module_store``) and reads back over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by
from tests.test_order35_as_later import _operator
from tests.test_rvdocref32_probes import F1, IMP, _doc_texts, _obx, _oru, _report_texts

__all__ = ["engine", "module_http"]

engine = module_eng


def _msh(control: str, stamp: str, app: str = "LIS") -> str:
    return f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1"


def _order(order: str, results: list[tuple[str, str, str]], code: str = "CHEM") -> list[str]:
    """One ORC/OBR group under filler ``order``; ``results``: (code, value, flag), set ids from 1."""
    lines = [f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
             f"OBR|1|{order}P^HIS|{order}^LIS|{code}^生化^L|||20261203080000|||||||||||||||||CH|F"]  # (OBR-25: status38)
    for n, (rcode, value, flag) in enumerate(results, 1):
        lines.append(f"OBX|{n}|NM|{rcode}^{rcode}^L||{value}|mmol/L|1-9|{flag}|||F|||20261203083000")
    return lines


def _message(control: str, stamp: str, mrn: str, orders: list[list[str]], app: str = "LIS") -> str:
    lines = [_msh(control, stamp, app), f"PID|1||{mrn}^^^FNXRMYY^MR||吴^十||19680412|M"]
    for group in orders:
        lines.extend(group)
    return "\r".join(lines) + "\r"


def _by_code(engine: Engine, http: TestClient, control: str) -> dict[str, dict]:
    return {o["code"]["coding"][0]["code"]: o for o in written(engine, http, control, "Observation")}


def _value(http: TestClient, obs_id: str) -> float:
    return http.get(f"/fhir/Observation/{obs_id}").json()["valueQuantity"]["value"]


def test_a_held_result_of_the_second_order_is_located_at_its_own_obx(engine: Engine, http: TestClient) -> None:
    """Two orders in one ORU (set ids restart at 1 in each): the second order's first result re-run at
    12:00; the 10:00 message of both resent as 11:00 with new values. Only that result is held, and its W
    names the OBX that stated it -- the message's third OBX (ERR-2.2: the segment's occurrence in the
    message), field 5 -- the lazy location must not name the first order's OBX^1."""
    first = [("GLU", "5.6", "N"), ("K", "4.1", "N")]
    second = [("ALT", "30", "N"), ("AST", "25", "N")]
    post(http, _message("RF35-1A", "20261203100000", "RF35M1",
                        [_order("RF35A1", first), _order("RF35B1", second, "LIVER")]))
    ids = {c: o["id"] for c, o in _by_code(engine, http, "RF35-1A").items()}
    assert len(ids) == 4
    assert b"MSA|AA" in post(http, _message("RF35-1C", "20261203120000", "RF35M1",
                                            [_order("RF35B1", [("ALT", "45", "H")], "LIVER")]))
    assert _value(http, ids["ALT"]) == 45
    ack = post(http, _message("RF35-1B", "20261203110000", "RF35M1",
                              [_order("RF35A1", [("GLU", "6.0", "N"), ("K", "4.2", "N")]),
                               _order("RF35B1", [("ALT", "33", "N"), ("AST", "27", "N")], "LIVER")]))
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    f = err.split("|")
    assert f[2] == "OBX^3^5" and f[4] == "W" and "RF35-1C" in err, err
    assert (_value(http, ids["GLU"]), _value(http, ids["K"]), _value(http, ids["ALT"]),
            _value(http, ids["AST"])) == (6.0, 4.2, 45, 27)


def test_a_result_past_the_first_search_chunk_is_dated_by_its_own_messages(engine: Engine, http: TestClient) -> None:
    """A 205-result panel (more than ``_TARGETS`` = 200 targets: two Provenance searches in the write):
    the 205th result alone re-run at 12:00; the 10:00 panel resent as 11:00 with every value changed.
    The 205th (in the second chunk) is held, at OBX^205^5, the re-run value kept; the first 204 take the
    11:00 values; exactly one W."""
    codes = [f"T{n:03d}" for n in range(1, 206)]
    post(http, _message("RF35-2A", "20261203100000", "RF35M2", [_order("RF35P2", [(c, "5", "N") for c in codes])]))
    ids = {c: o["id"] for c, o in _by_code(engine, http, "RF35-2A").items()}
    assert len(ids) == 205
    assert b"MSA|AA" in post(http, _message("RF35-2C", "20261203120000", "RF35M2",
                                            [_order("RF35P2", [("T205", "8", "N")])]))
    ack = post(http, _message("RF35-2B", "20261203110000", "RF35M2",
                              [_order("RF35P2", [(c, "6", "N") for c in codes])]))
    assert b"MSA|AA" in ack, ack
    held = [e for e in err_lines(ack) if "not later" in e]
    assert len(held) == 1 and held[0].split("|")[2] == "OBX^205^5" and "RF35-2C" in held[0], held
    assert _value(http, ids["T205"]) == 8
    assert _value(http, ids["T001"]) == 6 and _value(http, ids["T200"]) == 6 and _value(http, ids["T201"]) == 6


def test_an_older_restatement_is_held_though_a_vaguer_statement_of_the_version_came_first(
        engine: Engine, http: TestClient) -> None:
    """The stored potassium 4.1 was stated by the LIS's hour-precision 11:xx message and stated again,
    unchanged, by its 12:00:00 message. An 11:30 message of the same LIS then states 4.4: the sender's
    own 12:00 statement is strictly later, so 4.4 is an older restatement and is held (AA, W at OBX^1^5),
    whatever order the store lists the two Provenances in -- the vague 11:xx one (its span overlaps
    11:30: not told) must not hide the 12:00 one that tells."""
    post(http, _message("RF35-3A", "2026120311", "RF35M3", [_order("RF35P3", [("K", "4.1", "N")])]))
    (obs,) = written(engine, http, "RF35-3A", "Observation")
    assert b"MSA|AA" in post(http, _message("RF35-3B", "20261203120000", "RF35M3",
                                            [_order("RF35P3", [("K", "4.1", "N")])]))
    ack = post(http, _message("RF35-3C", "20261203113000", "RF35M3", [_order("RF35P3", [("K", "4.4", "N")])]))
    assert b"MSA|AA" in ack, ack
    held = [e for e in err_lines(ack) if "not later" in e]
    assert len(held) == 1 and held[0].split("|")[2] == "OBX^1^5" and "RF35-3B" in held[0], (held, ack)
    assert _value(http, obs["id"]) == 4.1


def test_an_imaging_rerun_held_leaves_result_report_and_document_with_the_later_words(
        engine: Engine, http: TestClient) -> None:
    """The PACS's report (10:00), its 12:00 re-issue (F, not C) rewording line 2, then an 11:00 re-issue
    of line 2 arriving last: the line is held (AA, W at OBX^2^5); the result, the report's text and its
    document (a copy of the report, no TXA-12) all keep the 12:00 words -- none of the 11:00 ones."""
    line1, imp = "双肺纹理增粗。", "慢性支气管炎。"
    noon, eleven = "右肺上叶结节影，较前增大。", "右肺上叶见小结节。"

    def report(control: str, stamp: str, second: str) -> str:
        return _oru(control, "RF35X4", _obx(1, F1, "1", line1, "F"), _obx(2, F1, "2", second, "F"),
                    _obx(3, IMP, "", imp, "F"), mrn="RF35D4", name="孙^八", stamp=stamp)

    assert b"MSA|AA" in post(http, report("RF35-4A", "20261202100000", "右肺上叶见结节影。"))
    (doc,) = written(engine, http, "RF35-4A", "DocumentReference")
    (rep,) = written(engine, http, "RF35-4A", "DiagnosticReport")
    lines = {o["code"]["coding"][0]["code"] + o.get("valueString", "")[:2]: o["id"]
             for o in written(engine, http, "RF35-4A", "Observation")}
    second_id = lines["FINDINGS右肺"]
    assert b"MSA|AA" in post(http, report("RF35-4C", "20261202120000", noon))
    assert http.get(f"/fhir/Observation/{second_id}").json()["valueString"] == noon
    assert _report_texts(http, rep["id"]) == [f"{line1}\n{noon}\n{imp}"] == _doc_texts(http, doc["id"])
    ack = post(http, report("RF35-4B", "20261202110000", eleven))
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    assert err.split("|")[2] == "OBX^2^5" and "RF35-4C" in err, err
    assert http.get(f"/fhir/Observation/{second_id}").json()["valueString"] == noon
    assert _report_texts(http, rep["id"]) == [f"{line1}\n{noon}\n{imp}"] == _doc_texts(http, doc["id"])


def test_an_older_restatement_without_a_result_status_is_held_too(engine: Engine, http: TestClient) -> None:
    """The LIS's potassium 4.1 (10:00), re-run to 5.6 at 12:00 (F); then its 11:00 message arriving last
    states 4.4 with OBX-11 empty (stored as the placeholder 'unknown', which the merge keeps final). The
    value is the same sender's older statement all the same: held (W at OBX^1^5), 5.6 kept -- a missing
    status must not let an older value through that a stated F would not."""
    post(http, _message("RF35-5A", "20261203100000", "RF35M5", [_order("RF35P5", [("K", "4.1", "N")])]))
    (obs,) = written(engine, http, "RF35-5A", "Observation")
    assert b"MSA|AA" in post(http, _message("RF35-5C", "20261203120000", "RF35M5",
                                            [_order("RF35P5", [("K", "5.6", "H")])]))
    older = _message("RF35-5B", "20261203110000", "RF35M5", [_order("RF35P5", [("K", "4.4", "N")])])
    ack = post(http, older.replace("|1-9|N|||F|||", "|1-9|N||||||"))
    stored = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert stored["valueQuantity"]["value"] == 5.6 and stored["status"] == "final", stored
    held = [e for e in err_lines(ack) if "not later" in e]
    assert len(held) == 1 and held[0].split("|")[2] == "OBX^1^5" and "RF35-5C" in held[0], (held, ack)


def test_a_correction_refused_over_two_withdrawals_is_decided_in_one_round(engine: Engine, http: TestClient) -> None:
    """The RIS's report (10:00); the PACS withdraws both finding lines (11:00, taken); the RIS's 12:00
    correction of both is refused (AE: which is later cannot be told). The refusal should record every
    version it could not date -- both results' -- so the operator's one decision "as later" takes the
    correction (AA, both corrected). Today only the first is recorded (``Untimely`` aborts at the first)
    and the decided replay answers 409 "the record changed after the refusal" of a record that did not
    change: the operator is told something false and must decide twice."""
    line1, line2, imp = "双肺纹理增粗。", "右肺上叶见结节影。", "慢性支气管炎。"
    report = _oru("RF35-6A", "RF35X6", _obx(1, F1, "1", line1, "F"), _obx(2, F1, "2", line2, "F"),
                  _obx(3, IMP, "", imp, "F"), mrn="RF35D6", name="周^六")
    assert b"MSA|AA" in post(http, _by("RIS", report))
    ids = {o["valueString"]: o["id"] for o in written(engine, http, "RF35-6A", "Observation")}
    withdraw = _oru("RF35-6W", "RF35X6", _obx(1, F1, "1", line1, "W"), _obx(2, F1, "2", line2, "W"),
                    mrn="RF35D6", name="周^六", stamp="20261202110000")
    assert b"MSA|AA" in post(http, withdraw)
    correct = _oru("RF35-6C", "RF35X6", _obx(1, F1, "1", "双肺纹理清晰。", "C"), _obx(2, F1, "2", "右肺上叶见钙化灶。", "C"),
                   _obx(3, IMP, "", imp, "F"), mrn="RF35D6", name="周^六", stamp="20261202120000")
    ack = post(http, _by("RIS", correct))
    assert b"MSA|AE" in ack, ack
    msg = message_id("FNXRMYY", "RF35-6C")
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200, r.text
    assert r.json()["ack_code"] == "AA" and r.json()["decided"]["used"] is True, r.json()
    assert [http.get(f"/fhir/Observation/{ids[t]}").json()["status"] for t in (line1, line2)] == ["corrected"] * 2


def test_an_older_restatement_is_held_after_a_client_annotated_the_senders_later_value(
        engine: Engine, http: TestClient) -> None:
    """The LIS's potassium 4.1 (10:00), re-run 5.6 at 12:00; a ward's FHIR client then adds a note to the
    result (a client's version, the 12:00 value kept); the LIS's 11:00 message arriving last states 4.4.
    The stored 5.6 is still the sender's 12:00 statement (``_carried`` dates such a version for a
    withdrawal or correction): 4.4 is its older restatement -- held (AA, W at OBX^1^5), 5.6 and the
    note kept."""
    post(http, _message("RF35-7A", "20261203100000", "RF35M7", [_order("RF35P7", [("K", "4.1", "N")])]))
    (obs,) = written(engine, http, "RF35-7A", "Observation")
    assert b"MSA|AA" in post(http, _message("RF35-7C", "20261203120000", "RF35M7",
                                            [_order("RF35P7", [("K", "5.6", "H")])]))
    current = http.get(f"/fhir/Observation/{obs['id']}").json()
    noted = {**current, "note": [{"text": "已电话通知病房"}]}
    noted.pop("meta", None)
    r = http.put(f"/fhir/Observation/{obs['id']}", json=noted)
    assert r.status_code == 200, r.text
    ack = post(http, _message("RF35-7B", "20261203110000", "RF35M7", [_order("RF35P7", [("K", "4.4", "N")])]))
    assert b"MSA|AA" in ack, ack
    stored = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert stored["valueQuantity"]["value"] == 5.6 and stored.get("note"), stored
    held = [e for e in err_lines(ack) if "not later" in e]
    assert len(held) == 1 and held[0].split("|")[2] == "OBX^1^5" and "RF35-7C" in held[0], (held, ack)
