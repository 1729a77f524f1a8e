"""rv36a: review probes of codefix35 (an order's code takes a result's coding only for the same test),
backfix35 (the owner's put-back of a re-keyed number judged on its record as left) and heldfix35 (an older
restatement held with an empty OBX-11 or over a client's note).

Real HL7 v2 over ``POST /hl7v2`` into the real store on both backends (``tests.module_store``), read back
over ``/fhir``. A probe that shows a defect is a strict xfail naming its severity."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.hl7_calls import err_lines, post, written
from tests.module_store import module_eng
from tests.test_idfix35_owner import _referred, _restated
from tests.test_mfix34_members import APART, FNZYY_MRN, _tokens, both
from tests.test_ordfix36_final_back import report_of
from tests.test_rvfixord35_probes import _message, _order
from tests.test_rvidentity32_probes import MRN, patients
from tests.test_srfix35_order_code import LOINC, history, http, orm, oru, send, the_order

__all__ = ["both", "http", "module_eng"]

Both = tuple[Engine, TestClient, dict[str, str]]


def _errs(ack: str) -> list[list[str]]:
    return [s.split("|") for s in ack.replace("\n", "\r").split("\r") if s.startswith("ERR|")]


# --- codefix35: the order's code and a result's coding ---------------------------------------------------


def test_rv36a_a_result_with_the_orders_coding_and_another_tests_alternate_keeps_the_item(
        module_eng: Engine, http: TestClient) -> None:
    placer = "RV36A-ALT"
    send(http, orm(placer))
    ack = send(http, oru(placer, item="5902-2^PT^LN^1020^肝功能八项^L"))
    assert "MSA|AA" in ack, ack
    order = the_order(http, placer)
    assert "1020" not in {c["code"] for c in order["code"]["coding"]}, order["code"]
    assert item_for(order, module_eng.recognition.rules) == "COAG"


def test_rv36a_a_result_of_two_orders_warns_at_the_obr_that_named_another_test(http: TestClient) -> None:
    """One ORU reporting two orders: the first coded as its own test (PTX), the second coded 1020 (LFT) under a
    PT order: the W names the second OBR's OBR-4 (OBR^2^4), and only the second order keeps its code alone."""
    first, second = "RV36A-TWO1", "RV36A-TWO2"
    send(http, orm(first))
    send(http, orm(second))
    one, two = oru(first), oru(second, item="1020^肝功能八项^L")
    head, body1 = one.split("ORC|", 1)
    body2 = two.split("ORC|", 1)[1].replace("OBR|1|", "OBR|2|").replace("OBX|1|", "OBX|1|")
    ack = send(http, head + "ORC|" + body1 + "ORC|" + body2)
    assert "MSA|AA" in ack, ack
    warned = [e for e in _errs(ack) if e[4] == "W" and "another test" in e[8]]
    assert [e[2] for e in warned] == ["OBR^2^4"], ack
    assert the_order(http, first)["code"]["coding"] == [LOINC]  # (PTX, in no map, not added: mixfix36)
    assert the_order(http, second)["code"]["coding"] == [LOINC]


def test_rv36a_an_order_change_to_an_unmapped_test_states_it_whole(module_eng: Engine, http: TestClient) -> None:
    placer = "RV36A-XO-ZZ"
    send(http, orm(placer))
    xo = orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|ZZ01^血型鉴定^L|")
    assert "MSA|AA" in send(http, xo)
    order = the_order(http, placer)
    assert [c["code"] for c in order["code"]["coding"]] == ["ZZ01"], order["code"]
    assert item_for(order, module_eng.recognition.rules) != "COAG"


def test_rv36a_an_order_change_to_a_known_other_test_in_another_system_states_it_whole(
        module_eng: Engine, http: TestClient) -> None:
    """NW PT by LOINC, XO to the local 1020 (LFT, known): another test by the code maps: stated whole."""
    placer = "RV36A-XO-LFT"
    send(http, orm(placer))
    xo = orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|1020^肝功能八项^L|")
    assert "MSA|AA" in send(http, xo)
    order = the_order(http, placer)
    assert "5902-2" not in {c["code"] for c in order["code"]["coding"]}, order["code"]
    assert item_for(order, module_eng.recognition.rules) == "LFT"
    assert [v["code"]["coding"][0]["code"] for v in history(http, order)][-1] == "1020"


def test_rv36a_an_order_change_stating_the_test_by_text_alone_is_not_lost(http: TestClient) -> None:
    placer = "RV36A-XO-TEXT"
    send(http, orm(placer))
    ack = send(http, orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|^血常规|"))
    assert "MSA|AA" in ack, ack
    code = the_order(http, placer)["code"]
    assert code.get("text") == "血常规" and "5902-2" not in {c.get("code") for c in code.get("coding") or ()}, code


# --- backfix35: the owner's put-back judged on its record as left -----------------------------------------


def test_rv36a_the_put_back_needs_more_than_the_sex_in_common(both: Both) -> None:
    _, http, _ = both
    own = _referred(http, "RA1")
    _restated(http, "RA1C", "RA1", "陈^四", "19920303", "F")
    (apart,) = patients(http, f"{FNZYY_MRN}|ZRA1")
    assert f"{APART}|RA1" in _tokens(apart), apart["identifier"]
    _restated(http, "RA1D", "RA1", "陈^四", "19920303", "M")
    (owner,) = [p for p in patients(http, f"{MRN}|RA1") if p["id"] != own["id"]]
    assert owner["name"][0]["family"] == "陈" and owner["birthDate"] == "1992-03-03", owner
    (after,) = patients(http, f"{FNZYY_MRN}|ZRA1")
    assert f"{MRN}|RA1" not in _tokens(after) and f"{APART}|RA1" in _tokens(after), after["identifier"]


def test_rv36a_the_owner_agreeing_in_full_puts_the_number_back(both: Both) -> None:
    """The converse guard: 陈四 F 1992, then the owner's A08 as 冯三 M 1961 again (every field agreeing): back."""
    _, http, _ = both
    _referred(http, "RA2")
    _restated(http, "RA2C", "RA2", "陈^四", "19920303", "F")
    _restated(http, "RA2D", "RA2", "冯^三", "19610101", "M")
    (back,) = patients(http, f"{FNZYY_MRN}|ZRA2")
    assert f"{MRN}|RA2" in _tokens(back) and f"{APART}|RA2" not in _tokens(back), back["identifier"]


# --- heldfix35: the same sender's older restatement, OBX-11 empty or over a client's note -------------------

def _potassium(control: str, stamp: str, mrn: str, placer: str, value: str, flag: str = "N",
               status: str = "F", report: str | None = None) -> str:
    """The LIS's potassium ``value`` with OBX-11 ``status``; OBR-25 ``report`` (None: the one a lab sends
    beside that status, ``report_of``: F, C, P, X alike, "" beside an empty or withdrawn one -- it was F
    whatever the result said; thirty-eighth round, status38)."""
    obr25 = report_of(status) if report is None else report
    return _message(control, stamp, mrn, [_order(placer, [("K", value, flag)])]).replace(
        f"|{flag}|||F|||", f"|{flag}|||{status}|||").replace("|CH|F\r", f"|CH|{obr25}\r", 1)


def _k(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def test_rv36a_a_later_rerun_with_an_empty_status_is_taken(module_eng: Engine, http: TestClient) -> None:
    """The converse guard of heldfix35's hold: 4.1 F (10:00), then the same LIS's 12:00 re-run 5.6 with OBX-11
    empty: later, taken (no 'not later' W)."""
    post(http, _potassium("RV36A-H1A", "20261203100000", "RV36AM1", "RV36AP1", "4.1"))
    (obs,) = written(module_eng, http, "RV36A-H1A", "Observation")
    ack = post(http, _potassium("RV36A-H1B", "20261203120000", "RV36AM1", "RV36AP1", "5.6", "H", ""))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    assert _k(http, obs["id"])["valueQuantity"]["value"] == 5.6


def test_rv36a_a_later_rerun_after_a_clients_note_is_taken_and_the_note_kept(
        module_eng: Engine, http: TestClient) -> None:
    """4.1 (10:00), 5.6 (12:00), a ward's note (a client's version), then the LIS's 13:00 re-run 6.1: later than the
    message the note's version is dated by -- taken, the note kept."""
    post(http, _potassium("RV36A-H2A", "20261203100000", "RV36AM2", "RV36AP2", "4.1"))
    (obs,) = written(module_eng, http, "RV36A-H2A", "Observation")
    post(http, _potassium("RV36A-H2B", "20261203120000", "RV36AM2", "RV36AP2", "5.6", "H"))
    noted = {**_k(http, obs["id"]), "note": [{"text": "已电话通知病房"}]}
    noted.pop("meta", None)
    assert http.put(f"/fhir/Observation/{obs['id']}", json=noted).status_code == 200
    ack = post(http, _potassium("RV36A-H2C", "20261203130000", "RV36AM2", "RV36AP2", "6.1", "H"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    stored = _k(http, obs["id"])
    assert stored["valueQuantity"]["value"] == 6.1 and stored.get("note"), stored


def test_rv36a_an_older_restatement_with_an_empty_status_over_a_correction_is_held(
        module_eng: Engine, http: TestClient) -> None:
    """4.1 F (10:00), the LIS's 12:00 correction 5.6 (C), then its 11:00 message arriving last with OBX-11 empty
    and 4.4: the same sender's older statement -- the corrected 5.6 stays (as a stated F at 11:00 would be held)."""
    post(http, _potassium("RV36A-H3A", "20261203100000", "RV36AM3", "RV36AP3", "4.1"))
    (obs,) = written(module_eng, http, "RV36A-H3A", "Observation")
    assert b"MSA|AA" in post(http, _potassium("RV36A-H3B", "20261203120000", "RV36AM3", "RV36AP3", "5.6", "H", "C"))
    ack = post(http, _potassium("RV36A-H3C", "20261203110000", "RV36AM3", "RV36AP3", "4.4", "N", ""))
    assert b"MSA|AA" in ack, ack
    stored = _k(http, obs["id"])
    assert stored["valueQuantity"]["value"] == 5.6 and stored["status"] == "corrected", stored


def test_rv36a_an_older_restatement_with_an_empty_status_over_a_client_note_is_held(
        module_eng: Engine, http: TestClient) -> None:
    """Both of heldfix35's cases at once: 4.1 (10:00), 5.6 (12:00), a ward's note, then the 11:00 message with
    OBX-11 empty and 4.4: held (AA, W at OBX^1^5), 5.6 and the note kept."""
    post(http, _potassium("RV36A-H4A", "20261203100000", "RV36AM4", "RV36AP4", "4.1"))
    (obs,) = written(module_eng, http, "RV36A-H4A", "Observation")
    post(http, _potassium("RV36A-H4B", "20261203120000", "RV36AM4", "RV36AP4", "5.6", "H"))
    noted = {**_k(http, obs["id"]), "note": [{"text": "已电话通知病房"}]}
    noted.pop("meta", None)
    assert http.put(f"/fhir/Observation/{obs['id']}", json=noted).status_code == 200
    ack = post(http, _potassium("RV36A-H4C", "20261203110000", "RV36AM4", "RV36AP4", "4.4", "N", ""))
    stored = _k(http, obs["id"])
    assert stored["valueQuantity"]["value"] == 5.6 and stored.get("note"), stored
    held = [e for e in err_lines(ack) if "not later" in e]
    assert b"MSA|AA" in ack and len(held) == 1 and held[0].split("|")[2] == "OBX^1^5", ack
