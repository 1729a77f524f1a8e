"""rv37c: review probes of code37 (the stand-in report code, mapping gaps counted, a report following
its order recoded by the filler's XX).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
and written over ``/fhir`` (TestClient). Each test uses order numbers and codes of its own. A probe that
shows a defect is a strict xfail naming its severity (thirty-seventh round, rv37c).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.merge_rules import STAND_IN_EXT
from tests.module_store import module_eng
from tests.test_code37_gaps import _codes_counted
from tests.test_codefix36_order_code import _errs, _reports
from tests.test_probepay26_windows import msh, pid
from tests.test_srfix35_order_code import ORDERED, RESULTED, B, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]
HEAD, CHEST = "3002^头颅CT平扫^L", "3001^胸部CT平扫^L"


def _local_result(message: str, code: str) -> str:
    return message.replace("OBX|1|NM|5902-2^PT^LN|", f"OBX|1|NM|{code}^凝血酶原时间^L|")


def _codes(resource: dict) -> list[str]:
    return [c["code"] for c in resource["code"].get("coding") or ()]


def _marked(resource: dict) -> bool:
    return any(e.get("url") == STAND_IN_EXT for e in resource["code"].get("extension") or ())


def _refused_at_obr4(ack: str) -> bool:
    return "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"]


def _ris(message: str) -> str:
    return message.replace("|LIS|FNZYY|", "|RIS|FNZYY|").replace("^LIS|", "^RIS|")


# --- the stand-in mark --------------------------------------------------------------------------------


def test_stand_in_from_a_loinc_result_then_the_senders_local_code_leaves_no_mark(http: TestClient) -> None:
    """P with OBR-4 empty, its result LOINC 5902-2 (the stand-in: LOINC, marked); then the F naming the
    LIS's local test R37L^凝血^L (no system in common with the stand-in: no refusal asked). The report's code
    is now the sender's statement: it must not carry the stand-in mark, else the LIS's later change of its
    own coded test (R37M) is taken silently instead of refused (codefix36/gfix13's refusal lost)."""
    placer = "R37C-LN"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="", status="P"))
    (report,) = _reports(http, the_order(http, placer))
    assert _marked(report) and _codes(report) == ["5902-2"], report["code"]
    assert "MSA|AA" in send(http, oru(placer, item="R37L^凝血^L"))
    (after,) = _reports(http, the_order(http, placer))
    assert "R37L" in _codes(after), after["code"]
    assert not _marked(after), after["code"]
    ack = send(http, oru(placer, item="R37M^凝血酶时间^L", status="C"))
    assert _refused_at_obr4(ack), ack


def test_a_fhir_client_cannot_set_the_stand_in_mark(http: TestClient) -> None:
    """The mark is huren's statement (the converter's), not a client's: a FHIR client's PUT of a report
    carrying ``STAND_IN_EXT`` on its code must not store it (refused with an OperationOutcome, or the mark
    dropped) -- a client's read-modify-write that fixed the stand-in's coding but kept the extension it read
    left its own code marked as huren's stand-in, and the LIS's later message naming another test under the
    filler's number then replaced the client's code with no refusal."""
    placer = "R37C-API"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="", status="P"), "R37S"))
    (report,) = _reports(http, the_order(http, placer))
    assert _marked(report), report["code"]
    # the client names the real test, keeping the rest of the code it read (the extension with it)
    report["code"]["coding"] = [{"system": f"urn:huren:code:{B}", "code": "R37K", "display": "凝血"}]
    r = http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report)
    if r.status_code < 300:
        (stored,) = _reports(http, the_order(http, placer))
        assert _codes(stored) == ["R37K"], stored["code"]
        assert not _marked(stored), stored["code"]
    else:
        assert r.status_code in (400, 409, 412, 422) and r.json()["resourceType"] == "OperationOutcome", r.text


def test_a_clients_marked_code_is_not_replaced_by_another_test(http: TestClient) -> None:
    """Consequence of the previous probe: the client's stored code R37Q (written with the mark it read)
    then the LIS's F naming R37Z under the same filler number: AE at OBR^1^4 (another test), the client's
    code kept -- not silently replaced."""
    placer = "R37C-API2"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="", status="P"), "R37S"))
    (report,) = _reports(http, the_order(http, placer))
    report["code"]["coding"] = [{"system": f"urn:huren:code:{B}", "code": "R37Q", "display": "凝血"}]
    r = http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report)
    assert r.status_code < 300, r.text
    ack = send(http, _local_result(oru(placer, item="R37Z^凝血酶时间^L"), "R37S"))
    (after,) = _reports(http, the_order(http, placer))
    assert _codes(after) == ["R37Q"] and _refused_at_obr4(ack), (ack, after["code"])


def test_a_stand_in_does_not_make_a_panel_of_the_senders_one_test(http: TestClient) -> None:
    """P with OBR-4 empty and two results (R37S, R37H: the report's stand-in R37S, marked); then the F naming
    the test R37T^凝血^L with its first result only. The stand-in named no test: the report is R37T's, coded
    -- not the panel text ``凝血酶原时间; 凝血`` with no coding (the sender's code lost; recognition reads no
    item). Before code37 this F was refused (AE 205), kept for replay; now AA with the code dropped."""
    placer = "R37C-PANEL"
    send(http, orm(placer))
    p = _local_result(oru(placer, item="", status="P"), "R37S") + f"OBX|2|NM|R37H^纤维蛋白原^L||3.1|g/L|||||P|||{RESULTED}\n"
    assert "MSA|AA" in send(http, p)
    (report,) = _reports(http, the_order(http, placer))
    assert _marked(report), report["code"]
    ack = send(http, _local_result(oru(placer, item="R37T^凝血^L"), "R37S"))
    (after,) = _reports(http, the_order(http, placer))
    assert "MSA|AA" in ack and "R37T" in _codes(after), (ack, after["code"])


def test_the_stand_in_mark_does_not_change_the_reports_search_by_code(http: TestClient) -> None:
    """The mark is on the concept, not a coding: ``code=`` search still finds the stand-in report by its
    result's code (recognition and the pages read the codings alike)."""
    placer = "R37C-SEARCH"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="", status="P"), "R37F"))
    order = the_order(http, placer)
    found = http.get("/fhir/DiagnosticReport", params={"code": f"urn:huren:code:{B}|R37F"}).json()
    ids = {e["resource"]["id"] for e in found.get("entry") or ()}
    (report,) = _reports(http, order)
    assert report["id"] in ids and _marked(report), found


def test_a_stand_in_then_a_second_group_naming_the_test_in_one_message(http: TestClient) -> None:
    """One ORU, two groups under one filler number: group 1 OBR-4 empty, group 2 naming R37G in the LIS's
    system; stored first as a stand-in of another local code (R37S). The second group's test is the
    sender's statement: taken, the mark gone."""
    placer = "R37C-GROUPS"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="", status="P"), "R37S"))
    one = _local_result(oru(placer, item=""), "R37S")
    obr = [s for s in one.split("\n") if s.startswith("OBR|")][0]
    second = obr.replace("OBR|1|", "OBR|2|").replace(f"F{placer}^LIS||", f"F{placer}^LIS|R37G^凝血^L|")
    msg = one.rstrip("\n") + "\n" + second + "\n" + f"OBX|1|NM|R37H^纤维蛋白原^L||3.1|g/L|||||F|||{RESULTED}\n"
    ack = send(http, msg)
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack
    (after,) = _reports(http, the_order(http, placer))
    assert "R37G" in _codes(after) and not _marked(after), after["code"]


# --- a report following its order (``_order_states``) ------------------------------------------------


def _ordered(placer: str) -> str:
    return orm(placer).replace("|5902-2^PT^LN|", f"|{HEAD}|")


def _changed(placer: str, item: str, app: str = "RIS", patient: str = "") -> str:
    head = msh(B, app, "ORM^O01^ORM_O01", RESULTED) + pid(B)
    if patient:
        head = head.replace(next(s for s in head.split("\n") if s.startswith("PID|")), patient)
    return _ris(head + f"ORC|XX|{placer}^HIS|F{placer}^RIS||IP\n"
                + f"OBR|1|{placer}^HIS|F{placer}^RIS|{item}|||{ORDERED}\n")


def test_an_order_message_from_another_patient_does_not_recode_the_order(http: TestClient) -> None:
    """Head CT ordered and reported; an XX under the same numbers naming ANOTHER patient (and chest CT):
    refused (another_person), the order not recoded -- so the RIS's C naming chest CT stays refused."""
    placer = "R37C-XXPAT"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    other = "PID|1||R37OTHER^^^FNZYY^MR||王^五||19700101|M\n"
    ack = send(http, _changed(placer, CHEST, patient=other))
    order = the_order(http, placer)
    assert "3002" in {c["code"] for c in order["code"].get("coding") or ()}, (ack, order["code"])
    assert _refused_at_obr4(send(http, _ris(oru(placer, item=CHEST, status="C"))))


def test_a_loinc_alongside_a_changed_local_test_does_not_lift_the_refusal(http: TestClient) -> None:
    """codefix36's refusal (the LIS's own local test changed under its filler number: CF-A -> CF-B) must not
    be lifted because the new OBR-4 also carries the order's LOINC as its alternate coding: the order
    holding a coding of the message's test is not the order's message changing the test (no XX was sent).
    ``_order_states`` looks for any coding of the incoming test on the order."""
    placer = "R37C-ALT"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="R37A^凝血^L", status="P"))
    ack = send(http, oru(placer, item="R37B^凝血酶时间^L^5902-2^PT^LN", status="C"))
    (report,) = _reports(http, the_order(http, placer))
    assert _refused_at_obr4(ack) and "R37A" in _codes(report) and "R37B" not in _codes(report), (ack, report["code"])


def test_an_xx_from_another_application_does_not_make_the_report_follow(http: TestClient) -> None:
    """Head CT ordered and reported by the RIS (filler F...^RIS); the LIS (MSH-3 LIS, not the filler) sends an
    ORC-1 XX under the RIS's numbers naming chest CT: the order is recoded (the order rule takes any order
    message), and ``_order_states`` then lets the RIS's C naming chest CT recode the head CT report (AA).
    XX is the filler's change (table 0119); the report should follow only the filler's own statement:
    the C stays refused (AE at OBR^1^4), the report head CT's."""
    placer = "R37C-XXAPP"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    send(http, _changed(placer, CHEST).replace("|RIS|FNZYY|", "|LIS|FNZYY|", 1))
    ack = send(http, _ris(oru(placer, item=CHEST, status="C")))
    (report,) = _reports(http, the_order(http, placer))
    assert _refused_at_obr4(ack) and "3002" in _codes(report), (ack, report["code"])


# --- mapping gaps counted -------------------------------------------------------------------------------


def test_a_refused_message_counts_no_gap(module_eng: Engine, http: TestClient) -> None:
    """A gap is counted only for a stored message: an ORU refused (AE at OBR-4, nothing written) under an
    order by a text naming no item counts nothing for the text."""
    placer, text = "R37C-GAPAE", "凝血检查四项R"
    from tests.test_xotext36_order_text import _by_text
    assert "MSA|AA" in send(http, _by_text(placer, text))
    assert "MSA|AA" in send(http, oru(placer, item="R37E^凝血^L", status="P"))
    before = _codes_counted(module_eng, http).get(text)
    ack = send(http, oru(placer, item="R37F^凝血酶时间^L", status="C"))
    assert _refused_at_obr4(ack), ack
    assert _codes_counted(module_eng, http).get(text) == before


def test_a_re_sent_message_is_counted_once(module_eng: Engine, http: TestClient) -> None:
    """The same message (same MSH-10) sent twice is one message: its gap counted once."""
    placer, text = "R37C-GAPDUP", "凝血检查五项R"
    from tests.test_xotext36_order_text import LFT_LOCAL, _by_text
    assert "MSA|AA" in send(http, _by_text(placer, text))
    msg = oru(placer, item=LFT_LOCAL)
    send(http, msg)
    send(http, msg)
    assert _codes_counted(module_eng, http)[text] == [("OBR-4", 1)]
