"""The re-test reason after money20 (moneymend20): the review's probes (rv-money20) through HL7 over
real MLLP, both stores. Only the placer's own order statements (an order message, ORC-1 NW, XO, RO and
the replace requests) replace or withdraw the reason; a filler's status change and a result message
never delete it; an XO's ORC-16 other than ``""`` or a reason of huren's is the change's reason, not a
withdrawal; a thinner statement of R06 (code and name) keeps the doctor's text. The probes that held
on 92cb5eb stay as guards."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.shared_worlds44d import Own, own_sender, policy_eng, policy_mllp  # noqa: F401 -- fixtures (own's)
from tests.test_money19_cds_orders import cds_card, override, register
from tests.test_money20_reason_change import R01, R07, prior, stored_reasons, update
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru


def setup(own: Own) -> tuple[Own, TestClient, str]:
    """``test_money19_cds_orders.setup`` through this test's sender: HOSPA's blood count three days ago, her
    registration at HOSPB; the sender, a client of the app and her HOSPB record's id."""
    own.send(oru("HOSPA", "A1", CBC, ts(3)))
    register(own, "HOSPB")
    return own, TestClient(create_app(own.engine)), own.patient_id("HOSPB")


def oru_with_orc(orc1: str, orc16: str) -> str:
    return oru("HOSPB", "B1", CBC, ts(1, 10)).replace(
        "OBR|1|B1^HIS", f"ORC|{orc1}|B1^HIS|FB1^LIS||CM|||||||||||{orc16}\nOBR|1|B1^HIS", 1)


@pytest.mark.parametrize("orc1", ["SC", "", "NW", "re"])
@pytest.mark.parametrize("orc16", ['""', "Z1^患者要求^L"], ids=["deleted", "another-code"])
def test_a_result_message_whose_orc1_is_not_RE_takes_nothing_away(own: Own, orc1: str, orc16: str) -> None:
    """An ORU^R01's ORC is the result's copy of the order whatever its ORC-1 (LIS send SC/blank):
    the R01 recorded at order time must decide."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(oru_with_orc(orc1, orc16))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


@pytest.mark.parametrize("orc16", ['""', "Z1^患者要求^L"], ids=["deleted", "another-code"])
def test_a_filler_status_change_does_not_take_the_doctors_reason(own: Own, orc16: str) -> None:
    """ORM ORC-1 SC (the LIS: status changed, ORC-5 IP) -- ORC-16 is the reason for that control code,
    not the doctor's re-test reason: R01 stays."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
             + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生||||{orc16}\n"
             + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


def test_a_replacement_order_deleting_the_reason_has_none(own: Own) -> None:
    """ORC-1 RO replacing B1 (R01) by B1R with ORC-16 "": the replacement states no reason -- it
    must not inherit R01 through ``replaces``."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-RO-B1") + pid("HOSPB")
             + f"ORC|RO|B1R^HIS|||||||{when}|||D7^张^医生||||\"\"\n"
             + f"OBR|1|B1R^HIS||{CBC}|||{when}\n"
             + f"ORC|RU|B1^HIS|||||||{when}|||D7^张^医生\n"
             + f"OBR|2|B1^HIS||{CBC}|||{when}\n")
    hl7.send(oru("HOSPB", "B1R", CBC, ts(1, 10)))
    flags = own.flags()
    assert flags and all(f["status"] == "flagged" for f in flags), flags


def test_a_reason_deleted_after_the_result_keeps_the_decision_and_a_correction(own: Own) -> None:
    """R01 recorded, result decided justified; XO "" afterwards; a corrected result: still R01."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 11), '""'))
    corrected = oru("HOSPB", "B1", CBC, ts(1, 12), "OBX|1|NM|WBC^白细胞^L||6.3|10*9/L|||||C").replace(
        "HOSPB-ORU-B1", "HOSPB-ORU-B1-C").replace("|||F\n", "|||C\n", 1)
    hl7.send(corrected)
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


def test_two_groups_of_one_order_in_one_message(own: Own) -> None:
    """One XO stating B1 in two groups, the first R07, the second ORC-16 left empty: R07 is the order's."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-XO2-B1") + pid("HOSPB")
             + f"ORC|XO|B1^HIS|||||||{when}|||D7^张^医生||||{R07}\n"
             + f"OBR|1|B1^HIS||{CBC}|||{when}\n"
             + f"ORC|XO|B1^HIS|||||||{when}|||D7^张^医生\n"
             + f"OBR|2|B1^HIS||{CBC}|||{when}\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag
    assert stored_reasons(own.engine, own.number("B1")) == ["R07"]


def test_v23_update_to_r07(own: Own) -> None:
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01).replace("|2.5.1|", "|2.3|"))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R07).replace("|2.5.1|", "|2.3|"))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)).replace("|2.5.1|", "|2.3|"))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_nw_resent_with_reason_in_obr31_only(own: Own) -> None:
    """R01 stated in OBR-31 (not ORC-16) by the order; an XO with ORC-16 empty keeps it."""
    hl7 = own
    prior(hl7)
    when = ts(1)
    hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-ORM-B1") + pid("HOSPB")
             + f"ORC|NW|B1^HIS|||||||{when}|||D7^张^医生\n"
             + f"OBR|1|B1^HIS||{CBC}|||{when}" + "|" * 23 + f"{R01}\n")
    before = stored_reasons(own.engine, own.number("B1"))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), ""))
    assert stored_reasons(own.engine, own.number("B1")) == before


def test_omg_update_to_r07(own: Own) -> None:
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R07, 1, "OMG^O19^OMG_O19"))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_cds_answer_then_an_update_to_r07(own: Own) -> None:
    """R04 given in CDS for B1; the HIS's XO then states R07: the order's own reason wins."""
    hl7, http, patient = setup(own)
    override(own.engine, http, cds_card(own.engine, http, patient, own.number("B1")), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R07))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_cds_answer_then_an_update_deleting_the_reason(own: Own) -> None:
    """R04 given in CDS for B1; the HIS's XO then sends ORC-16 "" (delete): no reason stands (was a strict
    xfail, moneymend20: the delete left no mark on an order that stated none; money29 marks it)."""
    hl7, http, patient = setup(own)
    override(own.engine, http, cds_card(own.engine, http, patient, own.number("B1")), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), '""'))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("flagged", None), flag


def test_update_to_r07_then_cds_answer_r04_before_result(own: Own) -> None:
    """Order R01, XO R07, then a CDS answer R04 posted before the result: the CDS answer is an
    order-time reason but the order's own (R07) wins (as ``_answered``)."""
    hl7, http, patient = setup(own)
    card = cds_card(own.engine, http, patient, own.number("B1"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R07))
    override(own.engine, http, card, "R04")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert flag["reason"] != "R01", flag


def test_oru_sc_deleting_keeps_the_stored_reason(own: Own) -> None:
    """A result's ORC-1 SC with ORC-16 "": the stored order keeps R01 (as for RE)."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(oru_with_orc("SC", '""'))
    assert stored_reasons(own.engine, own.number("B1")) == ["R01"]


@pytest.mark.parametrize("orc1", ["SC", ""])
def test_a_preliminary_result_with_orc1_sc_then_the_final(own: Own, orc1: str) -> None:
    """The LIS sends a preliminary result (OBR-25 P) under ORC-1 SC/blank with ORC-16 "" (an engine
    that fills empty fields with ""), then the final under RE: the doctor's R01 must decide."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    prelim = oru("HOSPB", "B1", CBC, ts(1, 10), "OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||P").replace(
        "|||F\n", "|||P\n", 1).replace("HOSPB-ORU-B1", "HOSPB-ORU-B1-P").replace(
        "OBR|1|B1^HIS", f"ORC|{orc1}|B1^HIS|FB1^LIS||IP|||||||||||\"\"\nOBR|1|B1^HIS", 1)
    hl7.send(prelim)
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 11)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


@pytest.mark.parametrize("orc1", ["SC", ""])
def test_a_status_only_result_message_then_the_final(own: Own, orc1: str) -> None:
    """ORU^R01 with ORC-1 SC (specimen in the lab, OBR-25 I, no OBX yet) and ORC-16 "", then the final
    under RE: the doctor's R01 must decide."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "LIS", "ORU^R01^ORU_R01", when, "HOSPB-ORU-B1-I") + pid("HOSPB")
             + f"ORC|{orc1}|B1^HIS|FB1^LIS||IP|||||||||||\"\"\n"
             + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||I\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 11)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


@pytest.mark.parametrize(("orc16", "rows"), [('""', 1), (R07, 0)], ids=["deleted", "to-R07"])
def test_the_duplicate_report_and_deductions_after_an_update(own: Own, orc16: str, rows: int) -> None:
    """The insurer's outputs follow the changed reason: ORC-16 "" -> one flagged row, upheld, one
    deduction at the catalogue price; R07 -> none flagged."""
    from datetime import datetime, timedelta, timezone

    from tests.test_reports_duplicates import bearer
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), orc16))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    engine = own.engine
    http = TestClient(create_app(engine))
    found = http.get("/reports/duplicates?status=flagged", headers=bearer(engine)).json()["rows"]
    mine = {f["_id"] for f in own.flags()}
    found = [r for r in found if r["id"] in mine]
    assert len(found) == rows, found
    if not rows:
        return
    res = http.post(f"/reports/duplicates/{found[0]['id']}/review",
                    json={"decision": "upheld", "reason": "复核属实 confirmed repeat"}, headers=bearer(engine))
    assert res.status_code == 200, res.text
    month = (datetime.now(timezone(timedelta(hours=8))) - timedelta(days=1)).strftime("%Y-%m")
    res = http.get("/reports/deductions", params={"institution": "HOSPB", "month": month, "_format": "csv"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    assert res.text.count("\n") >= 2, res.text


R06_TEXT = "R06^术后出血需复查^urn:huren:recognition-reason"
R06_NAME = "R06^其他必要复查^urn:huren:recognition-reason"


@pytest.mark.parametrize("orc1", ["RE", "NW"])
def test_r06_with_text_then_a_copy_naming_r06_only(own: Own, orc1: str) -> None:
    """R06 with the doctor's text at order time; a later copy of the order (a result's RE, or the
    HIS's NW re-sent) names R06 with its name only: the text recorded stays -- the same reason."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R06_TEXT))
    if orc1 == "RE":
        hl7.send(oru_with_orc("RE", R06_NAME))
    else:
        hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R06_NAME).replace("HOSPB-ORM-B1-NW", "HOSPB-ORM-B1-NW2"))
        hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R06"), flag


def test_r06_with_text_then_an_xo_without_orc16(own: Own) -> None:
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R06_TEXT))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), ""))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R06"), flag


def test_r06_text_in_cwe9_then_the_lis_echoing_code_and_name(own: Own) -> None:
    """The HIS puts the doctor's text in CWE.9; the LIS's result echoes ORC-16 as code^name^system
    (ORC-1 RE): the R06 recorded with its text at order time decides."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R06_NAME + "^^^^^^术后出血需复查"))
    hl7.send(oru_with_orc("RE", R06_NAME))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R06"), flag
    [sr] = own.engine.repository.search("ServiceRequest", [("identifier", own.number("B1"))]).resources
    assert any(r.get("text") == "术后出血需复查" for r in sr.get("reasonCode") or ()), sr.get("reasonCode")


@pytest.mark.parametrize("orc16", ["^标本溶血重新采集", "SPEC^更换标本类型^L"], ids=["text-only", "change-code"])
def test_an_xo_whose_orc16_says_why_the_order_changed(own: Own, orc16: str) -> None:
    """HL7 v2.5 ORC-16 is the *order control code reason*: an XO's ORC-16 says why the order was changed
    (a haemolysed specimen), not that the doctor withdrew the re-test reason: R01 must stand."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), orc16))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


def test_a_filler_status_change_stating_a_reason_does_not_replace_it(own: Own) -> None:
    """ORM ORC-1 SC from the LIS with ORC-16 R07: the filler's reason for its status change, not the
    doctor's re-test reason -- only the placer replaces it (an order message's reason otherwise
    replaces the stored one, merge.yaml keep-if-absent): R01 stays and decides."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC7-B1") + pid("HOSPB")
             + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生||||{R07}\n"
             + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    assert stored_reasons(own.engine, own.number("B1")) == ["R01"]
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag
